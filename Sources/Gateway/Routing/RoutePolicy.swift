/// What the gateway does with the requests of one service beyond picking a revision: Istio's
/// VirtualService `http` rules (match, headers, rewrite, redirect, timeout, retries, fault,
/// mirror) plus the local rate limit and the connection-pool limits of its DestinationRule.
///
/// The control plane compiles a stored traffic policy into this value; the gateway evaluates it
/// per request without I/O. Rules are tried in order and the first match wins; a request that
/// matches none gets ``RouteRule/default`` (Istio's default retry policy, the revision timeout).
public struct RoutePolicy: Sendable, Hashable {
    /// The `http` rules, in order.
    public var rules: [RouteRule]
    /// The token bucket shared by all requests of the service, if any.
    public var rateLimit: LocalRateLimit?
    /// Bounds on concurrent requests and connections (DestinationRule `connectionPool`).
    public var connectionPool: ConnectionPoolLimits
    /// Where a consistent-hash load balancer takes its key from, if one is configured.
    public var hashKey: HashKeySource?

    /// Creates a policy.
    public init(
        rules: [RouteRule] = [], rateLimit: LocalRateLimit? = nil,
        connectionPool: ConnectionPoolLimits = ConnectionPoolLimits(), hashKey: HashKeySource? = nil
    ) {
        self.rules = rules
        self.rateLimit = rateLimit
        self.connectionPool = connectionPool
        self.hashKey = hashKey
    }

    /// No rules, no limits: every request gets ``RouteRule/default``.
    public static let `default` = RoutePolicy()

    /// The first rule whose matches accept the request, else ``RouteRule/default``.
    public func rule(method: String, path: Substring, headers: some Sequence<(name: String, value: String)>) -> RouteRule {
        for rule in rules where rule.accepts(method: method, path: path, headers: headers) {
            return rule
        }
        return .default
    }

    /// Whether any part needs shared state (a token bucket or connection counters).
    var needsRuntime: Bool { rateLimit != nil || connectionPool.isLimited }
}

/// One Istio `HTTPRoute`: when it applies (`match`) and what it does.
public struct RouteRule: Sendable, Hashable {
    /// The rule's name (Istio `name`), for people reading the policy.
    public var name: String?
    /// Alternatives (OR); each one's conditions all hold (AND). Empty matches every request.
    public var matches: [RequestMatch]
    /// Changes to the request head sent to the worker.
    public var requestHeaders: HeaderOperations
    /// Changes to the response head sent to the client.
    public var responseHeaders: HeaderOperations
    /// Rewrites the path (or the matched prefix) and/or the authority before forwarding.
    public var rewrite: RouteRewrite?
    /// Answers with a redirect instead of forwarding.
    public var redirect: RouteRedirect?
    /// Bound on the whole request (all attempts); the revision's `timeoutSeconds` when `nil`.
    public var timeout: Duration?
    /// When and how often a failed attempt is retried.
    public var retry: RetryPolicy
    /// Injected delays and aborts.
    public var fault: FaultInjection?
    /// Copies of the requests sent to another service.
    public var mirror: MirrorPolicy?

    /// Creates a rule; by default it matches everything and changes nothing.
    public init(
        name: String? = nil, matches: [RequestMatch] = [], requestHeaders: HeaderOperations = HeaderOperations(),
        responseHeaders: HeaderOperations = HeaderOperations(), rewrite: RouteRewrite? = nil,
        redirect: RouteRedirect? = nil, timeout: Duration? = nil, retry: RetryPolicy = .istioDefault,
        fault: FaultInjection? = nil, mirror: MirrorPolicy? = nil
    ) {
        self.name = name
        self.matches = matches
        self.requestHeaders = requestHeaders
        self.responseHeaders = responseHeaders
        self.rewrite = rewrite
        self.redirect = redirect
        self.timeout = timeout
        self.retry = retry
        self.fault = fault
        self.mirror = mirror
    }

    /// Matches everything, Istio's default retries, nothing else.
    public static let `default` = RouteRule()

    /// Whether the request satisfies one of the matches (or there are none).
    public func accepts(method: String, path: Substring, headers: some Sequence<(name: String, value: String)>) -> Bool {
        matches.isEmpty || matches.contains { $0.accepts(method: method, path: path, headers: headers) }
    }

