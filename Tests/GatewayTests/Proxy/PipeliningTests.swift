import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// HTTP/1.1 pipelining: requests sent back to back on one connection, before their answers,
/// are proxied one at a time and answered in order (NIO's `HTTPServerPipelineHandler` holds the
/// later ones until the answer in front of them has ended).
@Suite("Pipelining")
struct PipeliningTests {
    static let host = TestRoutes.host

    @Test("pipelined requests behind a slow one are answered in order, each once")
    func inOrder() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send(
            "GET /slow/150 HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n"
                + "GET /first HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n"
                + "POST /echo HTTP/1.1\r\nHost: \(Self.host)\r\nContent-Length: 9\r\n\r\nechoed-it"
                + "GET /last HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        let text = await connection.readUntilClosed(timeout: .seconds(5))
        let markers = ["slow", "hello GET /first", "echoed-it", "hello GET /last"]
        let positions = markers.map { marker in text.range(of: marker).map { text.distance(from: text.startIndex, to: $0.lowerBound) } }
        #expect(positions.allSatisfy { $0 != nil }, "got: \(text)")
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "answers out of order: \(text)")
        #expect(Self.answers(in: text) == 4, "got: \(text)")
        #expect(upstream.requests.map(\.uri) == ["/slow/150", "/first", "/echo", "/last"])
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a keep-alive connection takes its next request after a slow answer, many times over")
    func sequentialAfterSlowAnswers() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let connection = try await RawConnection.connect(port: gateway.port)
        for round in 1...5 {
            try await connection.send("GET /slow/20 HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n")
            let slow = await connection.wait { Self.answers(in: $0) >= 2 * round - 1 }
            #expect(Self.answers(in: slow) == 2 * round - 1, "round \(round): \(slow)")
            try await connection.send("GET /after-\(round) HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n")
            let after = await connection.wait(for: "hello GET /after-\(round)", timeout: .seconds(3))
            #expect(after.contains("hello GET /after-\(round)"), "round \(round): \(after)")
        }
        #expect(upstream.requests.count == 10)
        await connection.close()
        try await gateway.stop()
        await upstream.stop()
    }

    /// An in-process worker that answers on the spot, before `handle` returns.
    final class AnswersAtOnce: LocalUpstream {
        func handle(_ request: LocalRequest, respond: @escaping @Sendable (LocalResponse) -> Void) {
            respond(LocalResponse(status: 200, body: Array("echo \(request.path) [".utf8) + request.body + Array("]".utf8)))
        }
    }

    /// An answer given before `handle` returns ends the exchange while the gateway is still
    /// handing over the request's parts; the next pipelined request, which waits for its own
    /// lease, must keep every one of its parts.
    @Test("pipelined requests to an in-process worker that answers at once keep their bodies")
    func localAnswersAtOnce() async throws {
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.slowLocal(AnswersAtOnce(), delay: .milliseconds(20))))
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send(
            "POST /a HTTP/1.1\r\nHost: \(Self.host)\r\nContent-Length: 3\r\n\r\naaa"
                + "POST /b HTTP/1.1\r\nHost: \(Self.host)\r\nContent-Length: 3\r\n\r\nbbb"
                + "GET /c HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        let text = await connection.readUntilClosed(timeout: .seconds(5))
        let markers = ["echo /a [aaa]", "echo /b [bbb]", "echo /c []"]
        let positions = markers.map { marker in text.range(of: marker).map { text.distance(from: text.startIndex, to: $0.lowerBound) } }
        #expect(positions.allSatisfy { $0 != nil }, "got: \(text)")
        #expect(positions.compactMap { $0 } == positions.compactMap { $0 }.sorted(), "answers out of order: \(text)")
        try await gateway.stop()
    }

    /// A worker that answers the first request on a connection with its response and the start
    /// of a second one nobody asked for, whose rest follows 50 ms later; it ignores later
    /// requests on the connection.
    final class ExtraResponseWorker: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        private var answered = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard !answered else { return }
            answered = true
            context.writeAndFlush(
                wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nanswerHTTP/1.1 200 OK\r\n")),
                promise: nil)
            let context = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.value.eventLoop.scheduleTask(in: .milliseconds(50)) {
                context.value.writeAndFlush(NIOAny(ByteBuffer(string: "Content-Length: 8\r\n\r\nsmuggled")), promise: nil)
            }
        }
    }

    /// The worker's extra bytes come in the read that ends the first response. Writing that
    /// response's end hands the gateway the next pipelined request at once; the worker
    /// connection must not be taken for it before the read is over. (A whole extra response in
    /// that read NIO's decoder refuses as unsolicited, since the next request's head is queued
    /// until it has decoded the read; the start of one it parses, and the rest would then
    /// answer the next request.)
    @Test("bytes a worker sends behind its response never answer the next pipelined request")
    func leftoverWorkerBytes() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(ExtraResponseWorker()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: server.localAddress!.port!)))
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send(
            "GET /a HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n"
                + "GET /b HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        let text = await connection.readUntilClosed(timeout: .seconds(5))
        #expect(Self.answers(in: text) == 2, "got: \(text)")
        #expect(text.components(separatedBy: "answer").count - 1 == 2, "got: \(text)")
        #expect(!text.contains("smuggled"), "got: \(text)")
        try await gateway.stop()
        try await server.close()
    }

    static func answers(in text: String) -> Int {
        text.components(separatedBy: "HTTP/1.1 200 OK\r\n").count - 1
    }
}
