
/// A service's traffic policy: Istio's VirtualService `http` rules, the local rate limit and the
/// DestinationRule `trafficPolicy`, with Istio's field names. Durations are Go-style strings
/// (`250ms`, `5s`); percentages are `{"value": <0...100>}`. The store keeps it as given; the
/// admin API checks it and the serving controller compiles it into the gateway's route table.
public struct TrafficPolicySpec: Codable, Hashable, Sendable {
    /// VirtualService `http`: rules tried in order, the first match applies.
    public var http: [HTTPRouteSpec]?
    /// Envoy local rate limit for the whole service.
    public var rateLimit: LocalRateLimitSpec?
    /// DestinationRule `trafficPolicy`: load balancing, connection pool, outlier detection.
    public var trafficPolicy: DestinationPolicySpec?

    /// Creates a policy.
    public init(http: [HTTPRouteSpec]? = nil, rateLimit: LocalRateLimitSpec? = nil, trafficPolicy: DestinationPolicySpec? = nil) {
        self.http = http
        self.rateLimit = rateLimit
        self.trafficPolicy = trafficPolicy
    }
}

/// Istio `HTTPRoute` (without `route`: the destination is the service's Knative traffic split).
public struct HTTPRouteSpec: Codable, Hashable, Sendable {
    /// Name for people.
    public var name: String?
    /// `HTTPMatchRequest` alternatives (OR); absent matches everything.
    public var match: [HTTPMatchSpec]?
    /// Header operations on the request and the response.
    public var headers: HeadersSpec?
    /// `HTTPRewrite`.
    public var rewrite: RewriteSpec?
    /// `HTTPRedirect`.
    public var redirect: RedirectSpec?
    /// Request timeout, e.g. `5s`.
    public var timeout: String?
    /// `HTTPRetry`.
    public var retries: RetrySpec?
    /// `HTTPFaultInjection`.
    public var fault: FaultSpec?
    /// The service receiving copies (`host`: a service name, or `name.namespace`).
    public var mirror: DestinationSpec?
    /// Share of requests copied (absent: 100).
    public var mirrorPercentage: PercentSpec?

    /// Creates a rule.
    public init(
        name: String? = nil, match: [HTTPMatchSpec]? = nil, headers: HeadersSpec? = nil, rewrite: RewriteSpec? = nil,
        redirect: RedirectSpec? = nil, timeout: String? = nil, retries: RetrySpec? = nil, fault: FaultSpec? = nil,
        mirror: DestinationSpec? = nil, mirrorPercentage: PercentSpec? = nil
    ) {
        self.name = name
        self.match = match
        self.headers = headers
        self.rewrite = rewrite
        self.redirect = redirect
        self.timeout = timeout
        self.retries = retries
        self.fault = fault
        self.mirror = mirror
        self.mirrorPercentage = mirrorPercentage
    }
}

/// Istio `StringMatch`: exactly one of the three.
public struct StringMatchSpec: Codable, Hashable, Sendable {
    /// Whole value.
    public var exact: String?
    /// Leading part.
    public var prefix: String?
    /// Regular expression over the whole value.
    public var regex: String?

    /// Creates a match.
    public init(exact: String? = nil, prefix: String? = nil, regex: String? = nil) {
        self.exact = exact
        self.prefix = prefix
        self.regex = regex
    }
}

/// Istio `HTTPMatchRequest` (the conditions Outpost supports).
public struct HTTPMatchSpec: Codable, Hashable, Sendable {
    /// The path.
    public var uri: StringMatchSpec?
    /// The method.
    public var method: StringMatchSpec?
    /// Request headers by (case-insensitive) name.
    public var headers: [String: StringMatchSpec]?

    /// Creates a match.
    public init(uri: StringMatchSpec? = nil, method: StringMatchSpec? = nil, headers: [String: StringMatchSpec]? = nil) {
        self.uri = uri
        self.method = method
        self.headers = headers
    }
}

/// Istio `Headers`.
public struct HeadersSpec: Codable, Hashable, Sendable {
    /// Operations on the request sent to the worker.
    public var request: HeaderOperationsSpec?
    /// Operations on the response sent to the client.
    public var response: HeaderOperationsSpec?

    /// Creates header operations.
    public init(request: HeaderOperationsSpec? = nil, response: HeaderOperationsSpec? = nil) {
        self.request = request
        self.response = response
    }
}

/// Istio `HeaderOperations`.
public struct HeaderOperationsSpec: Codable, Hashable, Sendable {
    /// Replace.
    public var set: [String: String]?
    /// Append.
    public var add: [String: String]?
    /// Remove.
    public var remove: [String]?

    /// Creates operations.
    public init(set: [String: String]? = nil, add: [String: String]? = nil, remove: [String]? = nil) {
        self.set = set
        self.add = add
        self.remove = remove
    }
}

