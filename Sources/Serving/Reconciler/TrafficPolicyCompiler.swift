public import Gateway
public import Store

/// A stored traffic policy that does not compile; `field` is its JSON path, e.g.
/// `http[0].retries.perTryTimeout`.
public struct TrafficPolicyError: Error, Hashable, Sendable {
    /// Path of the offending field.
    public var field: String
    /// What is wrong and what is expected.
    public var message: String

    /// Creates an error.
    public init(field: String, _ message: String) {
        self.field = field
        self.message = message
    }
}

/// A traffic policy split by where it acts: the gateway's part goes into the route table, the
/// workers' part (load balancing and outlier detection) into the service's revision pools.
public struct CompiledTrafficPolicy: Hashable, Sendable {
    /// Rules and limits the gateway applies.
    public var route: RoutePolicy
    /// How the pools choose and eject workers.
    public var workers: WorkerPolicy

    /// Creates a compiled policy.
    public init(route: RoutePolicy = .default, workers: WorkerPolicy = WorkerPolicy()) {
        self.route = route
        self.workers = workers
    }
}

/// Turns a ``TrafficPolicySpec`` (Istio names, strings) into checked values with Istio's
/// defaults. The admin API calls it to validate a policy before storing it, so a stored policy
/// always compiles.
public enum TrafficPolicyCompiler {
    /// Compiles `spec` for a service in `namespace`.
    public static func compile(_ spec: TrafficPolicySpec, namespace: String) throws(TrafficPolicyError) -> CompiledTrafficPolicy {
        var compiled = CompiledTrafficPolicy()
        for (index, rule) in (spec.http ?? []).enumerated() {
            compiled.route.rules.append(try compile(rule, at: "http[\(index)]", namespace: namespace))
        }
        if let limit = spec.rateLimit {
            let interval = try duration(limit.fillInterval, at: "rateLimit.fillInterval")
            // Envoy's token bucket: uint32 counts, and one token per fill unless told otherwise.
            try tokenCount(limit.maxTokens, at: "rateLimit.maxTokens")
            let perFill = limit.tokensPerFill ?? 1
            try tokenCount(perFill, at: "rateLimit.tokensPerFill")
            compiled.route.rateLimit = LocalRateLimit(maxTokens: limit.maxTokens, tokensPerFill: perFill, fillInterval: interval)
        }
        guard let destination = spec.trafficPolicy else { return compiled }
        if let pool = destination.connectionPool {
            let path = "trafficPolicy.connectionPool"
            let maxConnections = pool.tcp?.maxConnections
            let pending = pool.http?.http1MaxPendingRequests
            let perConnection = pool.http?.maxRequestsPerConnection
            if let maxConnections { try positive(maxConnections, at: "\(path).tcp.maxConnections") }
            if let pending { try positive(pending, at: "\(path).http.http1MaxPendingRequests") }
            if let perConnection, perConnection < 0 {
                throw TrafficPolicyError(field: "\(path).http.maxRequestsPerConnection", "must be 0 (unlimited) or more")
            }
            compiled.route.connectionPool = ConnectionPoolLimits(
                maxConnections: maxConnections, maxPendingRequests: pending,
                maxRequestsPerConnection: perConnection == 0 ? nil : perConnection)
        }
        if let balancer = destination.loadBalancer {
            compiled.workers.loadBalancer = try loadBalancer(balancer, hashKey: &compiled.route.hashKey)
        }
        if let outlier = destination.outlierDetection {
            compiled.workers.outlierDetection = try outlierDetection(outlier)
        }
        return compiled
    }

