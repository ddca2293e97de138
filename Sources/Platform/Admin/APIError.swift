import Foundation
import Hummingbird
import Store

/// An error answered as `{"error": {"code": "...", "message": "...", "field": "..."}}`.
struct APIError: HTTPResponseError {
    var status: HTTPResponse.Status
    var code: String
    var message: String
    var field: String?

    init(_ status: HTTPResponse.Status, code: String, _ message: String, field: String? = nil) {
        self.status = status
        self.code = code
        self.message = message
        self.field = field
    }

    init(_ error: FieldError) {
        self.init(.badRequest, code: error.code, error.message, field: error.field.isEmpty ? nil : error.field)
    }

    init(_ error: StoreError) {
        switch error.code {
        case .notFound: self.init(.notFound, code: "NotFound", error.message)
        case .alreadyExists: self.init(.conflict, code: "AlreadyExists", error.message)
        case .conflict: self.init(.conflict, code: "Conflict", error.message)
        default: self.init(.internalServerError, code: "StorageError", error.message)
        }
    }

    private struct Body: Encodable {
        struct Detail: Encodable {
            var code: String
            var message: String
            var field: String?
        }
        var error: Detail
    }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        let data = try APIJSON.encoder(pretty: false).encode(Body(error: .init(code: code, message: message, field: field)))
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"outpost\"" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Encodes a value as the API's JSON response.
func jsonResponse(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
    var data = try APIJSON.encoder().encode(value)
    data.append(UInt8(ascii: "\n"))
    return Response(
        status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Runs a store call, turning its errors into API errors.
func storeCall<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let error as StoreError { throw APIError(error) }
}

/// A listing's `limit` query parameter: 100 when absent, values above `max` capped; anything
/// but a whole number of at least 1 is a 400.
func listLimit(_ text: String?, max: Int) throws -> Int {
    guard let text else { return min(100, max) }
    guard let value = Int(text), value >= 1 else {
        throw APIError(.badRequest, code: "InvalidField", "limit must be a whole number from 1 to \(max), not \"\(text)\"", field: "limit")
    }
    return min(value, max)
}
