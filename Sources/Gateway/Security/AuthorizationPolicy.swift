import Glibc
import NIOHTTP1

/// A value pattern of Istio's AuthorizationPolicy fields: `abc` (exact), `abc*` (prefix),
/// `*abc` (suffix) or `*` (any non-empty value).
public struct StringPattern: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable { case exact, prefix, suffix, present }
    let kind: Kind
    let text: String
    /// The pattern as written.
    public let description: String

    /// Parses a pattern; `caseInsensitive` patterns (hosts) are kept lowercased.
    public init(_ pattern: String, caseInsensitive: Bool = false) {
        description = pattern
        let value = caseInsensitive ? pattern.lowercased() : pattern
        if value == "*" {
            (kind, text) = (.present, "")
        } else if value.hasSuffix("*") {
            (kind, text) = (.prefix, String(value.dropLast()))
        } else if value.hasPrefix("*") {
            (kind, text) = (.suffix, String(value.dropFirst()))
        } else {
            (kind, text) = (.exact, value)
        }
    }

    /// Whether `value` matches; an absent value matches nothing.
    func matches(_ value: Substring?) -> Bool {
        guard let value else { return false }
        switch kind {
        case .exact: return value == text
        case .prefix: return value.hasPrefix(text)
        case .suffix: return value.hasSuffix(text)
        case .present: return !value.isEmpty
        }
    }
}

/// An IPv4 or IPv6 address block in CIDR notation (`10.0.0.0/8`, `::1/128`, or one address).
public struct IPBlock: Sendable, Hashable, CustomStringConvertible {
    /// The network, as 16 bytes (IPv4 as an IPv4-mapped IPv6 address).
    let network: [UInt8]
    /// Leading bits that must match, out of 128.
    let prefixBits: Int
    /// The block as written.
    public let description: String

    /// Parses `address[/bits]`; nil when it is not an IP address or the prefix is out of range.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let (bytes, isIPv4) = Self.parse(String(parts[0])) else { return nil }
        let width = isIPv4 ? 32 : 128
        var bits = width
        if parts.count == 2 {
            guard let parsed = Int(parts[1]), (0...width).contains(parsed) else { return nil }
            bits = parsed
        }
        network = bytes
        prefixBits = bits + (isIPv4 ? 96 : 0)
        description = text
    }

    /// Whether the address `ip` (as the gateway renders client addresses) lies in the block.
    func contains(_ ip: Substring?) -> Bool {
        guard let ip, let (bytes, _) = Self.parse(String(ip)) else { return false }
        var remaining = prefixBits
        for index in 0..<16 where remaining > 0 {
            let mask: UInt8 = remaining >= 8 ? 0xFF : ~(0xFF >> UInt8(remaining))
            if bytes[index] & mask != network[index] & mask { return false }
            remaining -= 8
        }
        return true
    }

    /// The 16-byte form of an address, and whether it was IPv4.
    static func parse(_ text: String) -> ([UInt8], Bool)? {
        var bytes = [UInt8](repeating: 0, count: 16)
        if text.contains(":") {
            let parsed = bytes.withUnsafeMutableBytes { inet_pton(AF_INET6, text, $0.baseAddress) }
            guard parsed == 1 else { return nil }
            let mapped = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
            return (bytes, mapped)
        }
        var v4 = [UInt8](repeating: 0, count: 4)
        guard v4.withUnsafeMutableBytes({ inet_pton(AF_INET, text, $0.baseAddress) }) == 1 else { return nil }
        bytes[10] = 0xFF
        bytes[11] = 0xFF
        bytes.replaceSubrange(12..<16, with: v4)
        return (bytes, true)
    }
}

/// One field of a rule with its `not` variant (Istio: `principals` / `notPrincipals`): it
/// matches when the value matches one of `values` (or `values` is empty) and none of `notValues`.
public struct FieldMatch<Pattern: Sendable & Hashable>: Sendable, Hashable {
    /// The value must match one of these (no constraint when empty).
    public var values: [Pattern]
    /// The value must match none of these.
    public var notValues: [Pattern]

    /// Creates a field.
    public init(_ values: [Pattern] = [], not notValues: [Pattern] = []) {
        self.values = values
        self.notValues = notValues
    }

    /// No constraint.
    var isEmpty: Bool { values.isEmpty && notValues.isEmpty }

    func matches(_ test: (Pattern) -> Bool) -> Bool {
        (values.isEmpty || values.contains(where: test)) && !notValues.contains(where: test)
    }
}

