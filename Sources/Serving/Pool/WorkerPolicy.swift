/// How a revision's pool chooses among its ready workers (DestinationRule `loadBalancer`).
public enum LoadBalancer: Sendable, Hashable {
    /// `LEAST_REQUEST` (Istio's default): Knative's activator policy, the worker with the fewest
    /// requests in flight (the oldest free one for `containerConcurrency` 1–3).
    case leastRequest
    /// `ROUND_ROBIN`: workers in turn.
    case roundRobin
    /// `RANDOM`: any worker with capacity.
    case random
    /// `consistentHash`: the same key goes to the same worker while it lives and has capacity
    /// (rendezvous hashing over worker ids); requests without the key fall back to least request.
    case consistentHash
}

/// DestinationRule `outlierDetection`, with Istio's defaults.
///
/// A worker is ejected as soon as it reaches `consecutive5xxErrors` 5xx answers (or
/// `consecutiveGatewayErrors` 502/503/504) in a row; failed connections and timeouts count as
/// both, as in Envoy without `splitExternalLocalOriginErrors`. It stays ejected for
/// `baseEjectionTime` × its number of ejections, at most 300 s (Envoy's default
/// `max_ejection_time`) or `baseEjectionTime` when that is longer; the multiplier drops by one
/// for every `interval` the worker spends un-ejected. At most `maxEjectionPercent` of the workers are
/// ejected at once, but always at least one (Envoy's rule). When no un-ejected worker is ready,
/// ejected ones serve (Envoy's panic mode) rather than nobody.
public struct OutlierDetection: Sendable, Hashable {
    /// 0 disables.
    public var consecutive5xxErrors = 5
    /// 0 disables (the default).
    public var consecutiveGatewayErrors = 0
    /// Decay period of the ejection multiplier.
    public var interval: Duration = .seconds(10)
    /// Minimum ejection time.
    public var baseEjectionTime: Duration = .seconds(30)
    /// Largest share of the workers ejected at once, in percent.
    public var maxEjectionPercent = 10

    /// Istio's defaults.
    public init() {}
}

/// The part of a traffic policy that acts where workers are chosen.
public struct WorkerPolicy: Sendable, Hashable {
    /// How a worker is chosen.
    public var loadBalancer: LoadBalancer
    /// When a worker is taken out of rotation; `nil` never ejects.
    public var outlierDetection: OutlierDetection?

    /// Creates a policy; the default is least request without outlier detection.
    public init(loadBalancer: LoadBalancer = .leastRequest, outlierDetection: OutlierDetection? = nil) {
        self.loadBalancer = loadBalancer
        self.outlierDetection = outlierDetection
    }
}

/// Outlier-detection bookkeeping of one worker.
struct OutlierRecord: Sendable {
    var consecutive5xx = 0
    var consecutiveGateway = 0
    /// Set while ejected.
    var ejectedUntil: ContinuousClock.Instant?
    /// The ejection multiplier.
    var ejections = 0
    /// When the worker last came back (for the multiplier's decay).
    var returnedAt: ContinuousClock.Instant?
}