/// Istio `HTTPRewrite`.
public struct RewriteSpec: Codable, Hashable, Sendable {
    /// New path or prefix.
    public var uri: String?
    /// New `Host`.
    public var authority: String?

    /// Creates a rewrite.
    public init(uri: String? = nil, authority: String? = nil) {
        self.uri = uri
        self.authority = authority
    }
}

/// Istio `HTTPRedirect`.
public struct RedirectSpec: Codable, Hashable, Sendable {
    /// New path.
    public var uri: String?
    /// New host.
    public var authority: String?
    /// Status (default 301).
    public var redirectCode: Int?
    /// New scheme, `http` or `https` (default: the request's).
    public var scheme: String?
    /// New port.
    public var port: Int?
    /// `FROM_PROTOCOL_DEFAULT` (the scheme's default port) or `FROM_REQUEST_PORT`; not with `port`.
    public var derivePort: String?

    /// Creates a redirect.
    public init(
        uri: String? = nil, authority: String? = nil, redirectCode: Int? = nil,
        scheme: String? = nil, port: Int? = nil, derivePort: String? = nil
    ) {
        self.uri = uri
        self.authority = authority
        self.redirectCode = redirectCode
        self.scheme = scheme
        self.port = port
        self.derivePort = derivePort
    }
}

/// Istio `HTTPRetry`.
public struct RetrySpec: Codable, Hashable, Sendable {
    /// Retries after the first attempt (0 disables retries).
    public var attempts: Int
    /// Bound on each attempt, e.g. `1s`.
    public var perTryTimeout: String?
    /// Envoy retry conditions and status codes, comma-separated.
    public var retryOn: String?

    /// Creates a retry policy.
    public init(attempts: Int, perTryTimeout: String? = nil, retryOn: String? = nil) {
        self.attempts = attempts
        self.perTryTimeout = perTryTimeout
        self.retryOn = retryOn
    }
}

/// Istio `Percent`.
public struct PercentSpec: Codable, Hashable, Sendable {
    /// 0...100.
    public var value: Double

    /// Creates a percentage.
    public init(value: Double) { self.value = value }
}

/// Istio `HTTPFaultInjection`.
public struct FaultSpec: Codable, Hashable, Sendable {
    /// Istio `Delay`.
    public struct Delay: Codable, Hashable, Sendable {
        /// Share delayed (absent: 100).
        public var percentage: PercentSpec?
        /// How long, e.g. `100ms`.
        public var fixedDelay: String

        /// Creates a delay.
        public init(percentage: PercentSpec? = nil, fixedDelay: String) {
            self.percentage = percentage
            self.fixedDelay = fixedDelay
        }
    }

    /// Istio `Abort`.
    public struct Abort: Codable, Hashable, Sendable {
        /// Share aborted (absent: 100).
        public var percentage: PercentSpec?
        /// Status answered.
        public var httpStatus: Int

        /// Creates an abort.
        public init(percentage: PercentSpec? = nil, httpStatus: Int) {
            self.percentage = percentage
            self.httpStatus = httpStatus
        }
    }

    /// Delay, if any.
    public var delay: Delay?
    /// Abort, if any.
    public var abort: Abort?

    /// Creates a fault.
    public init(delay: Delay? = nil, abort: Abort? = nil) {
        self.delay = delay
        self.abort = abort
    }
}

/// Istio `Destination` (only `host`).
public struct DestinationSpec: Codable, Hashable, Sendable {
    /// A service name in the policy's namespace, or `name.namespace`.
    public var host: String

    /// Creates a destination.
    public init(host: String) { self.host = host }
}

/// Envoy local rate limit token bucket.
public struct LocalRateLimitSpec: Codable, Hashable, Sendable {
    /// Bucket size.
    public var maxTokens: Int
    /// Tokens per fill (absent: 1, as in Envoy).
    public var tokensPerFill: Int?
    /// Fill period, e.g. `1s`.
    public var fillInterval: String

    /// Creates a limit.
    public init(maxTokens: Int, tokensPerFill: Int? = nil, fillInterval: String) {
        self.maxTokens = maxTokens
        self.tokensPerFill = tokensPerFill
        self.fillInterval = fillInterval
    }
}

/// DestinationRule `TrafficPolicy` (the parts Outpost supports).
public struct DestinationPolicySpec: Codable, Hashable, Sendable {
    /// `LoadBalancerSettings`.
    public var loadBalancer: LoadBalancerSpec?
    /// `ConnectionPoolSettings`.
    public var connectionPool: ConnectionPoolSpec?
    /// `OutlierDetection`.
    public var outlierDetection: OutlierDetectionSpec?

