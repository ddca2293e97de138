import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// What the test upstream saw of one request.
struct RecordedRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var version: HTTPVersion
    /// Which accepted connection carried it (0, 1, …).
    var connection: Int
    var bodyBytes: Int
}

/// A small HTTP/1.1 server on 127.0.0.1 standing in for a worker. It records every request
/// and behaves by path:
/// - `/echo`: streams the request body back as it arrives.
/// - `/slow/<ms>`: answers `slow` after the delay.
/// - `/big/<bytes>`: answers with that many bytes (byte `i` is `i % 256`), in 64 KiB parts.
/// - `/drop`: closes the connection without answering.
/// - `/trickle/<ms>`: sends the head and `first` at once, `rest` and the end after the delay.
/// - `/stall`: stops reading the request (to test upload back-pressure); never answers.
/// - `/status/<code>`: answers with that status.
/// - `/flaky/<n>`: the first n requests to this path get 503, later ones 200.
/// - anything else: `hello <method> <uri>` with a content-length.
/// With `x-test-close: 1` the response carries `Connection: close` and the connection closes.
/// With `x-test-drop-if-reused: 1`, a request that is not the first on its connection gets
/// the connection closed instead (simulates a worker closing an idle keep-alive connection).
final class TestUpstreamServer: Sendable {
    let port: Int
    private let channel: any Channel
    private let state: TestUpstreamState

    private init(channel: any Channel, state: TestUpstreamState) {
        self.channel = channel
        self.state = state
        self.port = channel.localAddress?.port ?? 0
    }

    /// Starts a server on an ephemeral port.
    static func start(group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TestUpstreamServer {
        let state = TestUpstreamState()
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let connection = state.connectionOpened()
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(
                        TestUpstreamHandler(state: state, connection: connection))
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .get()
        return TestUpstreamServer(channel: channel, state: state)
    }

    /// Requests seen so far (completed or not).
    var requests: [RecordedRequest] { state.requests }
    /// Connections accepted so far.
    var connectionCount: Int { state.connectionCount }
    /// Response body bytes of `/big` the kernel has accepted so far.
    var bigBytesWritten: Int { state.bigBytesWritten }

    /// Stops listening (existing connections stay).
    func stop() async {
        try? await channel.close()
    }
}

/// Shared, thread-safe record of the test server.
final class TestUpstreamState: Sendable {
    private struct Record {
        var requests: [RecordedRequest] = []
        var connections = 0
        var bigBytesWritten = 0
    }

    private let record = Mutex(Record())

    func connectionOpened() -> Int {
        record.withLock { record in
            defer { record.connections += 1 }
            return record.connections
        }
    }

    func requestStarted(_ request: RecordedRequest) -> Int {
        record.withLock { record in
            record.requests.append(request)
            return record.requests.count - 1
        }
    }

    func addBody(_ bytes: Int, to index: Int) {
        record.withLock { $0.requests[index].bodyBytes += bytes }
    }

    func bigWritten(_ bytes: Int) {
        record.withLock { $0.bigBytesWritten += bytes }
    }

    var bigBytesWritten: Int { record.withLock { $0.bigBytesWritten } }
    var requests: [RecordedRequest] { record.withLock { $0.requests } }
    var connectionCount: Int { record.withLock { $0.connections } }
}

private final class TestUpstreamHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let state: TestUpstreamState
    private let connection: Int
    private var requestsOnConnection = 0
    private var current: Int?
    private var head: HTTPRequestHead?
    private var echoing = false

    init(state: TestUpstreamState, connection: Int) {
        self.state = state
        self.connection = connection
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            defer { requestsOnConnection += 1 }
            if head.headers["x-test-drop-if-reused"].first == "1", requestsOnConnection > 0 {
                context.close(promise: nil)
                return
            }
            self.head = head
            current = state.requestStarted(
                RecordedRequest(
                    method: head.method, uri: head.uri, headers: head.headers, version: head.version,
                    connection: connection, bodyBytes: 0))
            echoing = head.uri == "/echo"
            if head.uri == "/stall" {
                context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
            }
            if echoing {
                var headers = HTTPHeaders()
                headers.add(name: "x-upstream-connection", value: "\(connection)")
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            }
        case .body(let body):
            if let current { state.addBody(body.readableBytes, to: current) }
            if echoing { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        if echoing {
            echoing = false
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            return
        }
        let path = head.uri
        if path == "/drop" {
            context.close(promise: nil)
        } else if path.hasPrefix("/slow/"), let ms = Int64(path.dropFirst(6)) {
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
                let (handler, context) = loopBound.value
                handler.writeSimple("slow", context: context)
            }
        } else if path.hasPrefix("/trickle/"), let ms = Int64(path.dropFirst(9)) {
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "first")))), promise: nil)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.scheduleTask(in: .milliseconds(ms)) {
                let (handler, context) = loopBound.value
                context.write(handler.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: "rest")))), promise: nil)
                context.writeAndFlush(handler.wrapOutboundOut(.end(nil)), promise: nil)
            }
        } else if path.hasPrefix("/status/"), let code = Int(path.dropFirst(8)) {
            writeSimple("status \(code)", context: context, status: HTTPResponseStatus(statusCode: code))
        } else if path.hasPrefix("/flaky/"), let failures = Int(path.dropFirst(7)) {
            let seen = state.requests.count { $0.uri == path }
            writeSimple(seen <= failures ? "flaky" : "recovered", context: context, status: seen <= failures ? .serviceUnavailable : .ok)
        } else if path.hasPrefix("/big/"), let size = Int(path.dropFirst(5)) {
            var headers = HTTPHeaders()
            headers.add(name: "content-length", value: "\(size)")
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
            let block = ByteBuffer(bytes: (0..<65_536).map { UInt8(truncatingIfNeeded: $0) })
            var offset = 0
            while offset < size {
                let count = min(65_536, size - offset)
                let written = context.eventLoop.makePromise(of: Void.self)
                let state = self.state
                written.futureResult.whenSuccess { state.bigWritten(count) }
                context.write(wrapOutboundOut(.body(.byteBuffer(block.getSlice(at: 0, length: count)!))), promise: written)
                offset += count
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        } else {
            writeSimple("hello \(head.method) \(head.uri)", context: context, close: head.headers["x-test-close"].first == "1")
        }
    }

    private func writeSimple(_ text: String, context: ChannelHandlerContext, close: Bool = false, status: HTTPResponseStatus = .ok) {
        var headers = HTTPHeaders()
        if close { headers.add(name: "connection", value: "close") }
        headers.add(name: "content-length", value: "\(text.utf8.count)")
        headers.add(name: "x-upstream-connection", value: "\(connection)")
        // Hop-by-hop headers the gateway must not pass on.
        headers.add(name: "keep-alive", value: "timeout=5")
        headers.add(name: "connection", value: "x-upstream-private")
        headers.add(name: "x-upstream-private", value: "secret")
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if close { channel.close(promise: nil) }
        }
    }
}
