/// Measures a revision's load exactly where it happens: every lease, release and queued request
/// changes the observed concurrency, and the meter integrates it over time into 1-second buckets
/// (time-weighted average in-flight + queued requests), plus request arrivals per second. The
/// autoscaler reads window averages from it; nothing touches SQLite.
struct ConcurrencyMeter: Sendable {
    /// Process-wide origin for bucket numbering.
    static let origin = ContinuousClock.now

    private(set) var concurrencyWindow: MetricWindow
    private(set) var requestWindow: MetricWindow
    private var level = 0
    private var second: Int64
    private var secondStart: ContinuousClock.Instant
    private var lastChange: ContinuousClock.Instant
    private var integral = 0.0
    private var arrivals = 0
    /// The last moment any request was in flight or waiting (creation counts as busy).
    private(set) var lastBusy: ContinuousClock.Instant

    init(windowSeconds: Int, now: ContinuousClock.Instant) {
        concurrencyWindow = MetricWindow(capacity: max(windowSeconds, 1))
        requestWindow = MetricWindow(capacity: max(windowSeconds, 1))
        second = Self.second(of: now)
        secondStart = Self.origin + .seconds(second)
        lastChange = now
        lastBusy = now
    }

    /// How long the revision has had nothing in flight and nothing waiting.
    func idleDuration(now: ContinuousClock.Instant) -> Duration {
        level > 0 ? .zero : now - lastBusy
    }

    /// The bucket number of an instant.
    static func second(of instant: ContinuousClock.Instant) -> Int64 {
        (instant - origin).components.seconds
    }

    /// The observed concurrency becomes `newLevel` at `now`.
    mutating func set(level newLevel: Int, now: ContinuousClock.Instant) {
        advance(to: now)
        if level > 0 || newLevel > 0 { lastBusy = now }
        level = newLevel
    }

    /// A request arrived.
    mutating func countArrival(now: ContinuousClock.Instant) {
        advance(to: now)
        arrivals += 1
    }

    /// Closes every whole second before `now` into the windows.
    mutating func advance(to now: ContinuousClock.Instant) {
        guard now > lastChange else { return }
        let target = Self.second(of: now)
        while second < target {
            let end = secondStart + .seconds(1)
            integral += Double(level) * seconds(end - lastChange)
            concurrencyWindow.record(integral, second: second)
            requestWindow.record(Double(arrivals), second: second)
            integral = 0
            arrivals = 0
            lastChange = end
            secondStart = end
            second += 1
            if level == 0, second < target {
                // Idle stretch: jump ahead; the windows treat missing seconds as zero.
                second = target
                secondStart = Self.origin + .seconds(target)
                lastChange = secondStart
            }
        }
        integral += Double(level) * seconds(now - lastChange)
        lastChange = now
    }

    /// Averages over the last `window` whole seconds before `now`.
    mutating func averages(now: ContinuousClock.Instant, window: Duration) -> (concurrency: Double, rps: Double) {
        advance(to: now)
        let seconds = Int(window.components.seconds)
        let last = Self.second(of: now) - 1
        return (concurrencyWindow.average(window: seconds, now: last), requestWindow.average(window: seconds, now: last))
    }

    private func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
