/// Identifies one service: the unit peer-authentication modes and policies select.
public struct ServiceKey: Hashable, Sendable {
    /// Namespace of the service.
    public var namespace: String
    /// Name of the service.
    public var service: String

    /// Creates a key.
    public init(namespace: String, service: String) {
        self.namespace = namespace
        self.service = service
    }
}

/// Who may call what: the peer-authentication modes (platform-wide, per namespace, per
/// service; the most specific wins, as Istio's mesh → namespace → workload precedence) and the
/// authorization policies. An immutable snapshot the control plane publishes whole
/// (``Gateway/publish(security:)``); the data path never reads the store.
public struct SecurityTable: Sendable {
    /// The namespace whose policies apply to every namespace (Istio's root namespace).
    public static let rootNamespace = "outpost-system"

    /// The platform-wide mode.
    public let platformMode: PeerAuthenticationMode
    /// Namespace-wide modes.
    public let namespaceModes: [String: PeerAuthenticationMode]
    /// Modes of single services.
    public let serviceModes: [ServiceKey: PeerAuthenticationMode]
    /// Policies by namespace (root-namespace policies under ``rootNamespace``).
    let policiesByNamespace: [String: [AuthorizationPolicy]]
    /// Nothing but a platform-wide mode: requests need no per-service check.
    let isPlatformOnly: Bool

    /// Creates a table.
    public init(
        platformMode: PeerAuthenticationMode, namespaceModes: [String: PeerAuthenticationMode] = [:],
        serviceModes: [ServiceKey: PeerAuthenticationMode] = [:], policies: [AuthorizationPolicy] = []
    ) {
        self.platformMode = platformMode
        self.namespaceModes = namespaceModes
        self.serviceModes = serviceModes
        self.policiesByNamespace = Dictionary(grouping: policies, by: \.namespace)
        self.isPlatformOnly = namespaceModes.isEmpty && serviceModes.isEmpty && policies.isEmpty
    }

    /// PERMISSIVE everywhere, no policies.
    public static let permissive = SecurityTable(platformMode: PeerAuthenticationMode.permissive)

    /// Every policy, by namespace and name.
    public var policies: [AuthorizationPolicy] {
        policiesByNamespace.values.flatMap { $0 }.sorted { ($0.namespace, $0.name) < ($1.namespace, $1.name) }
    }

    /// The mode in force for a service.
    public func mode(namespace: String, service: String) -> PeerAuthenticationMode {
        if isPlatformOnly { return platformMode }
        return serviceModes[ServiceKey(namespace: namespace, service: service)] ?? namespaceModes[namespace] ?? platformMode
    }

    /// What the TLS handshake asks of clients: a certificate is required only when every scope
    /// is STRICT, never asked for when every scope is DISABLE, and otherwise verified when
    /// offered (each request is then checked against its service's mode).
    var handshakeMode: PeerAuthenticationMode {
        let modes = [platformMode] + Array(namespaceModes.values) + Array(serviceModes.values)
        if modes.allSatisfy({ $0 == .strict }) { return .strict }
        if modes.allSatisfy({ $0 == .disable }) { return .disable }
        return .permissive
    }

    /// Whether any policy could apply to a service (cheap; no request facts needed).
    func hasPolicies(namespace: String) -> Bool {
        policiesByNamespace[namespace] != nil || policiesByNamespace[Self.rootNamespace] != nil
    }

    /// Istio's evaluation: a matching DENY policy denies; with no ALLOW policy the request is
    /// allowed; otherwise one ALLOW policy must match. Dry-run policies never decide: what they
    /// would have done goes to `note`, as do matching AUDIT policies. Returns the reason for a
    /// denial, or nil when the request may pass.
    func authorize(_ request: AuthorizationRequest, namespace: String, service: String, note: (String) -> Void) -> String? {
        // Passes over the applying policies in place: no array per request, and each policy's
        // rules are matched at most once.
        var denial: String?
        forEachPolicy(namespace: namespace, service: service) { policy in
            guard denial == nil, policy.action == .deny, policy.matches(request) else { return }
            if policy.dryRun {
                note("dry-run: DENY policy \(policy.reference) would deny this request")
            } else {
                denial = "denied by DENY policy \(policy.reference)"
            }
        }
        if let denial { return denial }
        var hasAllow = false, allowMatched = false, hasDryRunAllow = false, dryRunAllowMatched = false
        forEachPolicy(namespace: namespace, service: service) { policy in
            switch policy.action {
            case .audit:
                if policy.matches(request) { note("audit: request matched AUDIT policy \(policy.reference)") }
            case .allow where policy.dryRun:
                hasDryRunAllow = true
                if !allowMatched, !dryRunAllowMatched { dryRunAllowMatched = policy.matches(request) }
            case .allow:
                hasAllow = true
                if !allowMatched { allowMatched = policy.matches(request) }
            case .deny:
                break
            }
        }
        if hasDryRunAllow, !allowMatched, !dryRunAllowMatched {
            note("dry-run: no ALLOW policy (\(references(namespace: namespace, service: service, dryRun: true))) matches; this request would be denied")
        }
        if !hasAllow || allowMatched { return nil }
        return "no ALLOW policy matches (\(references(namespace: namespace, service: service, dryRun: false)))"
    }

    /// Calls `body` with each policy that selects a service: the root namespace's, then its own
    /// namespace's (namespace-wide or selecting it).
    private func forEachPolicy(namespace: String, service: String, _ body: (AuthorizationPolicy) -> Void) {
        if namespace != Self.rootNamespace, let root = policiesByNamespace[Self.rootNamespace] {
            for policy in root where policy.service == nil || policy.service == service { body(policy) }
        }
        guard let own = policiesByNamespace[namespace] else { return }
        for policy in own where policy.service == nil || policy.service == service { body(policy) }
    }

    /// `namespace/name` of the ALLOW policies that select a service (for a denial's reason).
    private func references(namespace: String, service: String, dryRun: Bool) -> String {
        var names: [String] = []
        forEachPolicy(namespace: namespace, service: service) { policy in
            if policy.action == .allow, policy.dryRun == dryRun { names.append(policy.reference) }
        }
        return names.joined(separator: ", ")
    }
}
