import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// Sends one CloudEvent over HTTP, in binary mode or structured (`format: json`), and reads the
/// answer: the status, a short error text, `Retry-After`, and reply events when the answer
/// carries them.
struct EventSender: Sendable {
    let client: HTTPClient

    /// The largest answer read (a reply event, or an error body).
    static let maxResponseBytes = 1 << 20
    /// How much of an error body is kept.
    static let maxErrorBytes = 1024

    struct Result: Sendable {
        /// HTTP status; nil when no answer came (connection error or timeout).
        var status: Int?
        var error: String?
        var retryAfter: Duration?
        var replies: [CloudEvent]?
        /// Why an answer counts as a failure when its status does not say (for the log).
        var problem: String?
    }

    /// The start of a failed answer's body, as text.
    static func errorText(_ body: ByteBuffer) -> String {
        String(decoding: body.readableBytesView.prefix(maxErrorBytes), as: UTF8.self)
    }

    func send(
        _ event: CloudEvent, to destination: ResolvedDestination, timeout: Duration, wantsReply: Bool, format: DeliveryFormat = .binary
    ) async -> Result {
        let encoded: (headers: [(name: String, value: String)], body: [UInt8]) = switch format {
        case .binary: CloudEventHTTP.encodeBinary(event)
        case .json: ([(name: "Content-Type", value: CloudEventHTTP.structuredContentType)], CloudEventHTTP.encodeStructured(event))
        }
        var request = HTTPClientRequest(url: destination.url)
        request.method = .POST
        request.headers.reserveCapacity(encoded.headers.count + 3)
        if let host = destination.host { request.headers.add(name: "Host", value: host) }
        for header in encoded.headers { request.headers.add(name: header.name, value: header.value) }
        if wantsReply { request.headers.add(name: "Prefer", value: "reply") }
        request.body = .bytes(encoded.body)
        do {
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            let body = try await response.body.collect(upTo: Self.maxResponseBytes)
            let status = Int(response.status.code)
            var result = Result(status: status)
            if !(200..<300).contains(status) {
                // The answer's body is what Knative puts in `knativeerrordata`.
                let text = Self.errorText(body)
                result.error = text.isEmpty ? "HTTP \(status)" : text
                if status == 429 || status == 503, let seconds = response.headers.first(name: "retry-after").flatMap(Int.init) {
                    result.retryAfter = .seconds(seconds)
                }
                return result
            }
            guard wantsReply, status == 200, body.readableBytes > 0 else { return result }
            let headers = response.headers.map { (name: $0.name, value: $0.value) }
            do {
                result.replies = try CloudEventHTTP.decode(headers: headers, body: Array(body.readableBytesView))
            } catch {
                // Knative: "The response MUST be either empty or a valid CloudEvent" (502); the
                // body, as for any failed answer, is what goes into `knativeerrordata`.
                return Result(
                    status: 502, error: Self.errorText(body),
                    problem: "the subscriber answered 200 with a body that is not a valid CloudEvent (\(error)); answer 202, 204, an empty 200 or a CloudEvent")
            }
            return result
        } catch {
            return Result(status: nil, error: "\(destination.display): \(error)")
        }
    }
}
