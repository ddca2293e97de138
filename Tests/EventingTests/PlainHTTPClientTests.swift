import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization
import Testing
import TestSupport
@testable import Eventing

#if canImport(Glibc)
import Glibc
#endif

/// An HTTP/1.1 server on loopback, one thread per connection, that records every request (head
/// and body, as received) and answers the n-th request of the server with `answer(n)`: the bytes
/// to send, and whether to close the connection after them.
private final class ScriptedServer: @unchecked Sendable {
    struct Received: Sendable {
        var connection: Int
        var text: String
    }

    let port: Int
    private let listener: Int32
    private let answer: @Sendable (Int) -> (bytes: String, close: Bool)
    private let state = Mutex<(received: [Received], connections: Int, sockets: [Int32])>(([], 0, []))

    init(answer: @escaping @Sendable (Int) -> (bytes: String, close: Bool)) throws {
        self.answer = answer
        guard let (listener, port) = loopbackSocket(listening: true) else { throw POSIXError(.EADDRNOTAVAIL) }
        self.listener = listener
        self.port = port
        Thread { [self] in acceptLoop() }.start()
    }

    var received: [Received] { state.withLock { $0.received } }
    var connections: Int { state.withLock { $0.connections } }

    private func acceptLoop() {
        while true {
            let socket = accept(listener, nil, nil)
            guard socket >= 0 else { return }
            let index = state.withLock { state in
                state.connections += 1
                state.sockets.append(socket)
                return state.connections
            }
            Thread { [self] in serve(socket, connection: index) }.start()
        }
    }

    private func serve(_ socket: Int32, connection: Int) {
        defer {
            // Closed here, once no longer listed, so that `stop()` never shuts down a reused number.
            state.withLock { $0.sockets.removeAll { $0 == socket } }
            close(socket)
        }
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            // One request: its head, then Content-Length bytes of body.
            var headEnd = pending.firstRange(of: Array("\r\n\r\n".utf8))
            while headEnd == nil {
                let count = recv(socket, &buffer, buffer.count, 0)
                if count <= 0 { return }
                pending += buffer[0..<count]
                headEnd = pending.firstRange(of: Array("\r\n\r\n".utf8))
            }
            let head = String(decoding: pending[..<headEnd!.upperBound], as: UTF8.self)
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            while pending.count < headEnd!.upperBound + length {
                let count = recv(socket, &buffer, buffer.count, 0)
                if count <= 0 { return }
                pending += buffer[0..<count]
            }
            let end = headEnd!.upperBound + length
            let text = String(decoding: pending[..<end], as: UTF8.self)
            pending.removeFirst(end)
            let number = state.withLock { state in
                state.received.append(Received(connection: connection, text: text))
                return state.received.count
            }
            let (bytes, close) = answer(number)
            let out = Array(bytes.utf8)
            _ = out.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if close { return }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        state.withLock { state in
            for socket in state.sockets { shutdown(socket, Int32(SHUT_RDWR)) }
        }
    }
}

/// The loops of these tests' clients, apart from the shared singleton that the gateway's tests
/// load (and hold up) at the same time: the timing bounds here are about the client alone.
let deliveryTestGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

@Suite struct PlainHTTPClientTests {
    private static let accepted = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"