/// Istio's `rules[].from[].source`.
public struct AuthorizationSource: Sendable, Hashable {
    /// Peer identities `<trust-domain>/ns/<namespace>/sa/<name>` (from the client certificate).
    public var principals = FieldMatch<StringPattern>()
    /// The peer identity's namespace.
    public var namespaces = FieldMatch<StringPattern>()
    /// The connection's source address.
    public var ipBlocks = FieldMatch<IPBlock>()
    /// The original client address. With no trusted proxies (Istio's default
    /// `numTrustedProxies: 0`) that is the connection's source address: `X-Forwarded-For` is
    /// not used, since any client can send one.
    public var remoteIpBlocks = FieldMatch<IPBlock>()

    /// Creates a source with no constraint.
    public init() {}

    func matches(_ request: AuthorizationRequest) -> Bool {
        principals.matches { $0.matches(request.principal) }
            && namespaces.matches { $0.matches(request.principalNamespace) }
            && ipBlocks.matches { $0.contains(request.sourceIP) }
            && remoteIpBlocks.matches { $0.contains(request.remoteIP) }
    }
}

/// Istio's `rules[].to[].operation`.
public struct AuthorizationOperation: Sendable, Hashable {
    /// The `Host` header (case-insensitive, without a port or a trailing dot, as routing reads it).
    public var hosts = FieldMatch<StringPattern>()
    /// The gateway port the request came in on.
    public var ports = FieldMatch<Int>()
    /// The request method.
    public var methods = FieldMatch<StringPattern>()
    /// The request path, without the query, normalized as the worker gets it (``RequestPath``).
    public var paths = FieldMatch<StringPattern>()

    /// Creates an operation with no constraint.
    public init() {}

    func matches(_ request: AuthorizationRequest) -> Bool {
        hosts.matches { $0.matches(request.host) }
            && ports.matches { $0 == request.port }
            && methods.matches { $0.matches(request.method[...]) }
            && paths.matches { $0.matches(request.path[...]) }
    }
}

/// Istio's `rules[].when[]`: an attribute and the values it must (not) have.
public struct AuthorizationCondition: Sendable, Hashable {
    /// The attributes the gateway knows.
    public enum Key: Sendable, Hashable {
        /// `request.headers[<name>]`.
        case header(String)
        /// `source.ip`.
        case sourceIP
        /// `remote.ip`.
        case remoteIP
        /// `source.namespace`.
        case sourceNamespace
        /// `source.principal`.
        case sourcePrincipal
        /// `destination.port`.
        case destinationPort

        /// Parses an Istio attribute name; nil for one the gateway cannot evaluate.
        public init?(_ key: String) {
            switch key {
            case "source.ip": self = .sourceIP
            case "remote.ip": self = .remoteIP
            case "source.namespace": self = .sourceNamespace
            case "source.principal": self = .sourcePrincipal
            case "destination.port": self = .destinationPort
            default:
                guard key.hasPrefix("request.headers["), key.hasSuffix("]"), key.count > "request.headers[]".count else { return nil }
                self = .header(String(key.dropFirst("request.headers[".count).dropLast()))
            }
        }

        /// Whether the values of this key are IP blocks.
        public var takesIPBlocks: Bool { self == .sourceIP || self == .remoteIP }
    }

    /// The attribute.
    public var key: Key
    /// It must match one of these (no constraint when empty).
    public var values: [String]
    /// It must match none of these.
    public var notValues: [String]
    private let patterns: FieldMatch<StringPattern>
    private let blocks: FieldMatch<IPBlock>

    /// Creates a condition; for IP keys the values must be valid blocks (others are dropped).
    public init(key: Key, values: [String], notValues: [String] = []) {
        self.key = key
        self.values = values
        self.notValues = notValues
        if key.takesIPBlocks {
            patterns = FieldMatch()
            blocks = FieldMatch(values.compactMap(IPBlock.init), not: notValues.compactMap(IPBlock.init))
        } else {
            patterns = FieldMatch(values.map { StringPattern($0) }, not: notValues.map { StringPattern($0) })
            blocks = FieldMatch()
        }
    }

    func matches(_ request: AuthorizationRequest) -> Bool {
        switch key {
        case .sourceIP: return blocks.matches { $0.contains(request.sourceIP) }
        case .remoteIP: return blocks.matches { $0.contains(request.remoteIP) }
        case .header(let name):
            let value = request.headers.first(name: name)
            return patterns.matches { $0.matches(value?[...]) }
        case .sourceNamespace: return patterns.matches { $0.matches(request.principalNamespace) }
        case .sourcePrincipal: return patterns.matches { $0.matches(request.principal) }
        case .destinationPort: return patterns.matches { $0.matches(String(request.port)[...]) }
        }
    }
}