    private static func compile(_ spec: HTTPRouteSpec, at path: String, namespace: String) throws(TrafficPolicyError) -> RouteRule {
        var rule = RouteRule(name: spec.name)
        for (index, match) in (spec.match ?? []).enumerated() {
            let at = "\(path).match[\(index)]"
            var compiled = RequestMatch()
            if let uri = match.uri { compiled.uri = try stringMatch(uri, at: "\(at).uri") }
            if let method = match.method { compiled.method = try stringMatch(method, at: "\(at).method") }
            for (name, condition) in match.headers ?? [:] {
                try checkHeaderName(name, at: "\(at).headers")
                compiled.headers[name.lowercased()] = try stringMatch(condition, at: "\(at).headers.\(name)")
            }
            rule.matches.append(compiled)
        }
        if let request = spec.headers?.request { rule.requestHeaders = try operations(request, at: "\(path).headers.request") }
        if let response = spec.headers?.response { rule.responseHeaders = try operations(response, at: "\(path).headers.response") }
        if spec.rewrite != nil && spec.redirect != nil {
            throw TrafficPolicyError(field: "\(path).redirect", "cannot be combined with rewrite (as in Istio): a redirect answers, a rewrite forwards")
        }
        for (field, value) in [("rewrite.uri", spec.rewrite?.uri), ("redirect.uri", spec.redirect?.uri)] {
            if let value, value.unicodeScalars.contains(where: { $0.value < 0x21 || $0.value == 0x7F }) {
                throw TrafficPolicyError(field: "\(path).\(field)", "must not contain spaces or control characters")
            }
        }
        for (field, value) in [("rewrite.authority", spec.rewrite?.authority), ("redirect.authority", spec.redirect?.authority)] {
            if let value, !Self.isAuthority(value) {
                throw TrafficPolicyError(field: "\(path).\(field)", "must be a host, host:port, [IPv6] or [IPv6]:port, got \(value)")
            }
        }
        if let rewrite = spec.rewrite {
            if let uri = rewrite.uri, !uri.hasPrefix("/") {
                throw TrafficPolicyError(field: "\(path).rewrite.uri", "must start with '/'")
            }
            rule.rewrite = RouteRewrite(uri: rewrite.uri, authority: rewrite.authority)
        }
        if let redirect = spec.redirect {
            let code = redirect.redirectCode ?? 301
            guard [301, 302, 303, 307, 308].contains(code) else {
                throw TrafficPolicyError(field: "\(path).redirect.redirectCode", "must be 301, 302, 303, 307 or 308, got \(code)")
            }
            if let uri = redirect.uri, !uri.hasPrefix("/") {
                throw TrafficPolicyError(field: "\(path).redirect.uri", "must start with '/'")
            }
            if let scheme = redirect.scheme, scheme != "http", scheme != "https" {
                throw TrafficPolicyError(field: "\(path).redirect.scheme", "must be http or https, got \(scheme)")
            }
            var port: RouteRedirect.Port?
            if let number = redirect.port {
                guard (1...65535).contains(number) else {
                    throw TrafficPolicyError(field: "\(path).redirect.port", "must be 1 to 65535, got \(number)")
                }
                guard redirect.derivePort == nil else {
                    throw TrafficPolicyError(field: "\(path).redirect.derivePort", "cannot be combined with port (as in Istio): give one of them")
                }
                port = .fixed(number)
            } else if let derive = redirect.derivePort {
                switch derive {
                case "FROM_PROTOCOL_DEFAULT": port = .protocolDefault
                case "FROM_REQUEST_PORT": port = .requestPort
                default:
                    throw TrafficPolicyError(field: "\(path).redirect.derivePort", "must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT, got \(derive)")
                }
            }
            rule.redirect = RouteRedirect(
                uri: redirect.uri, authority: redirect.authority, redirectCode: code, scheme: redirect.scheme, port: port)
        }
        if let timeout = spec.timeout { rule.timeout = try duration(timeout, at: "\(path).timeout") }
        if let retries = spec.retries {
            guard retries.attempts >= 0 else {
                throw TrafficPolicyError(field: "\(path).retries.attempts", "must be 0 (no retries) or more")
            }
            let perTry = try retries.perTryTimeout.map { text throws(TrafficPolicyError) in
                try duration(text, at: "\(path).retries.perTryTimeout")
            }
            do {
                rule.retry = try RetryPolicy(attempts: retries.attempts, perTryTimeout: perTry, retryOn: retries.retryOn)
            } catch {
                throw TrafficPolicyError(
                    field: "\(path).retries.retryOn",
                    "unknown retry condition \"\(error.token)\"; use Envoy's (5xx, gateway-error, reset, connect-failure, retriable-4xx, retriable-status-codes, refused-stream) or status codes")
            }
        }
        if let fault = spec.fault {
            var compiled = FaultInjection()
            if let delay = fault.delay {
                compiled.delay = FaultInjection.Delay(
                    percent: try percent(delay.percentage, at: "\(path).fault.delay.percentage"),
                    duration: try duration(delay.fixedDelay, at: "\(path).fault.delay.fixedDelay"))
            }
            if let abort = fault.abort {
                guard (200...599).contains(abort.httpStatus) else {
                    throw TrafficPolicyError(field: "\(path).fault.abort.httpStatus", "must be an HTTP status between 200 and 599")
                }
                compiled.abort = FaultInjection.Abort(
                    percent: try percent(abort.percentage, at: "\(path).fault.abort.percentage"), status: abort.httpStatus)
            }
            rule.fault = compiled
        }
        if let mirror = spec.mirror {
            let parts = mirror.host.split(separator: ".", omittingEmptySubsequences: false)
            let label = { (part: Substring) in
                !part.isEmpty && part.count <= 63 && part.first!.isLetter && part.last != "-"
                    && part.allSatisfy { ($0.isASCII && ($0.isLowercase || $0.isNumber)) || $0 == "-" }
            }
            guard (1...2).contains(parts.count), parts.allSatisfy(label) else {
                throw TrafficPolicyError(field: "\(path).mirror.host", "must be a service name or <service>.<namespace>, got \"\(mirror.host)\"")
            }
            rule.mirror = MirrorPolicy(
                namespace: parts.count == 2 ? String(parts[1]) : namespace, service: String(parts[0]),
                percent: try percent(spec.mirrorPercentage, at: "\(path).mirrorPercentage"))
        } else if spec.mirrorPercentage != nil {
            throw TrafficPolicyError(field: "\(path).mirrorPercentage", "needs a mirror")
        }
        return rule
    }