    /// The matched `uri` prefix, for a prefix rewrite (the first matching alternative's).
    func matchedPrefix(method: String, path: Substring, headers: some Sequence<(name: String, value: String)>) -> String? {
        for match in matches where match.accepts(method: method, path: path, headers: headers) {
            if case .prefix(let prefix) = match.uri { return prefix }
            return nil
        }
        return nil
    }
}

/// Istio's `HTTPMatchRequest`: every condition given must hold.
public struct RequestMatch: Sendable, Hashable {
    /// Condition on the path (the query string is not part of it, as in Envoy).
    public var uri: StringMatch?
    /// Condition on the method.
    public var method: StringMatch?
    /// Conditions on request headers (names lowercased); a missing header fails its condition.
    public var headers: [String: StringMatch]

    /// Creates a match.
    public init(uri: StringMatch? = nil, method: StringMatch? = nil, headers: [String: StringMatch] = [:]) {
        self.uri = uri
        self.method = method
        self.headers = headers
    }

    /// Whether the request satisfies every condition.
    public func accepts(method requestMethod: String, path: Substring, headers requestHeaders: some Sequence<(name: String, value: String)>) -> Bool {
        if let uri, !uri.matches(path) { return false }
        if let method, !method.matches(Substring(requestMethod)) { return false }
        for (name, condition) in headers {
            guard let value = requestHeaders.first(where: { $0.name.equalsIgnoringASCIICase(name) })?.value,
                  condition.matches(Substring(value)) else { return false }
        }
        return true
    }
}

/// Istio's `StringMatch`: exact, prefix or a whole-string regular expression.
public enum StringMatch: Sendable, Hashable {
    /// The whole value equals the string.
    case exact(String)
    /// The value starts with the string.
    case prefix(String)
    /// The whole value matches the expression (RE2's syntax, matched in linear time; see
    /// ``MatchPattern``).
    case regex(MatchPattern)

    /// Whether `value` satisfies the condition.
    public func matches(_ value: Substring) -> Bool {
        switch self {
        case .exact(let text): value == text
        case .prefix(let text): value.hasPrefix(text)
        case .regex(let pattern): pattern.matchesWhole(value)
        }
    }
}

/// Istio's `HeaderOperations`: `set` replaces, `add` appends, `remove` deletes (names are
/// case-insensitive). Applied in the order remove, set, add.
public struct HeaderOperations: Sendable, Hashable {
    /// Headers replaced (or added when absent).
    public var set: [String: String]
    /// Headers appended.
    public var add: [String: String]
    /// Headers removed.
    public var remove: [String]

    /// Creates operations; by default none.
    public init(set: [String: String] = [:], add: [String: String] = [:], remove: [String] = []) {
        self.set = set
        self.add = add
        self.remove = remove
    }

    /// Whether there is nothing to do.
    public var isEmpty: Bool { self.set.isEmpty && add.isEmpty && remove.isEmpty }
}

/// Istio's `HTTPRewrite`.
public struct RouteRewrite: Sendable, Hashable {
    /// Replaces the matched `uri` prefix, or the whole path when the rule did not match a prefix.
    public var uri: String?
    /// Replaces the `Host` header sent to the worker.
    public var authority: String?

    /// Creates a rewrite.
    public init(uri: String? = nil, authority: String? = nil) {
        self.uri = uri
        self.authority = authority
    }
}

/// Istio's `HTTPRedirect`: the gateway answers with `Location` instead of forwarding.
public struct RouteRedirect: Sendable, Hashable {
    /// Where the port of the `Location` comes from.
    public enum Port: Sendable, Hashable {
        /// Istio's `port`.
        case fixed(Int)
        /// `derivePort: FROM_PROTOCOL_DEFAULT`: the scheme's default, so none is written.
        case protocolDefault
        /// `derivePort: FROM_REQUEST_PORT`: the port of the request's `Host`, if it named one.
        case requestPort
    }

    /// Replaces the path (a `?` in it replaces the query too; otherwise the query is kept).
    public var uri: String?
    /// Replaces the host.
    public var authority: String?
    /// The status, 301 by default.
    public var redirectCode: Int
    /// Replaces the scheme (`http` or `https`).
    public var scheme: String?
    /// Replaces the port; without it, the `Location` keeps the port of the host it names.
    public var port: Port?