/// One rule: it matches when one of `from` matches (or `from` is empty), one of `to` matches
/// (or `to` is empty) and every `when` matches.
public struct AuthorizationRule: Sendable, Hashable {
    /// Sources, any of which may match.
    public var from: [AuthorizationSource]
    /// Operations, any of which may match.
    public var to: [AuthorizationOperation]
    /// Conditions, all of which must match.
    public var when: [AuthorizationCondition]

    /// Creates a rule (with no arguments, one that matches every request).
    public init(from: [AuthorizationSource] = [], to: [AuthorizationOperation] = [], when: [AuthorizationCondition] = []) {
        self.from = from
        self.to = to
        self.when = when
    }

    func matches(_ request: AuthorizationRequest) -> Bool {
        (from.isEmpty || from.contains { $0.matches(request) })
            && (to.isEmpty || to.contains { $0.matches(request) })
            && when.allSatisfy { $0.matches(request) }
    }
}

/// An Istio AuthorizationPolicy, compiled: which workloads it selects, what it does and when.
public struct AuthorizationPolicy: Sendable, Hashable {
    /// What a matching policy does.
    public enum Action: String, Sendable, Hashable {
        /// A request to a workload with ALLOW policies must match one of them.
        case allow = "ALLOW"
        /// A matching request is denied, whatever the ALLOW policies say.
        case deny = "DENY"
        /// A matching request is logged; it does not change the decision.
        case audit = "AUDIT"
    }

    /// Namespace of the policy; a policy in ``SecurityTable/rootNamespace`` applies to every
    /// namespace.
    public var namespace: String
    /// Name of the policy.
    public var name: String
    /// The service it selects (`selector.matchLabels["serving.knative.dev/service"]`); nil
    /// selects every service of its namespace.
    public var service: String?
    /// What it does.
    public var action: Action
    /// Its rules; a policy with none matches nothing.
    public var rules: [AuthorizationRule]
    /// `istio.io/dry-run: "true"`: the decision is logged, not enforced.
    public var dryRun: Bool

    /// Creates a policy.
    public init(namespace: String, name: String, service: String? = nil, action: Action, rules: [AuthorizationRule], dryRun: Bool = false) {
        self.namespace = namespace
        self.name = name
        self.service = service
        self.action = action
        self.rules = rules
        self.dryRun = dryRun
    }

    /// Whether the policy matches the request.
    func matches(_ request: AuthorizationRequest) -> Bool {
        rules.contains { $0.matches(request) }
    }

    /// `namespace/name`.
    var reference: String { "\(namespace)/\(name)" }
}

/// The facts about one request that policies look at.
struct AuthorizationRequest {
    /// The verified peer identity without `spiffe://` (`<trust-domain>/ns/<ns>/sa/<name>`).
    var principal: Substring?
    /// The namespace of the peer identity.
    var principalNamespace: Substring?
    /// The connection's source address.
    var sourceIP: Substring?
    /// The original client address: the source address (no proxy in front is trusted).
    var remoteIP: Substring?
    /// The `Host` header as routing reads it: lowercased, without a port or a trailing dot.
    var host: Substring?
    /// The port the request came in on.
    var port: Int
    var method: String
    /// The path without the query, normalized as the worker gets it (``RequestPath``).
    var path: String
    var headers: HTTPHeaders

    init(identity: String?, sourceIP: String, head: HTTPRequestHead, host: String?, port: Int) {
        if let identity, identity.hasPrefix("spiffe://") {
            let principal = identity.dropFirst("spiffe://".count)
            self.principal = principal
            let parts = principal.split(separator: "/", omittingEmptySubsequences: false)
            if let index = parts.firstIndex(of: "ns"), index + 1 < parts.count { principalNamespace = parts[index + 1] }
        }
        self.sourceIP = sourceIP[...]
        // Istio's default `numTrustedProxies: 0`: `X-Forwarded-For` is the client's to write,
        // so the original client is the connection's peer.
        remoteIP = sourceIP[...]
        if let host {
            // As routing reads it (case, port and a trailing dot ignored), so a host that
            // routes to the service is the host its policies see; IPv6 without brackets.
            let normalized = RouteTable.normalize(host: host)
            self.host = normalized.hasPrefix("[") ? normalized.dropFirst().prefix { $0 != "]" } : normalized[...]
        }
        self.port = port
        method = head.method.rawValue
        path = Self.normalize(path: head.uri)
        headers = head.headers
    }

    /// The path as policies match it: normalized (``RequestPath``; the gateway forwards the
    /// same path), without the query and fragment.
    static func normalize(path uri: String) -> String {
        let normalized = RequestPath.normalized(uri) ?? uri
        return String(normalized.prefix { $0 != "?" && $0 != "#" })
    }
}