    private static func stringMatch(_ spec: StringMatchSpec, at path: String) throws(TrafficPolicyError) -> StringMatch {
        switch (spec.exact, spec.prefix, spec.regex) {
        case (let exact?, nil, nil): return .exact(exact)
        case (nil, let prefix?, nil): return .prefix(prefix)
        case (nil, nil, let regex?):
            do {
                return .regex(try MatchPattern(regex))
            } catch {
                throw TrafficPolicyError(field: "\(path).regex", "is not a valid RE2 pattern: \(error.message)")
            }
        default:
            throw TrafficPolicyError(field: path, "must have exactly one of exact, prefix or regex")
        }
    }

    /// Header names must be HTTP tokens and values free of CR, LF and NUL: a value with CRLF
    /// would otherwise add a header of the caller's choosing (a `Set-Cookie`, say). The headers
    /// that frame a message (and `Host`, which a request needs) are the gateway's: changing them
    /// would let a rule desynchronise a pooled worker connection (request smuggling).
    private static func operations(_ spec: HeaderOperationsSpec, at path: String) throws(TrafficPolicyError) -> HeaderOperations {
        for (kind, fields) in [("set", spec.set ?? [:]), ("add", spec.add ?? [:])] {
            for (name, value) in fields {
                try checkHeaderName(name, at: "\(path).\(kind)")
                try checkNotFraming(name, at: "\(path).\(kind)")
                if value.unicodeScalars.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\0" }) {
                    throw TrafficPolicyError(field: "\(path).\(kind).\(name)", "must not contain CR, LF or NUL")
                }
            }
        }
        for name in spec.remove ?? [] {
            try checkHeaderName(name, at: "\(path).remove")
            try checkNotFraming(name, at: "\(path).remove")
            if name.lowercased() == "host" {
                throw TrafficPolicyError(field: "\(path).remove", "cannot remove \"\(name)\": a request needs it (use rewrite.authority to change it)")
            }
        }
        return HeaderOperations(set: spec.set ?? [:], add: spec.add ?? [:], remove: spec.remove ?? [])
    }

    /// Headers that frame an HTTP/1.1 message or the connection; only the gateway sets them.
    private static let framingHeaders: Set<String> = [
        "content-length", "transfer-encoding", "connection", "keep-alive", "te", "upgrade", "proxy-connection",
    ]

    private static func checkNotFraming(_ name: String, at path: String) throws(TrafficPolicyError) {
        guard !framingHeaders.contains(name.lowercased()) else {
            throw TrafficPolicyError(field: path, "cannot change \"\(name)\": it frames the HTTP message, which only the gateway sets")
        }
    }

    /// An HTTP field name is a token (RFC 9110 §5.1).
    private static func checkHeaderName(_ name: String, at path: String) throws(TrafficPolicyError) {
        guard isToken(name) else {
            throw TrafficPolicyError(field: path, "has \"\(name)\", which is not a valid header name (letters, digits and !#$%&'*+-.^_`|~)")
        }
    }

    /// Whether `text` is an HTTP token (RFC 9110 §5.6.2; RFC 6265's cookie-name too).
    private static func isToken(_ text: String) -> Bool {
        let tchar = Set("!#$%&'*+-.^_`|~".unicodeScalars)
        return !text.isEmpty && text.unicodeScalars.allSatisfy { $0.isASCII && (tchar.contains($0) || $0.properties.isAlphabetic || ("0"..."9").contains($0)) }
    }

    private static func loadBalancer(_ spec: LoadBalancerSpec, hashKey: inout HashKeySource?) throws(TrafficPolicyError) -> LoadBalancer {
        let path = "trafficPolicy.loadBalancer"
        switch (spec.simple, spec.consistentHash) {
        case (let simple?, nil):
            switch simple {
            case "LEAST_REQUEST", "UNSPECIFIED", "LEAST_CONN": return .leastRequest
            case "ROUND_ROBIN": return .roundRobin
            case "RANDOM": return .random
            default:
                throw TrafficPolicyError(field: "\(path).simple", "must be LEAST_REQUEST, ROUND_ROBIN or RANDOM, got \"\(simple)\"")
            }
        case (nil, let hash?):
            switch (hash.httpHeaderName, hash.httpCookie) {
            case (let header?, nil) where !header.isEmpty: hashKey = .header(header.lowercased())
            case (nil, let cookie?) where !cookie.name.isEmpty:
                // Both go into a `Set-Cookie` header as written (RFC 6265 §4.1.1).
                guard isToken(cookie.name) else {
                    throw TrafficPolicyError(field: "\(path).consistentHash.httpCookie.name", "must be a cookie name (letters, digits and !#$%&'*+-.^_`|~), got \"\(cookie.name)\"")
                }
                if let cookiePath = cookie.path, cookiePath.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F || $0 == ";" }) {
                    throw TrafficPolicyError(field: "\(path).consistentHash.httpCookie.path", "must not contain control characters or ';'")
                }
                let issue = try cookie.ttl.map { text throws(TrafficPolicyError) in
                    guard let ttl = DurationText.parse(text), ttl >= .zero else {
                        throw TrafficPolicyError(field: "\(path).consistentHash.httpCookie.ttl", "must be a duration such as 0s or 1h, got \"\(text)\"")
                    }
                    return IssuedCookie(path: cookie.path, ttl: ttl)
                }
                hashKey = .cookie(cookie.name, issue: issue)
            default:
                throw TrafficPolicyError(field: "\(path).consistentHash", "must have exactly one of httpHeaderName or httpCookie")
            }
            return .consistentHash
        case (nil, nil):
            return .leastRequest
        default:
            throw TrafficPolicyError(field: path, "must have only one of simple or consistentHash")
        }
    }

    private static func outlierDetection(_ spec: OutlierDetectionSpec) throws(TrafficPolicyError) -> OutlierDetection {
        let path = "trafficPolicy.outlierDetection"
        var detection = OutlierDetection()
        if let count = spec.consecutive5xxErrors {
            guard count >= 0 else { throw TrafficPolicyError(field: "\(path).consecutive5xxErrors", "must be 0 (off) or more") }
            detection.consecutive5xxErrors = count
        }
        if let count = spec.consecutiveGatewayErrors {
            guard count >= 0 else { throw TrafficPolicyError(field: "\(path).consecutiveGatewayErrors", "must be 0 (off) or more") }
            detection.consecutiveGatewayErrors = count
        }
        if let text = spec.interval { detection.interval = try duration(text, at: "\(path).interval") }
        if let text = spec.baseEjectionTime { detection.baseEjectionTime = try duration(text, at: "\(path).baseEjectionTime") }
        if let value = spec.maxEjectionPercent {
            guard (0...100).contains(value) else { throw TrafficPolicyError(field: "\(path).maxEjectionPercent", "must be between 0 and 100") }
            detection.maxEjectionPercent = value
        }
        return detection
    }

    private static func duration(_ text: String, at path: String) throws(TrafficPolicyError) -> Duration {
        guard let value = DurationText.parse(text), value >= .milliseconds(1) else {
            throw TrafficPolicyError(field: path, "must be a duration of at least 1ms such as 250ms or 5s, got \"\(text)\"")
        }
        return value
    }

    private static func percent(_ spec: PercentSpec?, at path: String) throws(TrafficPolicyError) -> Double {
        guard let spec else { return 100 }
        guard spec.value.isFinite, (0...100).contains(spec.value) else {
            throw TrafficPolicyError(field: "\(path).value", "must be between 0 and 100")
        }
        return spec.value
    }

    private static func positive(_ value: Int, at path: String) throws(TrafficPolicyError) {
        guard value > 0 else { throw TrafficPolicyError(field: path, "must be at least 1") }
    }

    /// A token count of Envoy's bucket (a uint32 there).
    private static func tokenCount(_ value: Int, at path: String) throws(TrafficPolicyError) {
        guard (1...Int(UInt32.max)).contains(value) else {
            throw TrafficPolicyError(field: path, "must be between 1 and \(UInt32.max)")
        }
    }

    /// Whether `value` is `host`, `host:port`, `[v6]` or `[v6]:port` (port 1-65535), with no
    /// path, query, user info or spaces.
    static func isAuthority(_ value: String) -> Bool {
        var rest = Substring(value)
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]"), rest.index(after: rest.startIndex) < close,
                  rest[rest.index(after: rest.startIndex)..<close].allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." })
            else { return false }
            rest = rest[rest.index(after: close)...]
            if rest.isEmpty { return true }
            guard rest.first == ":" else { return false }
        } else {
            let name = rest.prefix { $0 != ":" }
            guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.properties.isAlphabetic || ("0"..."9").contains($0) || "-._~".unicodeScalars.contains($0) })
            else { return false }
            rest = rest[name.endIndex...]
            if rest.isEmpty { return true }
        }
        let port = rest.dropFirst()
        guard !port.isEmpty, port.count <= 5, port.unicodeScalars.allSatisfy({ ("0"..."9").contains($0) }), let number = Int(port) else {
            return false
        }
        return (1...65535).contains(number)
    }
}
