@testable import Serving
import Testing

@Suite struct ConcurrencyMeterTests {
    /// An instant on a whole-second boundary of the meter's clock.
    func second(_ n: Int64) -> ContinuousClock.Instant {
        ConcurrencyMeter.origin + .seconds(ConcurrencyMeter.second(of: .now) + 10 + n)
    }

    @Test func concurrencyIsTimeWeightedPerSecond() {
        var meter = ConcurrencyMeter(windowSeconds: 60, now: second(0))
        // 4 in flight for the first half of second 0, then 2 for the second half → 3.0 average.
        meter.set(level: 4, now: second(0))
        meter.set(level: 2, now: second(0) + .milliseconds(500))
        meter.set(level: 0, now: second(1))
        let averages = meter.averages(now: second(1) + .milliseconds(10), window: .seconds(1))
        #expect(abs(averages.concurrency - 3.0) < 1e-9)
    }

    @Test func windowAverageCountsIdleSecondsAsZero() {
        var meter = ConcurrencyMeter(windowSeconds: 60, now: second(0))
        meter.set(level: 10, now: second(0))
        meter.set(level: 0, now: second(2))  // 10 for two seconds
        let averages = meter.averages(now: second(10), window: .seconds(10))
        #expect(abs(averages.concurrency - 2.0) < 1e-9, "20 request-seconds over 10 seconds")
        #expect(meter.averages(now: second(20), window: .seconds(6)).concurrency == 0)
    }

    @Test func arrivalsBecomeRequestsPerSecond() {
        var meter = ConcurrencyMeter(windowSeconds: 60, now: second(0))
        for i in 0..<30 { meter.countArrival(now: second(0) + .milliseconds(i * 30)) }
        for i in 0..<10 { meter.countArrival(now: second(1) + .milliseconds(i * 90)) }
        let averages = meter.averages(now: second(2), window: .seconds(2))
        #expect(averages.rps == 20)
    }

    @Test func idleDurationStartsWhenTheLastRequestEnds() {
        var meter = ConcurrencyMeter(windowSeconds: 60, now: second(0))
        meter.set(level: 1, now: second(1))
        #expect(meter.idleDuration(now: second(3)) == .zero)
        meter.set(level: 0, now: second(4))
        #expect(meter.idleDuration(now: second(10)) == .seconds(6))
    }
}

@Suite struct MetricWindowTests {
    @Test func averagesOnlyOverSecondsWithHistory() {
        var window = MetricWindow(capacity: 60)
        window.record(6, second: 100)
        window.record(2, second: 101)
        #expect(window.average(window: 60, now: 101) == 4, "two seconds of history, not sixty")
        #expect(window.average(window: 1, now: 101) == 2)
        #expect(window.average(window: 60, now: 200) == 0, "all history slid out")
    }

    @Test func oldSecondsAreOverwrittenAsTheRingWraps() {
        var window = MetricWindow(capacity: 3)
        for second in Int64(0)..<10 { window.record(Double(second), second: second) }
        #expect(window.average(window: 3, now: 9) == 8)  // (7 + 8 + 9) / 3
    }
}
