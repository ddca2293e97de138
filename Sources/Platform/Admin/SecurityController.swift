import Foundation
import Gateway
import Hummingbird

/// `/api/v1/security`: the platform-wide peer-authentication mode and the gateway certificate.
struct SecurityController<Context: RequestContext>: Sendable {
    let certificates: GatewayCertificates

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("security/mtls") { _, _ in
            try jsonResponse(MutualTLSDTO(mode: certificates.currentMode.rawValue))
        }
        group.put("security/mtls", use: setMode)
        group.post("security/gateway-certificate/rotate") { _, _ in
            certificates.rotate()
            return try jsonResponse(["status": "rotating"])
        }
    }

    @Sendable func setMode(_ request: Request, context: Context) async throws -> Response {
        let body = try await collectBody(request)
        guard let input = try? APIJSON.decoder().decode(MutualTLSDTO.self, from: body) else {
            throw APIError(.badRequest, code: "MalformedJSON", "the body must be {\"mode\": \"STRICT\"|\"PERMISSIVE\"|\"DISABLE\"}")
        }
        guard let mode = PeerAuthenticationMode(rawValue: input.mode.uppercased()) else {
            throw APIError(.badRequest, code: "InvalidField", "mode must be STRICT, PERMISSIVE or DISABLE, got \"\(input.mode)\"", field: "mode")
        }
        if input.namespace != nil || input.service != nil {
            throw APIError(.badRequest, code: "NotSupported", "peer authentication per namespace or service is not supported yet; omit namespace and service to set the platform-wide mode", field: input.namespace != nil ? "namespace" : "service")
        }
        try certificates.setMode(mode)
        return try jsonResponse(MutualTLSDTO(mode: mode.rawValue))
    }
}

/// `GET`/`PUT /security/mtls`.
struct MutualTLSDTO: Codable, Sendable {
    var mode: String
    var namespace: String?
    var service: String?
}
