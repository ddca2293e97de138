import Foundation
import Gateway
import Hummingbird
import Store

/// The label that selects one service (Knative labels a service's pods with it).
let serviceSelectorLabel = "serving.knative.dev/service"

/// Istio's `selector`: the workloads a policy applies to.
struct WorkloadSelectorSpec: Codable, Sendable, Hashable {
    var matchLabels: [String: String]?

    /// The selected service, or nil for the whole namespace; any other label is an error.
    func service(at field: String) throws(APIError) -> String? {
        guard let labels = matchLabels, !labels.isEmpty else { return nil }
        for key in labels.keys where key != serviceSelectorLabel {
            throw APIError(.badRequest, code: "InvalidField", "only the label \(serviceSelectorLabel) can select a workload, not \(key)", field: "\(field).matchLabels")
        }
        guard let service = labels[serviceSelectorLabel], Names.dns1035Problem(service) == nil else {
            throw APIError(.badRequest, code: "InvalidField", "\(serviceSelectorLabel) must name a service (DNS-1035)", field: "\(field).matchLabels")
        }
        return service
    }
}

/// Istio's AuthorizationPolicy `spec` (security.istio.io/v1).
struct AuthorizationPolicySpec: Codable, Sendable, Hashable {
    var selector: WorkloadSelectorSpec?
    var action: String?
    var rules: [Rule]?

    struct Rule: Codable, Sendable, Hashable {
        var from: [From]?
        var to: [To]?
        var when: [Condition]?
    }

    struct From: Codable, Sendable, Hashable {
        var source: Source
    }

    struct Source: Codable, Sendable, Hashable {
        var principals: [String]?
        var notPrincipals: [String]?
        var requestPrincipals: [String]?
        var notRequestPrincipals: [String]?
        var namespaces: [String]?
        var notNamespaces: [String]?
        var ipBlocks: [String]?
        var notIpBlocks: [String]?
        var remoteIpBlocks: [String]?
        var notRemoteIpBlocks: [String]?
    }

    struct To: Codable, Sendable, Hashable {
        var operation: Operation
    }

    struct Operation: Codable, Sendable, Hashable {
        var hosts: [String]?
        var notHosts: [String]?
        var ports: [String]?
        var notPorts: [String]?
        var methods: [String]?
        var notMethods: [String]?
        var paths: [String]?
        var notPaths: [String]?
    }

    struct Condition: Codable, Sendable, Hashable {
        var key: String
        var values: [String]?
        var notValues: [String]?
    }

    /// The annotation that makes a policy log instead of enforce.
    static let dryRunAnnotation = "istio.io/dry-run"

    /// Checks the spec and compiles it for the gateway; errors name the field to fix.
    func compile(namespace: String, name: String, annotations: [String: String]) throws(APIError) -> AuthorizationPolicy {
        let actionText = (action ?? "ALLOW").uppercased()
        guard let action = AuthorizationPolicy.Action(rawValue: actionText) else {
            if actionText == "CUSTOM" {
                throw APIError(.badRequest, code: "NotSupported", "action CUSTOM (an external authorizer) is not supported; use ALLOW, DENY or AUDIT", field: "spec.action")
            }
            throw APIError(.badRequest, code: "InvalidField", "action must be ALLOW, DENY or AUDIT, got \"\(actionText)\"", field: "spec.action")
        }
        var dryRun = false
        if let text = annotations[Self.dryRunAnnotation] {
            guard let flag = Bool(text.lowercased()) else {
                throw APIError(.badRequest, code: "InvalidField", "\(Self.dryRunAnnotation) must be \"true\" or \"false\"", field: "metadata.annotations")
            }
            dryRun = flag
        }
        var compiled: [AuthorizationRule] = []
        for (index, rule) in (rules ?? []).enumerated() {
            compiled.append(try Self.compile(rule, at: "spec.rules[\(index)]"))
        }
        return AuthorizationPolicy(
            namespace: namespace, name: name, service: try selector?.service(at: "spec.selector"), action: action,
            rules: compiled, dryRun: dryRun)
    }

