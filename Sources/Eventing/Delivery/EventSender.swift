import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import Synchronization

/// Sends one CloudEvent over HTTP, in binary mode or structured (`format: json`), and reads the
/// answer: the status, a short error text, `Retry-After`, and reply events when the answer
/// carries them.
struct EventSender: Sendable {
    let client: HTTPClient
    /// Requests with each destination URL already parsed (a trigger's deliveries all go to one).
    private let templates = RequestTemplates()

    init(client: HTTPClient) {
        self.client = client
    }

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

    /// Sends `event` and waits for the whole answer, at most `timeout` (the client's deadline
    /// covers the body too: a recipient that stops sending in the middle of its body cannot hold
    /// the delivery and its slot).
    func send(
        _ event: CloudEvent, to destination: ResolvedDestination, timeout: Duration, wantsReply: Bool, format: DeliveryFormat = .binary
    ) async -> Result {
        let encoded: (headers: [(name: String, value: String)], body: [UInt8]) = switch format {
        case .binary: CloudEventHTTP.encodeBinary(event)
        case .json: ([(name: "Content-Type", value: CloudEventHTTP.structuredContentType)], CloudEventHTTP.encodeStructured(event))
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(encoded.headers.count + 3)
        if let host = destination.host { headers.add(name: "Host", value: host) }
        for header in encoded.headers { headers.add(name: header.name, value: header.value) }
        if wantsReply { headers.add(name: "Prefer", value: "reply") }
        var request: HTTPClient.Request
        do {
            request = try templates.request(for: destination.url)
        } catch {
            return Result(status: nil, error: "\(destination.display): \(error)")
        }
        request.headers = headers
        request.body = .bytes(encoded.body)
        let collector = AnswerCollector(wantsReply: wantsReply)
        let task = client.execute(request: request, delegate: collector, deadline: .now() + TimeAmount(timeout))
        let answer: AnswerCollector.Answer
        do {
            answer = try await task.futureResult.get()
        } catch {
            // The status decides even when the body did not arrive whole (the attempt's
            // timeout, a broken connection), except for a reply, which is then missing. The
            // collector is read after the task ended (its future ordered its last change).
            guard let head = collector.head else { return Result(status: nil, error: "\(destination.display): \(error)") }
            let status = Int(head.status.code)
            var result = Self.outcome(status: status, headers: head.headers)
            if !(200..<300).contains(status) { result.error = "HTTP \(status) (its body did not arrive whole: \(error))" }
            if collector.wantsBody {
                return Result(status: 502, error: "the reply did not arrive whole", problem: "the subscriber's reply did not arrive whole within the attempt's timeout")
            }
            return result
        }
        let status = Int(answer.head.status.code)
        var result = Self.outcome(status: status, headers: answer.head.headers)
        if !(200..<300).contains(status) {
            // The answer's body is what Knative puts in `knativeerrordata`.
            let text = Self.errorText(answer.body)
            result.error = text.isEmpty ? "HTTP \(status)" : text
            return result
        }
        guard collector.wantsBody, answer.body.readableBytes > 0 else { return result }
        if answer.cut {
            return Result(
                status: 502, error: Self.errorText(answer.body),
                problem: "the subscriber's reply is larger than \(Self.maxResponseBytes) bytes")
        }
        let replyHeaders = answer.head.headers.map { (name: $0.name, value: $0.value) }
        do {
            result.replies = try CloudEventHTTP.decode(headers: replyHeaders, body: Array(answer.body.readableBytesView))
        } catch {
            // Knative: "The response MUST be either empty or a valid CloudEvent" (502); the
            // body, as for any failed answer, is what goes into `knativeerrordata`.
            return Result(
                status: 502, error: Self.errorText(answer.body),
                problem: "the subscriber answered 200 with a body that is not a valid CloudEvent (\(error)); answer 202, 204, an empty 200 or a CloudEvent")
        }
        return result
    }

    /// A result with `status` and, for 429 and 503, the answer's `Retry-After` in seconds.
    private static func outcome(status: Int, headers: HTTPHeaders) -> Result {
        var result = Result(status: status)
        if status == 429 || status == 503, let seconds = headers.first(name: "retry-after").flatMap(Int.init) {
            result.retryAfter = .seconds(seconds)
        }
        return result
    }
}

/// Bodiless `POST` requests per destination URL, so that a trigger's deliveries, which all go
/// to one URL, parse it once. Holds at most ``limit`` URLs (it starts over beyond that).
final class RequestTemplates: Sendable {
    static let limit = 1_024
    private let parsed = Mutex<[String: HTTPClient.Request]>([:])

    /// A request for `url` (method `POST`, no headers, no body); throws when `url` is not one
    /// the client can use.
    func request(for url: String) throws -> HTTPClient.Request {
        if let request = parsed.withLock({ $0[url] }) { return request }
        let request = try HTTPClient.Request(url: url, method: .POST)
        parsed.withLock { templates in
            if templates.count >= Self.limit { templates.removeAll() }
            templates[url] = request
        }
        return request
    }

    /// How many URLs are held now.
    var count: Int { parsed.withLock { $0.count } }
}

/// Collects one answer on the client's event loop: its head, and the first bytes of its body
/// that are needed (a reply up to ``EventSender/maxResponseBytes``, an error text, nothing for
/// a success); the rest is read and dropped, so the connection can serve again.
///
/// Changed only on the request's event loop, and read by ``EventSender`` once the request's
/// future has completed, which orders those changes before the read.
final class AnswerCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    struct Answer: Sendable {
        var head: HTTPResponseHead
        var body: ByteBuffer
        /// More came than was kept.
        var cut: Bool
    }

    let wantsReply: Bool
    private(set) var head: HTTPResponseHead?
    private var body = ByteBuffer()
    private var keep = 0
    private var cut = false

    init(wantsReply: Bool) {
        self.wantsReply = wantsReply
    }

    /// The body is a reply (a 200 to a trigger that wants one).
    var wantsBody: Bool { wantsReply && head?.status.code == 200 }

    func didReceiveHead(task: HTTPClient.Task<Answer>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.head = head
        let status = Int(head.status.code)
        keep = wantsBody ? EventSender.maxResponseBytes : (200..<300).contains(status) ? 0 : EventSender.maxErrorBytes
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Answer>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        let room = keep - body.readableBytes
        if buffer.readableBytes > room { cut = true }
        if room > 0, let kept = buffer.getSlice(at: buffer.readerIndex, length: min(room, buffer.readableBytes)) {
            body.writeImmutableBuffer(kept)
        }
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Answer>, _ error: any Error) {}

    func didFinishRequest(task: HTTPClient.Task<Answer>) throws -> Answer {
        guard let head else { throw HTTPClientError.remoteConnectionClosed }
        return Answer(head: head, body: body, cut: cut)
    }
}