    /// Creates a redirect.
    public init(uri: String? = nil, authority: String? = nil, redirectCode: Int = 301, scheme: String? = nil, port: Port? = nil) {
        self.uri = uri
        self.authority = authority
        self.redirectCode = redirectCode
        self.scheme = scheme
        self.port = port
    }

    /// The `Location` for a request to `host` with `target` (path and query) that arrived over
    /// `scheme` (`https` on a TLS connection); without a `scheme` of its own the redirect keeps
    /// the request's.
    public func location(scheme: String, host: String, target: String) -> String {
        let queryStart = target.firstIndex(of: "?")
        let path = queryStart.map { String(target[..<$0]) } ?? target
        let query = queryStart.map { String(target[$0...]) } ?? ""
        let newTarget: String
        if let uri {
            newTarget = uri.contains("?") ? uri : uri + query
        } else {
            newTarget = path + query
        }
        let base = authority ?? host
        let (name, ownPort) = Self.split(base)
        let newScheme = self.scheme ?? scheme
        let newPort: Substring?
        switch port {
        case nil:
            // The host as it is, unless a new scheme drops the old one's default port (Envoy's
            // `http://h:80` → `https://h`).
            guard newScheme != scheme, ownPort == (scheme == "https" ? "443" : "80") else {
                return "\(newScheme)://\(base)\(newTarget)"
            }
            newPort = nil
        case .fixed(let number): newPort = "\(number)"
        case .protocolDefault: newPort = nil
        case .requestPort: newPort = Self.split(host).port
        }
        return "\(newScheme)://\(name)\(newPort.map { ":" + $0 } ?? "")\(newTarget)"
    }

    /// A host (`name`, `name:port`, `[v6]`, `[v6]:port`) split at its last `:` outside brackets
    /// into its name and port; the port is nil when it is empty or not digits.
    static func split(_ host: String) -> (name: Substring, port: Substring?) {
        let searchStart = host.lastIndex(of: "]") ?? host.startIndex
        guard let colon = host[searchStart...].lastIndex(of: ":") else { return (host[...], nil) }
        let port = host[host.index(after: colon)...]
        let isNumber = !port.isEmpty && port.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }
        return (host[..<colon], isNumber ? port : nil)
    }
}

/// Istio's `HTTPFaultInjection`: delays and aborts, each for a percentage of requests, rolled
/// independently.
public struct FaultInjection: Sendable, Hashable {
    /// Wait `duration` before forwarding, for `percent` (0...100) of requests.
    public struct Delay: Sendable, Hashable {
        /// Share of requests delayed, in percent.
        public var percent: Double
        /// Istio's `fixedDelay`.
        public var duration: Duration
        /// Creates a delay.
        public init(percent: Double, duration: Duration) {
            self.percent = percent
            self.duration = duration
        }
    }

    /// Answer with `status` instead of forwarding, for `percent` (0...100) of requests.
    public struct Abort: Sendable, Hashable {
        /// Share of requests aborted, in percent.
        public var percent: Double
        /// Istio's `httpStatus`.
        public var status: Int
        /// Creates an abort.
        public init(percent: Double, status: Int) {
            self.percent = percent
            self.status = status
        }
    }

    /// The delay, if any.
    public var delay: Delay?
    /// The abort, if any.
    public var abort: Abort?

    /// Creates a fault.
    public init(delay: Delay? = nil, abort: Abort? = nil) {
        self.delay = delay
        self.abort = abort
    }
}

/// Istio's `mirror` + `mirrorPercentage`: a copy of the request goes to another service (best
/// effort: the copy's answer is discarded and never delays the primary response).
public struct MirrorPolicy: Sendable, Hashable {
    /// Namespace of the service receiving copies.
    public var namespace: String
    /// Name of the service receiving copies.
    public var service: String
    /// Share of requests copied, in `0...100` (Istio: absent means 100).
    public var percent: Double

    /// Creates a mirror.
    public init(namespace: String, service: String, percent: Double = 100) {
        self.namespace = namespace
        self.service = service
        self.percent = percent
    }
}