    private static func compile(_ rule: Rule, at field: String) throws(APIError) -> AuthorizationRule {
        var result = AuthorizationRule()
        for (index, from) in (rule.from ?? []).enumerated() {
            let at = "\(field).from[\(index)].source"
            let source = from.source
            if source.requestPrincipals != nil || source.notRequestPrincipals != nil {
                throw APIError(.badRequest, code: "NotSupported", "requestPrincipals (JWT) are not supported; match principals from client certificates", field: "\(at).requestPrincipals")
            }
            var compiled = AuthorizationSource()
            compiled.principals = FieldMatch(patterns(source.principals), not: patterns(source.notPrincipals))
            compiled.namespaces = FieldMatch(patterns(source.namespaces), not: patterns(source.notNamespaces))
            compiled.ipBlocks = FieldMatch(
                try blocks(source.ipBlocks, at: "\(at).ipBlocks"), not: try blocks(source.notIpBlocks, at: "\(at).notIpBlocks"))
            compiled.remoteIpBlocks = FieldMatch(
                try blocks(source.remoteIpBlocks, at: "\(at).remoteIpBlocks"),
                not: try blocks(source.notRemoteIpBlocks, at: "\(at).notRemoteIpBlocks"))
            result.from.append(compiled)
        }
        for (index, to) in (rule.to ?? []).enumerated() {
            let at = "\(field).to[\(index)].operation"
            let operation = to.operation
            var compiled = AuthorizationOperation()
            compiled.hosts = FieldMatch(patterns(operation.hosts, caseInsensitive: true), not: patterns(operation.notHosts, caseInsensitive: true))
            compiled.ports = FieldMatch(
                try ports(operation.ports, at: "\(at).ports"), not: try ports(operation.notPorts, at: "\(at).notPorts"))
            compiled.methods = FieldMatch(patterns(operation.methods), not: patterns(operation.notMethods))
            for (list, name) in [(operation.paths, "paths"), (operation.notPaths, "notPaths")] {
                for (position, path) in (list ?? []).enumerated() where !path.hasPrefix("/") && !path.hasPrefix("*") {
                    throw APIError(.badRequest, code: "InvalidField", "a path must start with / (or * for a suffix match), got \"\(path)\"", field: "\(at).\(name)[\(position)]")
                }
            }
            compiled.paths = FieldMatch(patterns(operation.paths), not: patterns(operation.notPaths))
            result.to.append(compiled)
        }
        for (index, condition) in (rule.when ?? []).enumerated() {
            let at = "\(field).when[\(index)]"
            guard let key = AuthorizationCondition.Key(condition.key) else {
                throw APIError(.badRequest, code: "NotSupported", "condition key \"\(condition.key)\" is not supported; use request.headers[NAME], source.ip, remote.ip, source.namespace, source.principal or destination.port", field: "\(at).key")
            }
            let values = condition.values ?? []
            let notValues = condition.notValues ?? []
            if values.isEmpty && notValues.isEmpty {
                throw APIError(.badRequest, code: "InvalidField", "a condition needs values or notValues", field: at)
            }
            if key.takesIPBlocks {
                _ = try blocks(values, at: "\(at).values")
                _ = try blocks(notValues, at: "\(at).notValues")
            }
            result.when.append(AuthorizationCondition(key: key, values: values, notValues: notValues))
        }
        return result
    }

    private static func patterns(_ values: [String]?, caseInsensitive: Bool = false) -> [StringPattern] {
        (values ?? []).map { StringPattern($0, caseInsensitive: caseInsensitive) }
    }

    private static func blocks(_ values: [String]?, at field: String) throws(APIError) -> [IPBlock] {
        var result: [IPBlock] = []
        for (index, text) in (values ?? []).enumerated() {
            guard let block = IPBlock(text) else {
                throw APIError(.badRequest, code: "InvalidField", "\"\(text)\" is not an IP address or CIDR block", field: "\(field)[\(index)]")
            }
            result.append(block)
        }
        return result
    }

    private static func ports(_ values: [String]?, at field: String) throws(APIError) -> [Int] {
        var result: [Int] = []
        for (index, text) in (values ?? []).enumerated() {
            guard let port = Int(text), (1...65535).contains(port) else {
                throw APIError(.badRequest, code: "InvalidField", "\"\(text)\" is not a port number", field: "\(field)[\(index)]")
            }
            result.append(port)
        }
        return result
    }
}

/// Istio's PeerAuthentication `spec`: the mTLS mode of a namespace, or of one service when the
/// selector names it.
struct PeerAuthenticationSpec: Codable, Sendable, Hashable {
    var selector: WorkloadSelectorSpec?
    var mtls: MutualTLS?

    struct MutualTLS: Codable, Sendable, Hashable {
        var mode: String?
    }

    /// The mode, or nil for UNSET (inherit from the namespace or the platform).
    func mode() throws(APIError) -> PeerAuthenticationMode? {
        let text = (mtls?.mode ?? "UNSET").uppercased()
        if text == "UNSET" { return nil }
        guard let mode = PeerAuthenticationMode(rawValue: text) else {
            throw APIError(.badRequest, code: "InvalidField", "mode must be STRICT, PERMISSIVE, DISABLE or UNSET, got \"\(text)\"", field: "spec.mtls.mode")
        }
        return mode
    }
}

/// Security documents carry no status.
struct NoStatus: Codable, Sendable {}

/// Shared JSON handling of the security kinds.
protocol SecurityKindDescriptor: DocumentKindDescriptor where Kind == SecurityKind, Status == NoStatus {}

extension SecurityKindDescriptor {
    static var apiVersion: String { "security.istio.io/v1" }
    static func encode(_ spec: Spec) throws -> String { String(decoding: try APIJSON.encoder(pretty: false).encode(spec), as: UTF8.self) }
    static func decodeSpec(_ text: String) throws -> Spec { try APIJSON.decoder().decode(Spec.self, from: Data(text.utf8)) }
    static func decodeStatus(_ text: String) -> Status? { nil }
}

enum AuthorizationPolicyKind: SecurityKindDescriptor {
    static let kind = SecurityKind.authorizationPolicy
    static let kindName = "AuthorizationPolicy"
    static let plural = "authorizationpolicies"
    static func validate(_ spec: AuthorizationPolicySpec, annotations: [String: String]) throws(APIError) {
        _ = try spec.compile(namespace: "", name: "", annotations: annotations)
    }
}

enum PeerAuthenticationKind: SecurityKindDescriptor {
    static let kind = SecurityKind.peerAuthentication
    static let kindName = "PeerAuthentication"
    static let plural = "peerauthentications"
    static func validate(_ spec: PeerAuthenticationSpec, annotations: [String: String]) throws(APIError) {
        _ = try spec.mode()
        _ = try spec.selector?.service(at: "spec.selector")
    }
}
