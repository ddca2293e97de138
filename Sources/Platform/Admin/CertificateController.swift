import Foundation
import Hummingbird
import Serving

/// `/api/v1/certificates`: certificates from the built-in CA for callers outside the platform
/// (`outpost cert issue`), and the trust bundle.
struct CertificateController<Context: RequestContext>: Sendable {
    let authority: CertificateAuthority

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("certificates", use: issue)
        group.get("certificates/ca", use: trustBundle)
        group.post("certificates/ca/rotate", use: rotateRoot)
    }

    @Sendable func issue(_ request: Request, context: Context) async throws -> Response {
        let body = try await collectBody(request)
        if let problem = (try? JSONSerialization.jsonObject(with: body)).flatMap({ IssueCertificateRequest.shape.problem(in: $0, at: "") }) {
            throw APIError(problem)
        }
        guard let input = try? APIJSON.decoder().decode(IssueCertificateRequest.self, from: body) else {
            throw APIError(.badRequest, code: "MalformedJSON", "the body must be {\"identity\": NAME, \"namespace\": NS, \"ttl\": \"24h\"}")
        }
        if let problem = Names.dns1035Problem(input.identity, maxLength: 253) {
            throw APIError(.badRequest, code: "InvalidField", "identity \(problem)", field: "identity")
        }
        let namespace = input.namespace ?? "default"
        if let problem = Names.dns1035Problem(namespace) {
            throw APIError(.badRequest, code: "InvalidField", "namespace \(problem)", field: "namespace")
        }
        var lifetime = CertificateAuthority.defaultLifetime
        if let text = input.ttl {
            guard let duration = DurationText.parse(text), duration >= .seconds(60),
                  duration <= .seconds(Int64(CertificateAuthority.maxLifetime)) else {
                throw APIError(.badRequest, code: "InvalidField", "ttl must be a duration from 1m to 2160h, got \"\(text)\"", field: "ttl")
            }
            lifetime = TimeInterval(duration.components.seconds)
        }
        for (index, name) in (input.dnsNames ?? []).enumerated() where name.isEmpty || name.contains(where: { $0 == " " || $0 == "/" }) {
            throw APIError(.badRequest, code: "InvalidField", "dnsNames[\(index)] \"\(name)\" is not a DNS name", field: "dnsNames[\(index)]")
        }
        let spiffeID = authority.spiffeID(namespace: namespace, name: input.identity)
        let issued = try authority.issue(spiffeID: spiffeID, commonName: input.identity, dnsNames: input.dnsNames ?? [], lifetime: lifetime)
        return try jsonResponse(IssuedCertificateDTO(
            spiffeID: issued.spiffeID, certificate: issued.certificatePEM, privateKey: issued.privateKeyPEM,
            trustBundle: authority.trustBundlePEM, notAfter: issued.notAfter), status: .created)
    }

    @Sendable func trustBundle(_ request: Request, context: Context) async throws -> Response {
        try jsonResponse(TrustBundleDTO(trustDomain: authority.trustDomain, trustBundle: authority.trustBundlePEM, roots: authority.rootInfo))
    }

    /// `POST /certificates/ca/rotate {"step": "prepare"|"activate"|"retire"}`: one step of a
    /// root rotation; answers with the new trust bundle.
    @Sendable func rotateRoot(_ request: Request, context: Context) async throws -> Response {
        let body = try await collectBody(request)
        let steps = CertificateAuthority.RotationStep.allCases.map(\.rawValue).joined(separator: ", ")
        guard let input = try? APIJSON.decoder().decode([String: String].self, from: body), let text = input["step"] else {
            throw APIError(.badRequest, code: "MalformedJSON", "the body must be {\"step\": STEP} with STEP one of \(steps)")
        }
        guard let step = CertificateAuthority.RotationStep(rawValue: text) else {
            throw APIError(.badRequest, code: "InvalidField", "step must be one of \(steps), got \"\(text)\"", field: "step")
        }
        do {
            try authority.rotate(step)
        } catch let error as CertificateAuthority.RotationOrderError {
            throw APIError(.conflict, code: "RotationOrder", error.message)
        }
        return try await trustBundle(request, context: context)
    }

}

/// What `POST /certificates` takes.
struct IssueCertificateRequest: Codable, Sendable {
    var identity: String
    var namespace: String?
    var dnsNames: [String]?
    var ttl: String?

    static let shape: JSONShape = .object([
        "identity": .string, "namespace": .string, "dnsNames": .array(.string), "ttl": .string,
    ])
}

/// An issued certificate with its key and the trust bundle, PEM.
struct IssuedCertificateDTO: Codable, Sendable {
    var spiffeID: String
    var certificate: String
    var privateKey: String
    var trustBundle: String
    var notAfter: Date
}

/// The CA's roots.
struct TrustBundleDTO: Codable, Sendable {
    var trustDomain: String
    var trustBundle: String
    var roots: [CertificateAuthority.RootInfo]?
}
