import AsyncHTTPClient
import Foundation
import NIOHTTP1
import NIOPosix
import Testing
import TestSupport
@testable import Eventing

#if canImport(Glibc)
import Glibc
#endif

/// A one-connection HTTP server on loopback that reads a request head and answers with fixed
/// bytes, then keeps the connection open (sending nothing more) until it is stopped.
private final class CannedServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let answer: [UInt8]
    private let done = DispatchSemaphore(value: 0)

    init(answer: [UInt8]) throws {
        self.answer = answer
        guard let (listener, port) = loopbackSocket(listening: true) else { throw POSIXError(.EADDRNOTAVAIL) }
        self.listener = listener
        self.port = port
        Thread { [self] in serve() }.start()
    }

    private func serve() {
        let connection = accept(listener, nil, nil)
        guard connection >= 0 else { return }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while received.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
            let count = recv(connection, &buffer, buffer.count, 0)
            if count <= 0 { break }
            received += buffer[0..<count]
        }
        var sent = 0
        while sent < answer.count {
            let count = answer[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count <= 0 { break }
            sent += count
        }
        done.wait()
        close(connection)
    }

    func stop() {
        done.signal()
        close(listener)
    }
}

@Suite struct EventSenderTests {
    private func send(answer: String, body: [UInt8] = [], timeout: Duration, wantsReply: Bool = false) async throws -> (EventSender.Result, Duration) {
        let server = try CannedServer(answer: Array(answer.utf8) + body)
        defer { server.stop() }
        let client = HTTPClient(eventLoopGroup: deliveryTestGroup)
        let event = CloudEvent(id: "1", source: "/test", type: "t")
        let destination = ResolvedDestination(url: "http://127.0.0.1:\(server.port)/", host: nil, display: "canned")
        let started = ContinuousClock.now
        let sender = EventSender(client: client)
        let result = await sender.send(event, to: destination, timeout: timeout, wantsReply: wantsReply)
        let took = ContinuousClock.now - started
        await sender.shutdown()
        return (result, took)
    }

    /// A recipient that stalls in its body ends the attempt at its timeout; the status it sent
    /// still decides, except that a reply it promised is missing.
    @Test func aRecipientThatStallsInItsBodyEndsTheAttemptAtItsTimeout() async throws {
        let stalled = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc"
        // The timeout leaves the head time to arrive on a machine busy with the other tests.
        let (accepted, took) = try await send(answer: stalled, timeout: .milliseconds(1_500))
        #expect(accepted.status == 200 && accepted.error == nil, "\(accepted)")
        #expect(took < .seconds(6))
        let (reply, _) = try await send(answer: stalled, timeout: .milliseconds(1_500), wantsReply: true)
        #expect(reply.status == 502 && reply.problem?.contains("did not arrive whole") == true, "\(reply)")
        let (failed, _) = try await send(answer: "HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\nabc", timeout: .milliseconds(1_500))
        #expect(failed.status == 500 && failed.error?.contains("did not arrive whole") == true, "\(failed)")
    }

    /// `https://` goes through AsyncHTTPClient: a listener that never accepts leaves its TLS
    /// handshake unanswered until the attempt's timeout, which that client reports (the plain
    /// client would report its own `DeadlineExceeded`).
    @Test func anHTTPSDestinationGoesThroughTheTLSClient() async throws {
        guard let (listener, port) = loopbackSocket(listening: true) else { return }
        let sender = EventSender(client: HTTPClient(eventLoopGroup: deliveryTestGroup))
        let destination = ResolvedDestination(url: "https://127.0.0.1:\(port)/", host: nil, display: "tls-sink")
        let started = ContinuousClock.now
        let result = await sender.send(CloudEvent(id: "1", source: "/test", type: "t"), to: destination, timeout: .seconds(1), wantsReply: false)
        #expect(ContinuousClock.now - started < .seconds(5))
        close(listener)  // resets the queued connection, so the client's shutdown need not wait for it
        await sender.shutdown()
        #expect(result.status == nil && result.error?.hasPrefix("tls-sink: ") == true, "\(result)")
        #expect(result.error?.contains("\(PlainHTTPClient.DeadlineExceeded())") == false, "\(result)")
        #expect(sender.plain.idleCount == 0)
    }

    @Test func aLargeBodyOnASuccessIsASuccess() async throws {
        let body = [UInt8](repeating: 0x61, count: 3 << 20)
        let (result, _) = try await send(answer: "HTTP/1.1 202 Accepted\r\nContent-Length: \(body.count)\r\n\r\n", body: body, timeout: .seconds(10))
        #expect(result.status == 202)
        #expect(result.error == nil)
    }

