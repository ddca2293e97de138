/// One event loop's request metrics. Only that loop touches it, so recording takes no lock
/// and no atomic; ``Gateway/metricsSnapshot()`` copies it out with `eventLoop.submit`.
///
/// Layout for the hot path: destinations (namespace, service, revision) are keyed in a
/// dictionary, but the last destination used is remembered, so a run of requests to the same
/// revision compares three strings that share storage with the route table (a pointer compare
/// each) instead of hashing them. Inside a destination the few (code, flags) outcomes are a
/// short array searched linearly. Histograms are fixed arrays of counters.
final class RequestMetricsTable {
    /// Counters of one (code, flags) outcome of one destination.
    struct Outcome {
        var code: Int
        var flags: ResponseFlags
        var requests: UInt64 = 0
        var duration = Counts(bucketCount: GatewayMetricsSnapshot.durationBucketsMilliseconds.count)
        var requestBytes = Counts(bucketCount: GatewayMetricsSnapshot.byteBuckets.count)
        var responseBytes = Counts(bucketCount: GatewayMetricsSnapshot.byteBuckets.count)

        init(code: Int, flags: ResponseFlags) {
            self.code = code
            self.flags = flags
        }
    }

    /// Bucket counters (non-cumulative, plus overflow) and the sum.
    struct Counts {
        var buckets: [UInt64]
        var sum: Double = 0

        init(bucketCount: Int) {
            buckets = Array(repeating: 0, count: bucketCount + 1)
        }

        @inline(__always)
        mutating func record(_ value: Double, bounds: [Double]) {
            var index = 0
            while index < bounds.count, value > bounds[index] { index += 1 }
            buckets[index] &+= 1
            sum += value
        }

        func histogram(bounds: [Double]) -> GatewayMetricsSnapshot.Histogram {
            var histogram = GatewayMetricsSnapshot.Histogram(bounds: bounds)
            histogram.counts = buckets
            histogram.sum = sum
            return histogram
        }
    }

    /// All outcomes of one destination.
    final class Destination {
        let namespace: String
        let service: String
        let revision: String
        var outcomes: [Outcome] = []

        init(namespace: String, service: String, revision: String) {
            self.namespace = namespace
            self.service = service
            self.revision = revision
        }
    }

    private struct DestinationKey: Hashable {
        var namespace: String
        var service: String
        var revision: String
    }

    private var destinations: [DestinationKey: Destination] = [:]
    private var last: Destination?
    private let durationBounds = GatewayMetricsSnapshot.durationBucketsMilliseconds
    private let byteBounds = GatewayMetricsSnapshot.byteBuckets

    /// Label value for a destination the request never reached.
    static let unknown = "unknown"

    /// Counts one finished request.
    func record(
        namespace: String, service: String, revision: String,
        code: Int, flags: ResponseFlags,
        durationNanoseconds: Int64, requestBytes: Int, responseBytes: Int
    ) {
        let destination = self.destination(namespace: namespace, service: service, revision: revision)
        var index = 0
        let count = destination.outcomes.count
        while index < count, destination.outcomes[index].code != code || destination.outcomes[index].flags != flags {
            index += 1
        }
        if index == count { destination.outcomes.append(Outcome(code: code, flags: flags)) }
        destination.outcomes[index].requests &+= 1
        destination.outcomes[index].duration.record(Double(max(durationNanoseconds, 0)) / 1_000_000, bounds: durationBounds)
        destination.outcomes[index].requestBytes.record(Double(requestBytes), bounds: byteBounds)
        destination.outcomes[index].responseBytes.record(Double(responseBytes), bounds: byteBounds)
    }

    private func destination(namespace: String, service: String, revision: String) -> Destination {
        if let last, last.revision == revision, last.service == service, last.namespace == namespace {
            return last
        }
        let key = DestinationKey(namespace: namespace, service: service, revision: revision)
        let found: Destination
        if let existing = destinations[key] {
            found = existing
        } else {
            found = Destination(namespace: namespace, service: service, revision: revision)
            destinations[key] = found
        }
        last = found
        return found
    }

    /// A copy of every series (value types, safe to send to another thread).
    func series() -> [GatewayMetricsSnapshot.Series] {
        var result: [GatewayMetricsSnapshot.Series] = []
        for destination in destinations.values {
            for outcome in destination.outcomes {
                var series = GatewayMetricsSnapshot.Series(key: GatewayMetricsSnapshot.Key(
                    namespace: destination.namespace, service: destination.service, revision: destination.revision,
                    responseCode: outcome.code, responseFlags: outcome.flags))
                series.requests = outcome.requests
                series.durationMilliseconds = outcome.duration.histogram(bounds: durationBounds)
                series.requestBytes = outcome.requestBytes.histogram(bounds: byteBounds)
                series.responseBytes = outcome.responseBytes.histogram(bounds: byteBounds)
                result.append(series)
            }
        }
        return result
    }
}
