import Foundation
@testable import Gateway
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// A pooled worker connection carries one exchange after another: whatever a worker sends
/// outside the response to a request must never become part of the answer to the next client.
@Suite("Worker response boundaries")
struct WorkerResponseBoundaryTests {
    static let host = TestRoutes.host

    /// Where the worker puts its unasked-for bytes, and which bytes.
    enum Tail: Sendable, CustomStringConvertible {
        /// In the same write as the response to `/first`.
        case behindResponse(String)
        /// 50 ms after that response, while the connection is idle in the gateway's pool.
        case later(String)

        var description: String {
            switch self {
            case .behindResponse(let bytes): "behind the response: \(bytes.debugDescription)"
            case .later(let bytes): "later: \(bytes.debugDescription)"
            }
        }
    }

    /// Answers `GET /first` with 200 and the tail, and every other request with a 404.
    final class TailWorker: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let tail: Tail?
        private var received = ""

        init(tail: Tail?) { self.tail = tail }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
            while let end = received.range(of: "\r\n\r\n") {
                let head = received[..<end.lowerBound]
                received = String(received[end.upperBound...])
                guard head.hasPrefix("GET /first ") else {
                    context.writeAndFlush(
                        wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 404 Not Found\r\nContent-Length: 6\r\n\r\nsecond")), promise: nil)
                    continue
                }
                let answer = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst"
                switch tail {
                case nil:
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
                case .behindResponse(let bytes):
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer + bytes)), promise: nil)
                case .later(let bytes):
                    context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: answer)), promise: nil)
                    let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                    context.eventLoop.scheduleTask(in: .milliseconds(50)) {
                        bound.value.writeAndFlush(NIOAny(ByteBuffer(string: bytes)), promise: nil)
                    }
                }
            }
        }
    }

    @Test(
        "bytes a worker sends outside a response close its connection instead of answering the next client",
        arguments: [
            // Part of a head whose last header the parser holds on to.
            Tail.behindResponse("HTTP/1.1 200 OK\r\nX-Injected: yes\r\nSet-Cookie: a"),
            // Part of a status line the parser consumed: the next response's status line would
            // have become its reason phrase.
            Tail.behindResponse("HTTP/1.1 200 "),
            Tail.later("HTTP/1.1 200 OK\r\nX-Injected: yes\r\nSet-Cookie: a"),
            Tail.later("HTTP/1.1 200 "),
        ])
    func strayBytes(tail: Tail) async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TailWorker(tail: tail)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: server.localAddress!.port!)))
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send("GET /first HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n")
        let first = await connection.wait(for: "first")
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n") && first.hasSuffix("first"), "got: \(first)")
        try await Task.sleep(for: .milliseconds(200))
        try await connection.send("GET /second HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        let text = await connection.readUntilClosed(timeout: .seconds(5))
        let second = text.range(of: "first").map { String(text[$0.upperBound...]) } ?? text
        #expect(second.hasPrefix("HTTP/1.1 404 Not Found\r\n"), "got: \(second)")
        #expect(second.hasSuffix("second"), "got: \(second)")
        #expect(!second.lowercased().contains("x-injected"), "got: \(second)")
        try await gateway.stop()
        try await server.close()
    }

    @Test("a worker connection that keeps to its responses is reused")
    func cleanConnectionReused() async throws {
        let accepted = NIOLockedValueBox(0)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                accepted.withLockedValue { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(TailWorker(tail: nil)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: server.localAddress!.port!)))
        let connection = try await RawConnection.connect(port: gateway.port)
        for round in 1...3 {
            try await connection.send("GET /first HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n")
            let text = await connection.wait { $0.components(separatedBy: "first").count - 1 >= round }
            #expect(text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count - 1 == round, "got: \(text)")
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(accepted.withLockedValue { $0 } == 1)
        await connection.close()
        try await gateway.stop()
        try await server.close()
    }
}
