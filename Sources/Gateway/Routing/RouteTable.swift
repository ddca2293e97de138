/// Identifies one revision: the unit the gateway sends a request to.
public struct RevisionID: Hashable, Sendable, CustomStringConvertible {
    /// The namespace the revision lives in.
    public var namespace: String
    /// The revision's name, for example `hello-00002`.
    public var name: String

    /// Creates an identifier.
    public init(namespace: String, name: String) {
        self.namespace = namespace
        self.name = name
    }

    /// `namespace/name`.
    public var description: String { "\(namespace)/\(name)" }
}

/// One weighted destination of a route.
public struct RouteTarget: Hashable, Sendable {
    /// The revision that serves this share of the traffic.
    public var revision: RevisionID
    /// Share of requests in percent (the targets of one route sum to 100).
    public var percent: Int
    /// The longest a request may take, from arrival to the end of the response
    /// (Knative's `timeoutSeconds`). It also bounds the wait for a worker at scale zero.
    public var timeout: Duration

    /// Creates a target.
    public init(revision: RevisionID, percent: Int, timeout: Duration) {
        self.revision = revision
        self.percent = percent
        self.timeout = timeout
    }
}

/// Where requests for one host go.
public struct Route: Hashable, Sendable {
    /// Namespace of the service.
    public var namespace: String
    /// Name of the service.
    public var service: String
    /// Weighted targets; their percents sum to 100. Empty means the service has no ready
    /// revision yet (the gateway answers 503).
    public var targets: [RouteTarget]
    /// Tagged targets: each answers on its own host `<tag>-<service>.<namespace>.<domain>` and
    /// to the `Knative-Serving-Tag: <tag>` header on the service's host.
    public var tags: [String: RouteTarget]
    /// The service's traffic policy (rules, retries, faults, limits).
    public var policy: RoutePolicy
    /// For a service that serves a model: every revision in its traffic block by name (0 %
    /// targets included). A request for `/v2/models/<model>/versions/<revision>/...` goes to
    /// that revision instead of the split, as a version in the Open Inference Protocol names
    /// one model version. Empty for other services.
    public var modelVersions: [String: RouteTarget]

    /// Creates a route.
    public init(
        namespace: String, service: String, targets: [RouteTarget], tags: [String: RouteTarget] = [:],
        policy: RoutePolicy = .default, modelVersions: [String: RouteTarget] = [:]
    ) {
        self.namespace = namespace
        self.service = service
        self.targets = targets
        self.tags = tags
        self.policy = policy
        self.modelVersions = modelVersions
    }

    /// The target a model request names by its path (`/v2/models/<m>/versions/<v>...`), if
    /// `<v>` is one of ``modelVersions``.
    public func modelVersionTarget(path: Substring) -> RouteTarget? {
        guard !modelVersions.isEmpty, path.hasPrefix("/v2/models/") else { return nil }
        let parts = path.dropFirst("/v2/models/".count).split(separator: "/", maxSplits: 3, omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[1] == "versions" else { return nil }
        let version = parts[2].prefix { $0 != "?" }
        return modelVersions[String(version)]
    }

    /// The host this route answers to: `<service>.<namespace>.<domain>`.
    public func host(domain: String) -> String { "\(service).\(namespace).\(domain)" }

    /// Picks a target for a request. `roll` is a number in `0..<100` (the caller supplies it,
    /// so tests are deterministic).
    public func pick(roll: Int) -> RouteTarget? {
        var remaining = roll
        for target in targets {
            if remaining < target.percent { return target }
            remaining -= target.percent
        }
        return targets.last
    }
}

/// An immutable snapshot of every route. The control plane compiles one from desired state
/// and publishes it; the gateway reads whole snapshots and never queries the store.
public struct RouteTable: Sendable {
    /// The domain suffix of service hosts (default `localhost`).
    public let domain: String
    /// Routes keyed by lowercased host name without port.
    private let routesByHost: [String: Route]
    /// Shared counters of the services whose policy limits requests.
    let runtimes: [ServiceKey: RouteRuntime]

