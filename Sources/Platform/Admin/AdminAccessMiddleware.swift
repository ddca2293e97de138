import Crypto
import Foundation
import Hummingbird
import Store

/// Authenticates every `/api/v1` call by its bearer token, or on the HTTPS admin listener by a
/// verified client certificate of the platform's namespace
/// (`spiffe://<trust-domain>/ns/outpost-system/sa/<name>`), and writes every mutating call to
/// the audit log: who (the token's name, or `cert:<SPIFFE ID>`), what (method and path), when,
/// and how it ended. Only the SHA-256 of a token is stored, so the store never holds a usable
/// credential. No credential: 401; an unknown or revoked token, or a certificate of another
/// namespace: 403. Refused mutating calls are audited too.
struct AdminAccessMiddleware<Context: RequestContext>: RouterMiddleware {
    let store: Store

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let mutating = request.method != .get && request.method != .head && request.method != .options
        let at = Date()
        let actor: String
        do {
            let identity = await (context as? any ClientIdentityRequestContext)?.clientIdentity()
            actor = try authenticate(request, identity: identity)
        } catch let refusal as Refusal {
            if mutating { audit(at: at, actor: refusal.actor, request: request, context: context, status: Int(refusal.error.status.code)) }
            throw refusal.error
        }
        do {
            let response = try await next(request, context)
            if mutating { audit(at: at, actor: actor, request: request, context: context, status: Int(response.status.code)) }
            return response
        } catch {
            if mutating {
                let status = (error as? any HTTPResponseError)?.status.code ?? 500
                audit(at: at, actor: actor, request: request, context: context, status: Int(status))
            }
            throw error
        }
    }

    private struct Refusal: Error {
        var actor: String
        var error: APIError
    }

    private func authenticate(_ request: Request, identity: String?) throws -> String {
        guard let header = request.headers[.authorization] else {
            if let identity {
                guard identity.contains("/ns/\(platformNamespace)/sa/") else {
                    throw Refusal(actor: "cert:\(identity)", error: APIError(.forbidden, code: "Forbidden", "the client certificate \(identity) may not administer the platform; only identities of namespace \(platformNamespace) may"))
                }
                return "cert:\(identity)"
            }
            throw Refusal(actor: "anonymous", error: APIError(.unauthorized, code: "Unauthorized", "missing bearer token: send Authorization: Bearer <token> (the token is in <data-dir>/admin.token)"))
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
            throw Refusal(actor: "anonymous", error: APIError(.unauthorized, code: "Unauthorized", "the Authorization header must be \"Bearer <token>\""))
        }
        let presented = header.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
        let lookup: TokenLookup
        do {
            lookup = try store.lookupAdminToken(hash: AdminTokens.hash(presented))
        } catch {
            throw Refusal(actor: "unknown", error: APIError(.internalServerError, code: "StorageError", "cannot check the token: \(error)"))
        }
        switch lookup {
        case .valid(let name): return name
        case .revoked(let name):
            throw Refusal(actor: "revoked:\(name)", error: APIError(.forbidden, code: "Forbidden", "the bearer token \(name) was revoked"))
        case .unknown:
            throw Refusal(actor: "invalid-token", error: APIError(.forbidden, code: "Forbidden", "the bearer token is not valid for this daemon"))
        }
    }

    private func audit(at: Date, actor: String, request: Request, context: Context, status: Int) {
        let address = (context as? any RemoteAddressRequestContext)?.remoteAddress.map { "\($0)" } ?? ""
        try? store.appendAudit(AuditEntry(
            at: at, actor: actor, method: request.method.rawValue, path: request.uri.description, status: status,
            remoteAddress: address))
    }
}

/// `/api/v1/tokens` and `/api/v1/audit`: admin tokens and the audit log.
struct AdminAccessController<Context: RequestContext>: Sendable {
    let store: Store

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("tokens", use: create)
        group.get("tokens") { _, _ in try jsonResponse(ListDTO(items: try storeCall { try store.adminTokens() })) }
        group.delete("tokens/:name") { _, context in
            let name = try context.parameters.require("name")
            return try jsonResponse(try storeCall { try store.revokeAdminToken(name: name) })
        }
        group.get("audit") { request, _ in
            let limit = try listLimit(request.uri.queryParameters["limit"].map(String.init), max: 10_000)
            let actor = request.uri.queryParameters["actor"].map(String.init)
            return try jsonResponse(ListDTO(items: try storeCall { try store.auditEntries(limit: limit, actor: actor) }))
        }
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        guard let input = try? JSONDecoder().decode([String: String].self, from: try await collectBody(request)),
              let name = input["name"], input.count == 1 else {
            throw APIError(.badRequest, code: "MalformedJSON", "the body must be {\"name\": NAME}")
        }
        if let problem = Names.dns1035Problem(name) {
            throw APIError(.badRequest, code: "InvalidField", "name \(problem)", field: "name")
        }
        if AdminTokens.isBootstrapName(name) {
            throw APIError(.badRequest, code: "InvalidField", "name \(name) is kept for the token file (admin, admin-<digits>); choose another", field: "name")
        }
        let token = AdminTokens.generate()
        let created = try storeCall { try store.createAdminToken(name: name, hash: AdminTokens.hash(token)) }
        return try jsonResponse(NewTokenDTO(name: created.name, token: token, createdAt: created.createdAt), status: .created)
    }
}

/// A new token, shown once.
struct NewTokenDTO: Codable, Sendable {
    var name: String
    var token: String
    var createdAt: Date
}

enum AdminTokens {
    /// What the store keeps of a token: its SHA-256, hex.
    static func hash(_ token: some StringProtocol) -> String {
        SHA256.hash(data: Data(token.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// 32 random bytes, hex.
    static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// Makes sure the bootstrap token of `<data-dir>/admin.token` is known to the store (by its
    /// hash, as `admin`, or `admin-<seconds>` when the file was replaced); a revoked one stays
    /// revoked. The tokens the file held before stop working: replacing the file is how a
    /// leaked one is rotated. That pass runs at every start, so a rotation cut short by a crash
    /// between the two steps is finished.
    static func register(bootstrap token: String, in store: Store) throws {
        let hash = Self.hash(token)
        let current: String
        switch try store.lookupAdminToken(hash: hash) {
        case .revoked: return
        case .valid(let name): current = name
        case .unknown:
            let existing = Set(try store.adminTokens().map(\.name))
            var name = "admin"
            if existing.contains(name) {
                var seconds = Int(Date().timeIntervalSince1970)
                while existing.contains("admin-\(seconds)") { seconds += 1 }
                name = "admin-\(seconds)"
            }
            _ = try store.createAdminToken(name: name, hash: hash)
            current = name
        }
        for old in try store.adminTokens() where old.revokedAt == nil && old.name != current && isBootstrapName(old.name) {
            _ = try store.revokeAdminToken(name: old.name)
        }
    }

    /// `admin`, or `admin-<seconds>`: names kept for the token file (`token create` refuses them).
    static func isBootstrapName(_ name: String) -> Bool {
        name == "admin" || (name.hasPrefix("admin-") && !name.dropFirst(6).isEmpty && name.dropFirst(6).allSatisfy(\.isNumber))
    }
}
