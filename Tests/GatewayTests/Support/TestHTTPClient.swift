import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A response as the test client received it.
struct TestResponse: Sendable {
    var head: HTTPResponseHead
    var body: ByteBuffer

    var status: HTTPResponseStatus { head.status }
    var headers: HTTPHeaders { head.headers }
    var text: String { String(buffer: body) }
}

struct TestClientError: Error, CustomStringConvertible {
    var description: String
}

/// A keep-alive HTTP/1.1 client over one NIO connection to 127.0.0.1; requests go one at a time.
final class TestHTTPClient: Sendable {
    let channel: any Channel

    private init(channel: any Channel) {
        self.channel = channel
    }

    static func connect(port: Int, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> TestHTTPClient {
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(.seconds(2))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseCollector())
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return TestHTTPClient(channel: channel)
    }

    /// Sends a request (the body in `chunkSize` parts) and waits up to `timeout` for the response.
    func send(
        _ method: HTTPMethod = .GET,
        _ uri: String,
        host: String?,
        headers extra: [(String, String)] = [],
        body: ByteBuffer? = nil,
        chunkSize: Int = 65_536,
        chunked: Bool = false,
        version: HTTPVersion = .http1_1,
        timeout: TimeAmount = .seconds(10)
    ) async throws -> TestResponse {
        var headers = HTTPHeaders()
        if let host { headers.add(name: "host", value: host) }
        for (name, value) in extra { headers.add(name: name, value: value) }
        if let body, !chunked { headers.replaceOrAdd(name: "content-length", value: "\(body.readableBytes)") }
        if chunked { headers.replaceOrAdd(name: "transfer-encoding", value: "chunked") }
        let head = HTTPRequestHead(version: version, method: method, uri: uri, headers: headers)
        let promise = channel.eventLoop.makePromise(of: TestResponse.self)
        let channel = self.channel
        do {
            try await channel.eventLoop.submit {
            let collector = try channel.pipeline.syncOperations.handler(type: ResponseCollector.self)
            collector.expect(promise)
            let deadline = channel.eventLoop.scheduleTask(in: timeout) {
                promise.fail(TestClientError(description: "no response within \(timeout)"))
            }
            promise.futureResult.whenComplete { _ in deadline.cancel() }
            }.get()
        } catch {
            promise.fail(error)
            throw error
        }
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if var body {
            while body.readableBytes > 0 {
                let part = body.readSlice(length: min(chunkSize, body.readableBytes))!
                channel.write(HTTPClientRequestPart.body(.byteBuffer(part)), promise: nil)
            }
        }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        return try await promise.futureResult.get()
    }

    /// Whether the server has closed the connection (waits up to `timeout` for it).
    func waitUntilClosed(timeout: TimeAmount = .seconds(5)) async -> Bool {
        let channel = self.channel
        let promise = channel.eventLoop.makePromise(of: Bool.self)
        let deadline = channel.eventLoop.scheduleTask(in: timeout) { promise.succeed(false) }
        channel.closeFuture.whenComplete { _ in
            deadline.cancel()
            promise.succeed(true)
        }
        return (try? await promise.futureResult.get()) ?? false
    }

    func close() async {
        try? await channel.close()
    }
}

/// Collects one full response per expected promise.
private final class ResponseCollector: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private var waiting = CircularBuffer<EventLoopPromise<TestResponse>>()
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()

    func expect(_ promise: EventLoopPromise<TestResponse>) {
        waiting.append(promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
        case .body(var part):
            body.writeBuffer(&part)
        case .end:
            if let head, let promise = waiting.popFirst() {
                promise.succeed(TestResponse(head: head, body: body))
            }
            head = nil
            body = ByteBuffer()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        failAll()
    }

    private func failAll() {
        while let promise = waiting.popFirst() {
            promise.fail(TestClientError(description: "connection closed before a full response"))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        while let promise = waiting.popFirst() { promise.fail(error) }
        context.close(promise: nil)
    }
}

/// Sends raw bytes and returns everything the server sends until it closes the connection (or
/// `timeout` passes). For requests the NIO encoder refuses to produce.
func rawExchange(port: Int, _ request: String, timeout: Duration = .seconds(3)) async throws -> String {
    let connection = try await RawConnection.connect(port: port)
    try await connection.send(request)
    return await connection.readUntilClosed(timeout: timeout)
}

/// A plain TCP connection to 127.0.0.1 for byte-level HTTP tests.
final class RawConnection: Sendable {
    private let channel: any Channel
    private let received: RawReceived

    private init(channel: any Channel, received: RawReceived) {
        self.channel = channel
        self.received = received
    }

    /// Connects; with `reading: false` the connection never reads (a client that stalls).
    static func connect(
        port: Int, reading: Bool = true, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) async throws -> RawConnection {
        let received = RawReceived()
        let channel = try await ClientBootstrap(group: group)
            .channelOption(ChannelOptions.autoRead, value: reading)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteCollector(received))
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .get()
        return RawConnection(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    func send(bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Queues `size` body bytes in 64 KiB writes; returns a counter of the bytes the kernel took.
    func stream(bytes size: Int) -> WriteCounter {
        let counter = WriteCounter()
        let block = ByteBuffer(repeating: 0x61, count: 65_536)
        var offset = 0
        while offset < size {
            let count = min(65_536, size - offset)
            let written = channel.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenSuccess { counter.add(count) }
            channel.write(block.getSlice(at: 0, length: count)!, promise: written)
            offset += count
        }
        channel.flush()
        return counter
    }

    /// Closes the connection.
    func close() async {
        try? await channel.close()
    }

    /// Waits until the received text contains `needle` (or `timeout` passes); returns the text.
    func wait(for needle: String, timeout: Duration = .seconds(3)) async -> String {
        await wait(timeout: timeout) { $0.contains(needle) }
    }

    /// Waits until the received text satisfies `done`, the server closes, or `timeout` passes;
    /// returns the text.
    func wait(timeout: Duration = .seconds(3), until done: (String) -> Bool) async -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            let (text, closed) = received.snapshot
            if done(text) || closed { return text }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return received.snapshot.text
    }

    /// Waits up to `timeout` for the server to close; true when it did.
    func serverCloses(within timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !received.snapshot.closed, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        return received.snapshot.closed
    }

    /// Waits for the server to close (or closes after `timeout`); returns all text received.
    func readUntilClosed(timeout: Duration = .seconds(3)) async -> String {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while !received.snapshot.closed, clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        try? await channel.close()
        return received.snapshot.text
    }
}

/// Bytes written so far, from any thread.
final class WriteCounter: Sendable {
    private let total = Atomic<Int>(0)

    func add(_ bytes: Int) {
        total.add(bytes, ordering: .relaxed)
    }

    var value: Int { total.load(ordering: .relaxed) }
}

private final class RawReceived: Sendable {
    private let state = Mutex<(text: String, closed: Bool)>(("", false))

    var snapshot: (text: String, closed: Bool) { state.withLock { $0 } }

    func append(_ buffer: ByteBuffer) {
        state.withLock { $0.text += String(buffer: buffer) }
    }

    func markClosed() {
        state.withLock { $0.closed = true }
    }
}

private final class ByteCollector: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    private let received: RawReceived

    init(_ received: RawReceived) {
        self.received = received
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received.append(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        received.markClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