    /// Compiles a table. Later routes for the same host replace earlier ones.
    public init(domain: String, routes: [Route]) {
        self.domain = domain.lowercased()
        var byHost: [String: Route] = [:]
        byHost.reserveCapacity(routes.count)
        for route in routes {
            byHost[route.host(domain: self.domain).lowercased()] = route
            for (tag, target) in route.tags {
                // A tag host sends everything to its target.
                let tagged = Route(namespace: route.namespace, service: route.service, targets: [RouteTarget(
                    revision: target.revision, percent: 100, timeout: target.timeout)], policy: route.policy,
                    modelVersions: route.modelVersions.isEmpty ? [:] : [target.revision.name: target])
                byHost["\(tag)-\(route.service).\(route.namespace).\(self.domain)".lowercased()] = tagged
            }
        }
        self.routesByHost = byHost
        var runtimes: [ServiceKey: RouteRuntime] = [:]
        for route in routes where route.policy.needsRuntime {
            runtimes[ServiceKey(route)] = RouteRuntime(rateLimit: route.policy.rateLimit, limits: route.policy.connectionPool)
        }
        self.runtimes = runtimes
    }

    private init(domain: String, routesByHost: [String: Route], runtimes: [ServiceKey: RouteRuntime]) {
        self.domain = domain
        self.routesByHost = routesByHost
        self.runtimes = runtimes
    }

    /// This table with the token buckets and counters of `previous` kept for every service
    /// whose limits did not change, so publishing a table does not refill buckets.
    func inheritingRuntime(from previous: RouteTable) -> RouteTable {
        guard !runtimes.isEmpty, !previous.runtimes.isEmpty else { return self }
        var merged = runtimes
        for (key, runtime) in runtimes {
            if let old = previous.runtimes[key] {
                if old.rateLimit == runtime.rateLimit, old.limits == runtime.limits {
                    merged[key] = old
                } else {
                    // New limits start a new runtime: requests queued in the old one go on now
                    // rather than wait behind requests the new runtime does not count.
                    old.retire()
                }
            }
        }
        return RouteTable(domain: domain, routesByHost: routesByHost, runtimes: merged)
    }

    /// The shared counters of a route's service, if its policy has limits.
    func runtime(for route: Route) -> RouteRuntime? {
        runtimes.isEmpty ? nil : runtimes[ServiceKey(route)]
    }

    /// An empty table: every host is unknown.
    public static func empty(domain: String) -> RouteTable { RouteTable(domain: domain, routes: []) }

    /// All routes, in no particular order.
    public var routes: [Route] { Array(routesByHost.values) }

    /// Finds the route for a `Host` header value (any port suffix and case are ignored).
    public func route(forHost hostHeader: some StringProtocol) -> Route? {
        routesByHost[Self.normalize(host: hostHeader)]
    }

    /// Whether a `Host` value names the machine rather than a service: an IPv4 or bracketed IPv6
    /// address, or `localhost`.
    static func isAddressHost(_ hostHeader: some StringProtocol) -> Bool {
        let name = normalize(host: hostHeader)
        if name == "localhost" || name.hasPrefix("[") { return true }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil }
    }

    /// Lowercases a `Host` value (ASCII; host names on the wire are ASCII or punycode) and
    /// strips its port and a trailing dot. Works on the UTF-8 bytes: an already-normal host
    /// costs one scan and no allocation.
    static func normalize(host: some StringProtocol) -> String {
        var text = String(host)
        return text.withUTF8 { bytes in
            var end = bytes.count
            // "[::1]:8080" keeps the bracketed part; "name:8080" drops ":8080".
            var index = end - 1
            while index >= 0 {
                let byte = bytes[index]
                if byte == UInt8(ascii: "]") { break }
                if byte == UInt8(ascii: ":") { end = index; break }
                index -= 1
            }
            if end > 0, bytes[end - 1] == UInt8(ascii: ".") { end -= 1 }
            var upper = false
            for offset in 0..<end where bytes[offset] &- UInt8(ascii: "A") < 26 {
                upper = true
                break
            }
            if !upper, end == bytes.count { return String(host) }
            return String(unsafeUninitializedCapacity: end) { buffer in
                for offset in 0..<end {
                    let byte = bytes[offset]
                    buffer[offset] = byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
                }
                return end
            }
        }
    }
}

extension ServiceKey {
    /// The service a route belongs to.
    init(_ route: Route) {
        self.init(namespace: route.namespace, service: route.service)
    }
}
