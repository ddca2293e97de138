import Foundation
import Gateway
import Hummingbird
import Store

/// `/api/v1/security`: peer-authentication modes (platform-wide, per namespace, per service),
/// the gateway certificate's rotation, and certificates imported for SNI.
struct SecurityController<Context: RequestContext>: Sendable {
    let certificates: GatewayCertificates
    let policies: SecurityPolicies
    let store: Store

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("security/mtls", use: showModes)
        group.put("security/mtls", use: setMode)
        group.post("security/gateway-certificate/rotate") { _, _ in
            certificates.rotate()
            return try jsonResponse(["status": "rotating"])
        }
        group.get("security/certificates") { _, _ in
            try jsonResponse(ListDTO(items: try certificates.importedList()))
        }
        group.put("security/certificates/:name", use: importCertificate)
        group.delete("security/certificates/:name") { _, context in
            let name = try context.parameters.require("name")
            try certificates.deleteImported(name: name)
            return try jsonResponse(["deleted": name])
        }
    }

    @Sendable func showModes(_ request: Request, context: Context) async throws -> Response {
        let table = policies.currentTable
        var scopes = table.namespaceModes.map { MutualTLSScopeDTO(namespace: $0.key, service: nil, mode: $0.value.rawValue) }
        scopes += table.serviceModes.map { MutualTLSScopeDTO(namespace: $0.key.namespace, service: $0.key.service, mode: $0.value.rawValue) }
        scopes.sort { ($0.namespace, $0.service ?? "") < ($1.namespace, $1.service ?? "") }
        return try jsonResponse(MutualTLSDTO(mode: table.platformMode.rawValue, scopes: scopes))
    }

    @Sendable func setMode(_ request: Request, context: Context) async throws -> Response {
        let body = try await collectBody(request)
        guard let input = try? APIJSON.decoder().decode(MutualTLSDTO.self, from: body) else {
            throw APIError(.badRequest, code: "MalformedJSON", "the body must be {\"mode\": \"STRICT\"|\"PERMISSIVE\"|\"DISABLE\"|\"UNSET\", \"namespace\": NS, \"service\": NAME}")
        }
        let text = input.mode.uppercased()
        guard input.namespace != nil || input.service != nil else {
            guard let mode = PeerAuthenticationMode(rawValue: text) else {
                throw APIError(.badRequest, code: "InvalidField", "the platform-wide mode must be STRICT, PERMISSIVE or DISABLE, got \"\(input.mode)\"", field: "mode")
            }
            try policies.setMode(mode)
            return try await showModes(request, context: context)
        }
        let namespace = input.namespace ?? "default"
        if let problem = Names.dns1035Problem(namespace) {
            throw APIError(.badRequest, code: "InvalidField", "namespace \(problem)", field: "namespace")
        }
        if let service = input.service, let problem = Names.dns1035Problem(service) {
            throw APIError(.badRequest, code: "InvalidField", "service \(problem)", field: "service")
        }
        var spec = PeerAuthenticationSpec(mtls: .init(mode: text))
        spec.selector = input.service.map { WorkloadSelectorSpec(matchLabels: [serviceSelectorLabel: $0]) }
        _ = try spec.mode()
        // One document per scope: `default` for the namespace (Istio's convention), `<service>-mtls`.
        let name = input.service.map { "\($0)-mtls" } ?? "default"
        let existing = try storeCall { try store.document(SecurityKind.peerAuthentication, namespace: namespace, name: name) }
        if text == "UNSET" {
            if existing != nil { try storeCall { try store.deleteDocument(SecurityKind.peerAuthentication, namespace: namespace, name: name) } }
        } else {
            let encoded = try PeerAuthenticationKind.encode(spec)
            try storeCall {
                if let existing {
                    _ = try store.replaceDocument(
                        SecurityKind.peerAuthentication, namespace: namespace, name: name, annotations: existing.meta.annotations, spec: encoded)
                } else {
                    _ = try store.createDocument(SecurityKind.peerAuthentication, namespace: namespace, name: name, spec: encoded)
                }
            }
        }
        try policies.publish()
        return try await showModes(request, context: context)
    }

    @Sendable func importCertificate(_ request: Request, context: Context) async throws -> Response {
        let name = try context.parameters.require("name")
        if let problem = Names.dns1035Problem(name) {
            throw APIError(.badRequest, code: "InvalidField", "name \(problem)", field: "name")
        }
        let body = try await collectBody(request)
        guard let input = try? APIJSON.decoder().decode(ImportCertificateRequest.self, from: body) else {
            throw APIError(.badRequest, code: "MalformedJSON", "the body must be {\"certificate\": PEM, \"privateKey\": PEM, \"hosts\": [NAME, ...]}")
        }
        let imported = try certificates.importCertificate(
            name: name, certificatePEM: input.certificate, privateKeyPEM: input.privateKey, hosts: input.hosts)
        return try jsonResponse(imported)
    }
}

/// `GET`/`PUT /security/mtls`: a mode and its scope (platform-wide without namespace and
/// service); the answer lists the namespace and service scopes too.
struct MutualTLSDTO: Codable, Sendable {
    var mode: String
    var namespace: String?
    var service: String?
    var scopes: [MutualTLSScopeDTO]?
}

/// A namespace's or service's mode.
struct MutualTLSScopeDTO: Codable, Sendable {
    var namespace: String
    var service: String?
    var mode: String
}

/// What `PUT /security/certificates/{name}` takes.
struct ImportCertificateRequest: Codable, Sendable {
    var certificate: String
    var privateKey: String
    var hosts: [String]?
}
