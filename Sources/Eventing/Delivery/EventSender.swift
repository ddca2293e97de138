import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// Sends one CloudEvent over HTTP, in binary mode or structured (`format: json`), and reads the
/// answer: the status, a short error text, `Retry-After`, and reply events when the answer
/// carries them. `http://` destinations go through ``PlainHTTPClient``; others (`https://`)
/// through AsyncHTTPClient.
struct EventSender: Sendable {
    let client: HTTPClient
    let plain: PlainHTTPClient
    /// Each destination URL already parsed (a trigger's deliveries all go to one).
    private let templates = RequestTemplates()

    init(client: HTTPClient) {
        self.client = client
        plain = PlainHTTPClient(group: client.eventLoopGroup)
    }

    /// Closes idle connections and shuts the clients down.
    func shutdown() async {
        plain.shutdown()
        try? await client.shutdown()
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

    /// Sends `event` and waits for the whole answer, at most `timeout` (the deadline covers the
    /// body too: a recipient that stops sending in the middle of its body cannot hold the
    /// delivery and its slot).
    func send(
        _ event: CloudEvent, to destination: ResolvedDestination, timeout: Duration, wantsReply: Bool, format: DeliveryFormat = .binary
    ) async -> Result {
        let encoded: (headers: [(name: String, value: String)], body: [UInt8]) = switch format {
        case .binary: CloudEventHTTP.encodeBinary(event)
        case .json: ([(name: "Content-Type", value: CloudEventHTTP.structuredContentType)], CloudEventHTTP.encodeStructured(event))
        }
        let template: RequestTemplates.Template
        do {
            template = try templates.template(for: destination.url)
        } catch {
            return Result(status: nil, error: "\(destination.display): \(error)")
        }
        var headers = HTTPHeaders()
        headers.reserveCapacity(encoded.headers.count + 3)
        // The plain client needs a Host; AsyncHTTPClient adds the URL's when none is given.
        let host: String? = switch template {
        case .plain(_, _, let authority): destination.host ?? authority
        case .client: destination.host
        }
        if let host { headers.add(name: "Host", value: host) }
        for header in encoded.headers { headers.add(name: header.name, value: header.value) }
        if wantsReply { headers.add(name: "Prefer", value: "reply") }
        let deadline = NIODeadline.now() + TimeAmount(timeout)
        let exchange: PlainHTTPClient.Exchange
        switch template {
        case .plain(let address, let target, _):
            exchange = await plain.post(to: address, target: target, headers: headers, body: encoded.body, wantsReply: wantsReply, deadline: deadline)
        case .client(var request):
            request.headers = headers
            request.body = .bytes(encoded.body)
            let collector = AnswerCollector(wantsReply: wantsReply)
            let task = client.execute(request: request, delegate: collector, deadline: deadline)
            do {
                _ = try await task.futureResult.get()
                exchange = PlainHTTPClient.Exchange(head: collector.head, body: collector.body, error: nil)
            } catch {
                // The collector is read after the task ended (its future ordered its last change).
                exchange = PlainHTTPClient.Exchange(head: collector.head, body: collector.body, error: error)
            }
        }
        return Self.result(of: exchange, destination: destination)
    }

    /// What an exchange means for the delivery.
    static func result(of exchange: PlainHTTPClient.Exchange, destination: ResolvedDestination) -> Result {
        guard let head = exchange.head else {
            return Result(status: nil, error: "\(destination.display): \(exchange.error.map { "\($0)" } ?? "no answer")")
        }
        let status = Int(head.status.code)
        var result = outcome(status: status, headers: head.headers)
        let body = exchange.body
        if let error = exchange.error {
            // The status decides even when the body did not arrive whole (the attempt's
            // timeout, a broken connection), except for a reply, which is then missing.
            if !(200..<300).contains(status) { result.error = "HTTP \(status) (its body did not arrive whole: \(error))" }
            if body.isReply(head) {
                return Result(status: 502, error: "the reply did not arrive whole", problem: "the subscriber's reply did not arrive whole within the attempt's timeout")
            }
            return result
        }
        if !(200..<300).contains(status) {
            // The answer's body is what Knative puts in `knativeerrordata`.
            let text = errorText(body.bytes)
            result.error = text.isEmpty ? "HTTP \(status)" : text
            return result
        }
        guard body.isReply(head), body.bytes.readableBytes > 0 else { return result }
        if body.cut {
            return Result(
                status: 502, error: errorText(body.bytes),
                problem: "the subscriber's reply is larger than \(maxResponseBytes) bytes")
        }
        let replyHeaders = head.headers.map { (name: $0.name, value: $0.value) }
        do {
            result.replies = try CloudEventHTTP.decode(headers: replyHeaders, body: Array(body.bytes.readableBytesView))
        } catch {
            // Knative: "The response MUST be either empty or a valid CloudEvent" (502); the
            // body, as for any failed answer, is what goes into `knativeerrordata`.
            return Result(
                status: 502, error: errorText(body.bytes),
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

/// Destination URLs, parsed once each (a trigger's deliveries all go to one): for `http://`,
/// the address, request target and `Host` value of ``PlainHTTPClient``; for others, a bodiless
/// `POST` request of AsyncHTTPClient. Holds at most ``limit`` URLs (it starts over beyond that).
final class RequestTemplates: Sendable {
    enum Template: Sendable {
        /// Address, origin-form target (`/path?query`) and the URL's authority (`host[:port]`).
        case plain(PlainHTTPClient.Address, target: String, authority: String)
        case client(HTTPClient.Request)
    }

    static let limit = 1_024
    private let parsed = Mutex<[String: Template]>([:])

    /// The template for `url`; throws when `url` is not one the clients can use.
    func template(for url: String) throws -> Template {
        if let template = parsed.withLock({ $0[url] }) { return template }
        let request = try HTTPClient.Request(url: url, method: .POST)
        let template = Self.plainTemplate(url, request: request) ?? .client(request)
        parsed.withLock { templates in
            if templates.count >= Self.limit { templates.removeAll() }
            templates[url] = template
        }
        return template
    }

    /// How many URLs are held now.
    var count: Int { parsed.withLock { $0.count } }

    /// For an `http://` URL: its address; its percent-encoded path and query, as AsyncHTTPClient
    /// sends them (a URL written with spaces or non-ASCII letters was encoded when parsed); and its
    /// authority without user info, as written.
    private static func plainTemplate(_ url: String, request: HTTPClient.Request) -> Template? {
        guard request.scheme == "http", let schemeEnd = url.firstRange(of: "://"),
              let components = URLComponents(url: request.url, resolvingAgainstBaseURL: false) else { return nil }
        let rest = url[schemeEnd.upperBound...]
        var authority = rest[..<(rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex)]
        if let at = authority.lastIndex(of: "@") { authority = authority[authority.index(after: at)...] }
        var target = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { target += "?" + query }
        return .plain(PlainHTTPClient.Address(host: request.host, port: request.port), target: target, authority: String(authority))
    }
}

/// Collects one answer of AsyncHTTPClient on its event loop: its head, and the first bytes of
/// its body that are needed (see ``AnswerBody``); the rest is read and dropped, so the
/// connection can serve again.
///
/// Changed only on the request's event loop, and read by ``EventSender`` once the request's
/// future has completed, which orders those changes before the read.
final class AnswerCollector: HTTPClientResponseDelegate, @unchecked Sendable {
    typealias Response = Void

    private(set) var head: HTTPResponseHead?
    private(set) var body: AnswerBody

    init(wantsReply: Bool) {
        body = AnswerBody(wantsReply: wantsReply)
    }

    func didReceiveHead(task: HTTPClient.Task<Void>, _ head: HTTPResponseHead) -> EventLoopFuture<Void> {
        self.head = head
        body.start(head)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveBodyPart(task: HTTPClient.Task<Void>, _ buffer: ByteBuffer) -> EventLoopFuture<Void> {
        body.append(buffer)
        return task.eventLoop.makeSucceededVoidFuture()
    }

    func didReceiveError(task: HTTPClient.Task<Void>, _ error: any Error) {}

    func didFinishRequest(task: HTTPClient.Task<Void>) throws {
        guard head != nil else { throw HTTPClientError.remoteConnectionClosed }
    }
}