    @Test func aLargeErrorBodyKeepsItsStatusAndItsStart() async throws {
        let body = [UInt8](repeating: 0x62, count: 3 << 20)
        let (result, _) = try await send(answer: "HTTP/1.1 500 Internal Server Error\r\nContent-Length: \(body.count)\r\n\r\n", body: body, timeout: .seconds(10))
        #expect(result.status == 500)
        #expect(result.error == String(repeating: "b", count: EventSender.maxErrorBytes))
    }

    @Test func aReplyLargerThanTheLimitIsABadGateway() async throws {
        let body = [UInt8](repeating: 0x63, count: EventSender.maxResponseBytes + 1)
        let (result, _) = try await send(
            answer: "HTTP/1.1 200 OK\r\nce-specversion: 1.0\r\nce-id: r\r\nce-source: /s\r\nce-type: t\r\nContent-Length: \(body.count)\r\n\r\n",
            body: body, timeout: .seconds(10), wantsReply: true)
        #expect(result.status == 502)
        #expect(result.problem?.contains("larger than") == true)
    }
}

@Suite struct RequestTemplatesTests {
    @Test func anHTTPURLIsParsedOnceIntoAddressTargetAndAuthority() throws {
        let templates = RequestTemplates()
        for _ in 0..<2 {
            guard case .plain(let address, let target, let authority) = try templates.template(for: "http://user@127.0.0.1:8080/a/b?c=d#e") else {
                Issue.record("an http URL goes to the plain client")
                return
            }
            #expect(address == PlainHTTPClient.Address(host: "127.0.0.1", port: 8080))
            #expect(target == "/a/b?c=d")
            #expect(authority == "127.0.0.1:8080")
        }
        #expect(templates.count == 1, "the same URL is held once")
        guard case .plain(let address, let target, let authority) = try templates.template(for: "http://[::1]?x=1") else {
            Issue.record("an http URL goes to the plain client")
            return
        }
        #expect(address.port == 80 && target == "/?x=1" && authority == "[::1]")
    }

    @Test func theTargetIsPercentEncodedAsAsyncHTTPClientSendsIt() throws {
        let templates = RequestTemplates()
        guard case .plain(_, let kept, _) = try templates.template(for: "http://127.0.0.1/a%20b/c?d=%C3%BC&e") else {
            Issue.record("an http URL goes to the plain client")
            return
        }
        #expect(kept == "/a%20b/c?d=%C3%BC&e", "an encoded URL is sent as written")
        // A URL written with a space and a non-ASCII letter, if the URL parser takes it, is
        // sent encoded: a raw space would end the request line.
        if case .plain(_, let encoded, _) = try? templates.template(for: "http://127.0.0.1/a b/ü?q=x y") {
            #expect(encoded == "/a%20b/%C3%BC?q=x%20y")
        }
    }

    @Test func anHTTPSURLGoesToTheGeneralClientAndEachRequestStartsBodiless() throws {
        let templates = RequestTemplates()
        guard case .client(var first) = try templates.template(for: "https://127.0.0.1:8443/a?b=c") else {
            Issue.record("an https URL goes to AsyncHTTPClient")
            return
        }
        first.headers.add(name: "ce-id", value: "1")
        first.body = .bytes([1, 2, 3])
        guard case .client(let second) = try templates.template(for: "https://127.0.0.1:8443/a?b=c") else { return }
        #expect(second.method == .POST)
        #expect(second.url.absoluteString == "https://127.0.0.1:8443/a?b=c")
        #expect(second.headers.isEmpty && second.body == nil, "a change to one request must not reach the next")
    }

    @Test func aURLTheClientsCannotUseIsAnError() {
        let templates = RequestTemplates()
        #expect(throws: (any Error).self) { try templates.template(for: "ftp://127.0.0.1/x") }
        #expect(throws: (any Error).self) { try templates.template(for: "not a url") }
        #expect(templates.count == 0, "a URL that failed is not held")
    }

    @Test func theCacheStartsOverBeyondItsLimit() throws {
        let templates = RequestTemplates()
        for index in 0...RequestTemplates.limit {
            guard case .plain(let address, _, _) = try templates.template(for: "http://127.0.0.1:\(1_000 + index)/") else { return }
            #expect(address.port == 1_000 + index)
            #expect(templates.count == (index < RequestTemplates.limit ? index + 1 : 1))
        }
        _ = try templates.template(for: "http://127.0.0.1:1000/")
        #expect(templates.count == 2, "after starting over, only the URLs asked for since are held")
    }
}
