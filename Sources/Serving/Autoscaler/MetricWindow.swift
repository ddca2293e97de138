/// Per-second metric buckets, Knative's `BucketSize = 1s`, keyed by whole seconds since an
/// arbitrary origin. The window average divides by the number of seconds that have data, capped
/// at the window, so a revision that just started is not diluted by seconds before it existed.
public struct MetricWindow: Sendable {
    private var buckets: [Double]
    private var newestSecond: Int64 = .min
    private var oldestSecond: Int64 = .min

    /// Keeps `capacity` seconds (the longest window that will be asked for).
    public init(capacity: Int) {
        precondition(capacity > 0)
        buckets = Array(repeating: 0, count: capacity)
    }

    /// Adds `value` to the bucket of `second`. Seconds older than the capacity are dropped.
    public mutating func record(_ value: Double, second: Int64) {
        if newestSecond == .min {
            newestSecond = second
            oldestSecond = second
            buckets[index(second)] = value
            return
        }
        if second > newestSecond {
            // Clear buckets skipped since the newest one (they had no data: zero).
            let gap = min(second - newestSecond, Int64(buckets.count))
            for step in 1...gap { buckets[index(newestSecond + step)] = 0 }
            newestSecond = second
            oldestSecond = max(oldestSecond, newestSecond - Int64(buckets.count) + 1)
            buckets[index(second)] = value
        } else if second > newestSecond - Int64(buckets.count) {
            buckets[index(second)] += value
            oldestSecond = min(oldestSecond, second)
        }
    }

    /// Average over the `window` seconds ending at `now` (inclusive). Zero with no data.
    public func average(window seconds: Int, now: Int64) -> Double {
        guard newestSecond != .min, seconds > 0 else { return 0 }
        let span = min(seconds, buckets.count)
        let start = now - Int64(span) + 1
        guard newestSecond >= start else { return 0 }
        var total = 0.0
        var second = max(start, oldestSecond)
        while second <= min(now, newestSecond) {
            total += buckets[index(second)]
            second += 1
        }
        let populated = now - max(start, oldestSecond) + 1
        return populated > 0 ? total / Double(populated) : 0
    }

    private func index(_ second: Int64) -> Int {
        Int(((second % Int64(buckets.count)) + Int64(buckets.count)) % Int64(buckets.count))
    }
}
