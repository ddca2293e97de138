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
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        do {
            let response = try await client.execute(request, timeout: TimeAmount(timeout))
            let status = Int(response.status.code)
            // The status decides the outcome; the body matters only as a reply or an error text,
            // and is read to its end (so the connection can serve again) within the attempt's
            // timeout, keeping what is needed.
            let wantsBody = wantsReply && status == 200
            let keep = wantsBody ? Self.maxResponseBytes : (200..<300).contains(status) ? 0 : Self.maxErrorBytes
            let (body, cut) = try await Self.read(response.body, keeping: keep, until: deadline, clock: clock)
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
            guard wantsBody, body.readableBytes > 0 else { return result }
            if cut {
                return Result(
                    status: 502, error: Self.errorText(body),
                    problem: "the subscriber's reply is larger than \(Self.maxResponseBytes) bytes")
            }
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

    /// The attempt's timeout ran out while the answer's body was still arriving.
    struct BodyTimeout: Error, CustomStringConvertible {
        var description: String { "the answer's body did not end within the attempt's timeout" }
    }

    /// Reads a body to its end, keeping its first `keep` bytes (`cut`: more came), or throws
    /// ``BodyTimeout`` at `deadline`. The client's own timeout covers only the wait for the
    /// answer's head: a recipient that stops sending in the middle of its body would otherwise
    /// hold the delivery (and its slot) forever.
    static func read(
        _ body: HTTPClientResponse.Body, keeping keep: Int, until deadline: ContinuousClock.Instant, clock: ContinuousClock
    ) async throws -> (body: ByteBuffer, cut: Bool) {
        try await withThrowingTaskGroup(of: (body: ByteBuffer, cut: Bool)?.self) { group in
            group.addTask {
                var kept = ByteBuffer()
                var cut = false
                for try await chunk in body {
                    let room = keep - kept.readableBytes
                    if chunk.readableBytes > room { cut = true }
                    if room > 0 { kept.writeImmutableBuffer(chunk.getSlice(at: chunk.readerIndex, length: min(room, chunk.readableBytes))!) }
                }
                return (kept, cut)
            }
            group.addTask {
                try await Task.sleep(until: deadline, clock: clock)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let read = first else { throw BodyTimeout() }
            return read
        }
    }
}