/// Envoy's local rate limit: a token bucket that starts full with `maxTokens`, gains
/// `tokensPerFill` every `fillInterval` (never beyond `maxTokens`); a request without a token
/// gets 429.
public struct LocalRateLimit: Sendable, Hashable {
    /// Bucket size.
    public var maxTokens: Int
    /// Tokens added per interval.
    public var tokensPerFill: Int
    /// How often tokens are added.
    public var fillInterval: Duration

    /// Creates a limit.
    public init(maxTokens: Int, tokensPerFill: Int, fillInterval: Duration) {
        precondition(maxTokens > 0 && tokensPerFill > 0 && fillInterval > .zero, "a rate limit needs positive values")
        self.maxTokens = maxTokens
        self.tokensPerFill = tokensPerFill
        self.fillInterval = fillInterval
    }
}

/// DestinationRule `connectionPool` limits the gateway enforces for a service (over all its
/// event loops). A request beyond `maxConnections` waits for a slot; beyond the pending limit
/// the answer is 503 with response flag `UO`.
public struct ConnectionPoolLimits: Sendable, Hashable {
    /// `tcp.maxConnections`: requests in flight to the service's workers at once (each holds
    /// one worker connection).
    public var maxConnections: Int?
    /// `http.http1MaxPendingRequests`: requests waiting at once, for a `maxConnections` slot or
    /// for a worker.
    public var maxPendingRequests: Int?
    /// `http.maxRequestsPerConnection`: a worker connection is closed after this many
    /// requests (1 disables keep-alive to the worker).
    public var maxRequestsPerConnection: Int?

    /// Creates limits; `nil` means unlimited.
    public init(maxConnections: Int? = nil, maxPendingRequests: Int? = nil, maxRequestsPerConnection: Int? = nil) {
        self.maxConnections = maxConnections
        self.maxPendingRequests = maxPendingRequests
        self.maxRequestsPerConnection = maxRequestsPerConnection
    }

    /// Whether any limit needs counting across requests.
    var isLimited: Bool { maxConnections != nil || maxPendingRequests != nil }
}

/// Where the consistent-hash key of a request comes from (DestinationRule
/// `loadBalancer.consistentHash`).
public enum HashKeySource: Sendable, Hashable {
    /// The value of this request header (`httpHeaderName`).
    case header(String)
    /// The value of this cookie (`httpCookie.name`). With `issue`, a request without the
    /// cookie gets a new random value, and its response sets the cookie, so the client sticks to
    /// its worker from then on (Envoy's generated cookie).
    case cookie(String, issue: IssuedCookie? = nil)

    /// The key's hash for a request, or `nil` when the request does not carry the key.
    func hash(headers: some Sequence<(name: String, value: String)>) -> UInt64? {
        switch self {
        case .header(let name):
            return headers.first { $0.name.equalsIgnoringASCIICase(name) }.map { Self.fnv1a($0.value) }
        case .cookie(let name, _):
            for (header, value) in headers where header.equalsIgnoringASCIICase("cookie") {
                for pair in value.split(separator: ";") {
                    let trimmed = pair.trimmingASCIIWhitespace()
                    guard let equals = trimmed.firstIndex(of: "="), trimmed[..<equals] == name else { continue }
                    return Self.fnv1a(trimmed[trimmed.index(after: equals)...])
                }
            }
            return nil
        }
    }

    /// FNV-1a, 64 bit: stable across processes (unlike `Hasher`), so a key keeps its worker.
    static func fnv1a(_ text: some StringProtocol) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x100_0000_01b3
        }
        return hash
    }
}

/// How the gateway issues a consistent-hash cookie (Istio `httpCookie` `path` and `ttl`).
public struct IssuedCookie: Sendable, Hashable {
    /// The cookie's `Path`, if any.
    public var path: String?
    /// The cookie's lifetime; zero makes a session cookie (no `Max-Age`), as in Envoy.
    public var ttl: Duration

    /// Creates the settings.
    public init(path: String? = nil, ttl: Duration) {
        self.path = path
        self.ttl = ttl
    }

    /// The `Set-Cookie` value for cookie `name` with `value`.
    public func setCookie(name: String, value: String) -> String {
        var text = "\(name)=\(value)"
        if let path { text += "; Path=\(path)" }
        if ttl > .zero { text += "; Max-Age=\(max(1, ttl.components.seconds))" }
        return text + "; HttpOnly"
    }
}