    /// Creates a destination policy.
    public init(loadBalancer: LoadBalancerSpec? = nil, connectionPool: ConnectionPoolSpec? = nil, outlierDetection: OutlierDetectionSpec? = nil) {
        self.loadBalancer = loadBalancer
        self.connectionPool = connectionPool
        self.outlierDetection = outlierDetection
    }
}

/// `LoadBalancerSettings`: `simple` or `consistentHash`.
public struct LoadBalancerSpec: Codable, Hashable, Sendable {
    /// `LEAST_REQUEST` (default), `ROUND_ROBIN` or `RANDOM`.
    public var simple: String?
    /// Sticky choice by a request key.
    public var consistentHash: ConsistentHashSpec?

    /// Creates settings.
    public init(simple: String? = nil, consistentHash: ConsistentHashSpec? = nil) {
        self.simple = simple
        self.consistentHash = consistentHash
    }
}

/// `ConsistentHashLB`: exactly one key.
public struct ConsistentHashSpec: Codable, Hashable, Sendable {
    /// `HTTPCookie` (`name` only).
    public struct Cookie: Codable, Hashable, Sendable {
        /// Cookie name.
        public var name: String
        /// `Path` of an issued cookie.
        public var path: String?
        /// Lifetime of an issued cookie (`0s`: a session cookie); absent: no cookie is issued.
        public var ttl: String?

        /// Creates a cookie key.
        public init(name: String, path: String? = nil, ttl: String? = nil) {
            self.name = name
            self.path = path
            self.ttl = ttl
        }
    }

    /// Hash on this header.
    public var httpHeaderName: String?
    /// Hash on this cookie.
    public var httpCookie: Cookie?

    /// Creates a key.
    public init(httpHeaderName: String? = nil, httpCookie: Cookie? = nil) {
        self.httpHeaderName = httpHeaderName
        self.httpCookie = httpCookie
    }
}

/// `ConnectionPoolSettings`.
public struct ConnectionPoolSpec: Codable, Hashable, Sendable {
    /// `TCPSettings`.
    public struct TCP: Codable, Hashable, Sendable {
        /// Connections to the service at once.
        public var maxConnections: Int?
        /// Creates settings.
        public init(maxConnections: Int? = nil) { self.maxConnections = maxConnections }
    }

    /// `HTTPSettings`.
    public struct HTTP: Codable, Hashable, Sendable {
        /// Requests waiting for a worker at once.
        public var http1MaxPendingRequests: Int?
        /// Requests per worker connection (0: unlimited).
        public var maxRequestsPerConnection: Int?
        /// Creates settings.
        public init(http1MaxPendingRequests: Int? = nil, maxRequestsPerConnection: Int? = nil) {
            self.http1MaxPendingRequests = http1MaxPendingRequests
            self.maxRequestsPerConnection = maxRequestsPerConnection
        }
    }

    /// TCP limits.
    public var tcp: TCP?
    /// HTTP limits.
    public var http: HTTP?

    /// Creates settings.
    public init(tcp: TCP? = nil, http: HTTP? = nil) {
        self.tcp = tcp
        self.http = http
    }
}

/// DestinationRule `OutlierDetection`.
public struct OutlierDetectionSpec: Codable, Hashable, Sendable {
    /// 5xx (and local failures) in a row that eject a worker (default 5; 0 disables).
    public var consecutive5xxErrors: Int?
    /// 502/503/504 (and local failures) in a row that eject a worker (default off).
    public var consecutiveGatewayErrors: Int?
    /// Sweep interval (default `10s`).
    public var interval: String?
    /// Minimum ejection, multiplied by the number of ejections up to 300 s or itself when
    /// longer (default `30s`).
    public var baseEjectionTime: String?
    /// Largest share of a revision's workers ejected at once (default 10, at least one worker).
    public var maxEjectionPercent: Int?

    /// Creates settings.
    public init(
        consecutive5xxErrors: Int? = nil, consecutiveGatewayErrors: Int? = nil, interval: String? = nil,
        baseEjectionTime: String? = nil, maxEjectionPercent: Int? = nil
    ) {
        self.consecutive5xxErrors = consecutive5xxErrors
        self.consecutiveGatewayErrors = consecutiveGatewayErrors
        self.interval = interval
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectionPercent = maxEjectionPercent
    }
}

/// A stored traffic policy; `meta.name` is the service it applies to.
public struct TrafficPolicyResource: Hashable, Sendable {
    /// Identity and versions.
    public var meta: ResourceMeta
    /// The policy.
    public var spec: TrafficPolicySpec

    /// Creates a resource value.
    public init(meta: ResourceMeta, spec: TrafficPolicySpec) {
        self.meta = meta
        self.spec = spec
    }
}