    private func post(_ client: PlainHTTPClient, _ server: ScriptedServer, body: String = "{}", timeout: TimeAmount = .seconds(5)) async -> PlainHTTPClient.Exchange {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "sink.example")
        headers.add(name: "ce-id", value: "1")
        return await client.post(
            to: .init(host: "127.0.0.1", port: server.port), target: "/in?x=1", headers: headers, body: Array(body.utf8),
            wantsReply: false, deadline: .now() + timeout)
    }

    @Test func requestsGoOutWholeOnOneKeptAliveConnection() async throws {
        let server = try ScriptedServer { _ in (Self.accepted, false) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        for body in ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}"] {
            let exchange = await post(client, server, body: body)
            #expect(exchange.error == nil && exchange.head?.status == .accepted)
        }
        #expect(server.connections == 1, "one connection, kept alive")
        #expect(client.idleCount == 1)
        let first = server.received.first?.text ?? ""
        #expect(first.hasPrefix("POST /in?x=1 HTTP/1.1\r\n"))
        #expect(first.contains("Host: sink.example\r\n") && first.contains("ce-id: 1\r\n") && first.contains("content-length: 7\r\n"))
        #expect(first.hasSuffix("\r\n\r\n{\"a\":1}"))
    }

    @Test func anAnswerThatClosesOrSendsMoreThanItsLengthLeavesTheConnectionUnused() async throws {
        let server = try ScriptedServer { number in
            switch number {
            case 1: ("HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", false)
            case 2: (Self.accepted + "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false)  // an answer nobody asked for
            default: (Self.accepted, false)
            }
        }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        for _ in 0..<3 {
            let exchange = await post(client, server)
            #expect(exchange.error == nil && exchange.head?.status == .accepted)
        }
        #expect(server.connections == 3, "`Connection: close` and stray bytes each end their connection")
    }

    @Test func aKeptConnectionTheServerClosedIsReplacedWithoutAFailure() async throws {
        // The server closes each connection right after its answer, without saying so.
        let server = try ScriptedServer { _ in (Self.accepted, true) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        for _ in 0..<5 {
            let exchange = await post(client, server)
            #expect(exchange.error == nil && exchange.head?.status == .accepted)
        }
        #expect(server.received.count == 5)
    }

    @Test func aRefusedConnectionFailsAtOnceAndAMuteServerAtTheDeadline() async throws {
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        guard let (closed, port) = loopbackSocket(listening: false) else { return }
        close(closed)
        let started = ContinuousClock.now
        let refused = await client.post(
            to: .init(host: "127.0.0.1", port: port), target: "/", headers: ["Host": "x"], body: [], wantsReply: false, deadline: .now() + .seconds(5))
        #expect(refused.head == nil && refused.error != nil)
        #expect(ContinuousClock.now - started < .seconds(2))

        let mute = try ScriptedServer { _ in ("", false) }
        defer { mute.stop() }
        let waited = ContinuousClock.now
        let timedOut = await post(client, mute, timeout: .milliseconds(300))
        #expect(timedOut.head == nil && timedOut.error is PlainHTTPClient.DeadlineExceeded)
        #expect(ContinuousClock.now - waited < .seconds(3))
        #expect(client.idleCount == 0, "a connection whose exchange timed out is closed")
    }

    @Test func anAnswerEndedByClosingTheConnectionIsWhole() async throws {
        let server = try ScriptedServer { _ in ("HTTP/1.1 500 Internal Server Error\r\n\r\noops", true) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        for _ in 0..<2 {
            let exchange = await post(client, server)
            #expect(exchange.error == nil && exchange.head?.status == .internalServerError)
            #expect(String(buffer: exchange.body.bytes) == "oops")
        }
        #expect(server.connections == 2 && client.idleCount == 0, "a closed connection is not kept")
    }

    @Test func aSwitchOfProtocolsFailsTheExchangeAtOnce() async throws {
        let server = try ScriptedServer { _ in ("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: Upgrade\r\n\r\n", false) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        let started = ContinuousClock.now
        let exchange = await post(client, server, timeout: .seconds(10))
        #expect((exchange.error as? PlainHTTPClient.UnexpectedAnswer)?.status == 101)
        #expect(ContinuousClock.now - started < .seconds(5), "not held until the deadline")
        #expect(server.received.count == 1 && client.idleCount == 0)
    }

    @Test func aReusedConnectionClosedWithoutAnAnswerIsReplacedOnce() async throws {
        // The second request finds its kept connection closed without an answer; the third
        // (the second's resend, on a new connection) is answered.
        let server = try ScriptedServer { number in number == 2 ? ("", true) : (Self.accepted, false) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        #expect(await post(client, server).head?.status == .accepted)
        let second = await post(client, server)
        #expect(second.error == nil && second.head?.status == .accepted)
        #expect(server.received.count == 3 && server.connections == 2)
    }

    @Test func anAnswerThatIsNotHTTPIsNotResent() async throws {
        let server = try ScriptedServer { number in number == 2 ? ("NOT HTTP AT ALL\r\n\r\n", false) : (Self.accepted, false) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        defer { client.shutdown() }
        #expect(await post(client, server).head?.status == .accepted)
        let second = await post(client, server)
        #expect(second.head == nil && second.error != nil && !(second.error is PlainHTTPClient.ConnectionClosed))
        #expect(server.received.count == 2, "the recipient got the request: it is not sent again here")
    }

    @Test func afterShutdownNothingIsSent() async throws {
        let server = try ScriptedServer { _ in (Self.accepted, false) }
        defer { server.stop() }
        let client = PlainHTTPClient(group: deliveryTestGroup)
        _ = await post(client, server)
        client.shutdown()
        let refused = await post(client, server)
        #expect(refused.error is PlainHTTPClient.ShutDown)
        #expect(server.received.count == 1)
    }
}
