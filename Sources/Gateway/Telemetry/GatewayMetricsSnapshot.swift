/// Envoy's `%RESPONSE_FLAGS%` for the outcomes the gateway can tell apart; the
/// `response_flags` label of Istio's metrics.
public enum ResponseFlags: String, Sendable, Hashable, CaseIterable {
    /// `-`: nothing unusual.
    case none = "-"
    /// `NR`: no route for the host (404).
    case noRoute = "NR"
    /// `UH`: no healthy upstream: no ready revision, or the activator gave up (503).
    case noHealthyUpstream = "UH"
    /// `UF`: connecting to the worker failed (502).
    case upstreamConnectionFailure = "UF"
    /// `UT`: the request outlived its timeout (504, or a cut-off response).
    case upstreamRequestTimeout = "UT"
    /// `UC`: the worker closed its connection before finishing the response.
    case upstreamConnectionTermination = "UC"
    /// `DC`: the client closed its connection before the response was complete.
    case downstreamConnectionTermination = "DC"
    /// `DPE`: the request was not valid HTTP or had ambiguous framing (400, 431).
    case downstreamProtocolError = "DPE"
    /// `FI`: the traffic policy's fault injection aborted the request.
    case faultInjected = "FI"
    /// `RL`: the local rate limit refused the request (429).
    case rateLimited = "RL"
    /// `UO`: a connection-pool limit (circuit breaker) refused the request (503).
    case upstreamOverflow = "UO"
    /// `URX`: the response is a failure the retry policy covers, and no retry was left.
    case upstreamRetryLimitExceeded = "URX"
    /// `DI`: the traffic policy's fault injection delayed the request.
    case delayInjected = "DI"
}

/// All request metrics of one gateway at one moment, merged over its event loops.
///
/// Each ``Series`` is one label set of Istio's standard metrics. Cardinality is bounded: the
/// destination labels come from the route table (configured services and revisions; a request
/// for an unknown host counts under `unknown`, never under its `Host` value), the response code
/// is an HTTP status and the flags are one of ``ResponseFlags``.
public struct GatewayMetricsSnapshot: Sendable {
    /// Envoy's default histogram buckets, used for `istio_request_duration_milliseconds` (ms).
    public static let durationBucketsMilliseconds: [Double] = [
        0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000,
        1_800_000, 3_600_000,
    ]
    /// Bucket bounds (bytes) for `istio_request_bytes` and `istio_response_bytes`: powers of ten
    /// from 1 B to 1 GB, as Istio's own size histograms use.
    public static let byteBuckets: [Double] = [1, 10, 100, 1000, 10000, 100_000, 1_000_000, 10_000_000, 100_000_000, 1_000_000_000]

    /// The labels that tell series apart.
    public struct Key: Hashable, Sendable, Comparable {
        /// Namespace of the destination service (`unknown` when no route matched).
        public var namespace: String
        /// Name of the destination service (`unknown` when no route matched).
        public var service: String
        /// The revision that served the request (`unknown` when none was picked).
        public var revision: String
        /// HTTP status sent to the client; `0` when the client left before any response.
        public var responseCode: Int
        /// What went wrong, if anything.
        public var responseFlags: ResponseFlags

        /// Creates a key.
        public init(namespace: String, service: String, revision: String, responseCode: Int, responseFlags: ResponseFlags) {
            self.namespace = namespace
            self.service = service
            self.revision = revision
            self.responseCode = responseCode
            self.responseFlags = responseFlags
        }

        /// Orders by namespace, service, revision, code, flags (stable output).
        public static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.namespace, lhs.service, lhs.revision, lhs.responseCode, lhs.responseFlags.rawValue)
                < (rhs.namespace, rhs.service, rhs.revision, rhs.responseCode, rhs.responseFlags.rawValue)
        }
    }

    /// A histogram: one count per bucket (not cumulative) plus the overflow bucket.
    public struct Histogram: Sendable, Equatable {
        /// Upper bounds of the buckets (inclusive), ascending.
        public var bounds: [Double]
        /// `bounds.count + 1` counts; the last one counts values above every bound.
        public var counts: [UInt64]
        /// Sum of the observed values.
        public var sum: Double

        /// An empty histogram over `bounds`.
        public init(bounds: [Double]) {
            self.bounds = bounds
            self.counts = Array(repeating: 0, count: bounds.count + 1)
            self.sum = 0
        }

        /// Number of observations.
        public var count: UInt64 { counts.reduce(0, &+) }

        /// Adds another histogram over the same bounds.
        public mutating func merge(_ other: Histogram) {
            precondition(bounds == other.bounds, "histograms with different buckets")
            for index in counts.indices { counts[index] &+= other.counts[index] }
            sum += other.sum
        }
    }

    /// The metrics of one label set.
    public struct Series: Sendable {
        /// The labels.
        public var key: Key
        /// `istio_requests_total`.
        public var requests: UInt64
        /// `istio_request_duration_milliseconds`: arrival of the request head to the end of the
        /// response (or the moment the exchange was given up).
        public var durationMilliseconds: Histogram
        /// `istio_request_bytes`: request body bytes received from the client.
        public var requestBytes: Histogram
        /// `istio_response_bytes`: response body bytes sent to the client.
        public var responseBytes: Histogram

        /// An empty series for `key`.
        public init(key: Key) {
            self.key = key
            self.requests = 0
            self.durationMilliseconds = Histogram(bounds: GatewayMetricsSnapshot.durationBucketsMilliseconds)
            self.requestBytes = Histogram(bounds: GatewayMetricsSnapshot.byteBuckets)
            self.responseBytes = Histogram(bounds: GatewayMetricsSnapshot.byteBuckets)
        }

        /// Adds another series with the same key.
        public mutating func merge(_ other: Series) {
            requests &+= other.requests
            durationMilliseconds.merge(other.durationMilliseconds)
            requestBytes.merge(other.requestBytes)
            responseBytes.merge(other.responseBytes)
        }
    }

    /// The domain of service hosts, for the `destination_service` label.
    public var domain: String
    /// One entry per label set, sorted by key.
    public var series: [Series]

    /// Creates a snapshot; series with equal keys are merged and the result sorted.
    public init(domain: String, series: [Series]) {
        self.domain = domain
        var merged: [Key: Series] = [:]
        for entry in series {
            merged[entry.key, default: Series(key: entry.key)].merge(entry)
        }
        self.series = merged.values.sorted { $0.key < $1.key }
    }

    /// The series for a key, if any request produced it.
    public subscript(key: Key) -> Series? {
        series.first { $0.key == key }
    }

    /// Total requests over all series.
    public var totalRequests: UInt64 { series.reduce(0) { $0 &+ $1.requests } }
}

/// Something that can report the gateway's request metrics. ``Gateway`` conforms; a consumer
/// (the admin `/metrics` endpoint) depends on this instead of the whole gateway.
public protocol RequestMetricsSource: Sendable {
    /// Collects the current metrics. Cheap enough to call on every scrape.
    func metricsSnapshot() async -> GatewayMetricsSnapshot
}
