import Foundation
import Hummingbird

/// Requires `Authorization: Bearer <admin token>`: 401 without credentials, 403 with wrong ones.
struct BearerAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, code: "Unauthorized", "missing bearer token: send Authorization: Bearer <token> (the token is in <data-dir>/admin.token)")
        }
        let prefix = "bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix else {
            throw APIError(.unauthorized, code: "Unauthorized", "the Authorization header must be \"Bearer <token>\"")
        }
        let presented = header.dropFirst(prefix.count).trimmingCharacters(in: .whitespaces)
        guard constantTimeEquals(Array(presented.utf8), Array(token.utf8)) else {
            throw APIError(.forbidden, code: "Forbidden", "the bearer token is not valid for this daemon")
        }
        return try await next(request, context)
    }

    private func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
