import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The HTTP/1.1 client of deliveries to `http://` destinations: keep-alive connections per
/// address, each request's head, body and end written and flushed together, so they leave in one
/// `writev` and the recipient reads the request in one pass.
///
/// AsyncHTTPClient (kept for `https://`) flushes a request's head before its body: two writes
/// per delivery, two reads and wake-ups on the recipient's side (here usually the gateway, which
/// forwards deliveries to services), and its per-request state machines on top; under sustained
/// delivery that client took about 40 % of the daemon's CPU.
///
/// Connections are opened on demand (nothing bounds how many are in flight: the dispatcher's
/// parallelism does) and kept idle up to ``maxIdlePerAddress`` per address; one idle for
/// ``idleTimeout`` is closed at the next sweep (every ``sweepInterval``), before the gateway's
/// own 60 s idle timeout would close it from the other side. A request whose reused connection
/// turns out closed or reset before any answer is sent once more on a new connection (the
/// recipient dropped the idle connection as it was taken); other failures are not resent here.
/// Exchanges in flight at ``shutdown()`` end at their deadlines.
final class PlainHTTPClient: Sendable {
    /// Where a connection goes.
    struct Address: Hashable, Sendable {
        var host: String
        var port: Int
    }

    /// What came back for one request: the head and the kept start of the body, or the error
    /// that ended the exchange (with the head, when it had arrived).
    struct Exchange: Sendable {
        var head: HTTPResponseHead?
        var body: AnswerBody
        var error: (any Error)?
    }

    /// The request failed because the connection closed before the answer was whole.
    struct ConnectionClosed: Error, CustomStringConvertible {
        var description: String { "the connection closed before the answer was whole" }
    }

    /// The request's deadline passed.
    struct DeadlineExceeded: Error, CustomStringConvertible {
        var description: String { "no whole answer before the attempt's timeout" }
    }

    /// An interim answer that NIO's decoder passes on (101 Switching Protocols).
    struct UnexpectedAnswer: Error, CustomStringConvertible {
        var status: Int
        var description: String { "the recipient answered \(status) to a POST" }
    }

    /// The client was shut down.
    struct ShutDown: Error, CustomStringConvertible {
        var description: String { "the delivery client is shut down" }
    }

    static let maxIdlePerAddress = 256
    static let idleTimeout = TimeAmount.seconds(40)
    static let sweepInterval = TimeAmount.seconds(10)

    let group: any EventLoopGroup
    private let state = Mutex(State())

    private struct Idle {
        var connection: Connection
        var since: NIODeadline
    }

    private struct State {
        var idle: [Address: [Idle]] = [:]
        var sweepScheduled = false
        var isShutDown = false
    }

    /// A connection and its handler, which is touched only on the connection's event loop.
    struct Connection: Sendable {
        let channel: any Channel
        let handler: NIOLoopBound<DeliveryConnectionHandler>
    }

    init(group: any EventLoopGroup) {
        self.group = group
    }

    /// How many connections sit idle (for tests).
    var idleCount: Int { state.withLock { $0.idle.values.reduce(0) { $0 + $1.count } } }

    /// Posts `body` with `headers` (which must carry `Host`) to `target` (origin form, such as
    /// `/path?query`) at `address`, and waits for the answer until `deadline`.
    func post(
        to address: Address, target: String, headers: HTTPHeaders, body: [UInt8], wantsReply: Bool, deadline: NIODeadline
    ) async -> Exchange {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target, headers: headers)
        head.headers.replaceOrAdd(name: "content-length", value: String(body.count))
        if let idle = checkout(address) {
            let exchange = await send(head, body: body, wantsReply: wantsReply, deadline: deadline, on: idle)
            // A reused connection closed or reset before any answer (the recipient dropped it as
            // it was taken): once more, on a new one.
            guard exchange.head == nil, exchange.error is ConnectionClosed, deadline > .now() else { return exchange }
        }
        let connection: Connection
        do {
            connection = try await connect(address, deadline: deadline)
        } catch {
            return Exchange(head: nil, body: AnswerBody(wantsReply: wantsReply), error: error)
        }
        return await send(head, body: body, wantsReply: wantsReply, deadline: deadline, on: connection)
    }

    /// Closes the idle connections; later requests fail.
    func shutdown() {
        let idle = state.withLock { state in
            state.isShutDown = true
            defer { state.idle.removeAll() }
            return state.idle.values.flatMap { $0 }
        }
        for entry in idle { entry.connection.channel.close(promise: nil) }
    }

    private func send(
        _ head: HTTPRequestHead, body: [UInt8], wantsReply: Bool, deadline: NIODeadline, on connection: Connection
    ) async -> Exchange {
        let loop = connection.channel.eventLoop
        let future = loop.flatSubmit {
            let promise = loop.makePromise(of: Exchange.self)
            connection.handler.value.start(head, body: body, wantsReply: wantsReply, deadline: deadline, promise: promise) { [self] in
                checkin(connection)
            }
            return promise.futureResult
        }
        do {
            return try await future.get()
        } catch {
            return Exchange(head: nil, body: AnswerBody(wantsReply: wantsReply), error: error)
        }
    }

    /// The most recently used open idle connection to `address`, if any.
    private func checkout(_ address: Address) -> Connection? {
        state.withLock { state in
            guard var list = state.idle.removeValue(forKey: address) else { return nil }
            defer { if !list.isEmpty { state.idle[address] = list } }
            while let entry = list.popLast() {
                if entry.connection.channel.isActive { return entry.connection }
            }
            return nil
        }
    }

    /// Takes back a connection whose exchange ended cleanly, or closes it when the pool is full
    /// or shut down.
    private func checkin(_ connection: Connection) {
        let address = connection.handler.value.address
        let (kept, sweep) = state.withLock { state -> (Bool, Bool) in
            guard !state.isShutDown, connection.channel.isActive, state.idle[address, default: []].count < Self.maxIdlePerAddress else {
                return (false, false)
            }
            state.idle[address, default: []].append(Idle(connection: connection, since: .now()))
            let sweep = !state.sweepScheduled
            state.sweepScheduled = true
            return (true, sweep)
        }
        if !kept { connection.channel.close(promise: nil) }
        if sweep { scheduleSweep() }
    }

    /// Drops a closed connection from the idle lists.
    fileprivate func closed(_ channel: any Channel, address: Address) {
        state.withLock { state in
            guard var list = state.idle.removeValue(forKey: address) else { return }
            list.removeAll { $0.connection.channel === channel }
            if !list.isEmpty { state.idle[address] = list }
        }
    }

    private func scheduleSweep() {
        group.any().scheduleTask(in: Self.sweepInterval) { [self] in
            let cutoff = NIODeadline.now() - Self.idleTimeout
            let (expired, again) = state.withLock { state -> ([Idle], Bool) in
                var expired: [Idle] = []
                for (address, list) in state.idle {
                    expired += list.filter { $0.since <= cutoff }
                    let fresh = list.filter { $0.since > cutoff }
                    state.idle[address] = fresh.isEmpty ? nil : fresh
                }
                state.sweepScheduled = !state.idle.isEmpty
                return (expired, state.sweepScheduled)
            }
            for entry in expired { entry.connection.channel.close(promise: nil) }
            if again { scheduleSweep() }
        }
    }

    private func connect(_ address: Address, deadline: NIODeadline) async throws -> Connection {
        guard !state.withLock({ $0.isShutDown }) else { throw ShutDown() }
        let remaining = deadline - .now()
        guard remaining > .zero else { throw DeadlineExceeded() }
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(remaining)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHTTPClientHandlers(leftOverBytesStrategy: .dropBytes)
                    try pipeline.addHandler(DeliveryConnectionHandler(address: address, client: self))
                }
            }
        // An IP address is used as it is: the resolver would look it up on another thread.
        let literal = address.host.hasPrefix("[") && address.host.hasSuffix("]") ? String(address.host.dropFirst().dropLast()) : address.host
        let channel: any Channel
        if let ip = try? SocketAddress(ipAddress: literal, port: address.port) {
            channel = try await bootstrap.connect(to: ip).get()
        } else {
            channel = try await bootstrap.connect(host: address.host, port: address.port).get()
        }
        guard !state.withLock({ $0.isShutDown }) else {
            try? await channel.close()
            throw ShutDown()
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: DeliveryConnectionHandler.self), eventLoop: channel.eventLoop)
        }.get()
        return Connection(channel: channel, handler: handler)
    }
}

/// The head's verdict on an answer's body: how much of it to keep (a reply up to
/// ``EventSender/maxResponseBytes``, an error text, nothing for a success), and the kept bytes.
struct AnswerBody: Sendable {
    let wantsReply: Bool
    private(set) var bytes = ByteBuffer()
    /// More came than was kept.
    private(set) var cut = false
    private var keep = 0

    init(wantsReply: Bool) {
        self.wantsReply = wantsReply
    }

    /// Whether an answer with `head` carries a reply (a 200 to a trigger that wants one).
    func isReply(_ head: HTTPResponseHead) -> Bool { wantsReply && head.status.code == 200 }

    /// Sets how much to keep from the answer's head.
    mutating func start(_ head: HTTPResponseHead) {
        let status = Int(head.status.code)
        keep = isReply(head) ? EventSender.maxResponseBytes : (200..<300).contains(status) ? 0 : EventSender.maxErrorBytes
    }

    mutating func append(_ buffer: ByteBuffer) {
        let room = keep - bytes.readableBytes
        if buffer.readableBytes > room { cut = true }
        if room > 0, let kept = buffer.getSlice(at: buffer.readerIndex, length: min(room, buffer.readableBytes)) {
            bytes.writeImmutableBuffer(kept)
        }
    }
}

/// The last handler of a delivery connection: sends one request at a time and collects its
/// answer. Lives on the connection's event loop.
final class DeliveryConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    let address: PlainHTTPClient.Address
    private weak var client: PlainHTTPClient?
    private var context: ChannelHandlerContext?

    private var promise: EventLoopPromise<PlainHTTPClient.Exchange>?
    private var head: HTTPResponseHead?
    private var body = AnswerBody(wantsReply: false)
    private var timeout: Scheduled<Void>?
    private var release: (() -> Void)?
    /// The request was written whole (an answer that comes before leaves the connection unusable).
    private var written = false

    init(address: PlainHTTPClient.Address, client: PlainHTTPClient) {
        self.address = address
        self.client = client
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil  // the context holds this handler: let both go
    }

    /// Writes the request and flushes once; `promise` gets the answer, `release` runs when the
    /// connection can carry another request.
    func start(
        _ request: HTTPRequestHead, body bytes: [UInt8], wantsReply: Bool, deadline: NIODeadline,
        promise: EventLoopPromise<PlainHTTPClient.Exchange>, release: @escaping () -> Void
    ) {
        guard let context, context.channel.isActive, self.promise == nil else {
            promise.succeed(PlainHTTPClient.Exchange(head: nil, body: AnswerBody(wantsReply: wantsReply), error: PlainHTTPClient.ConnectionClosed()))
            return
        }
        self.promise = promise
        self.release = release
        head = nil
        body = AnswerBody(wantsReply: wantsReply)
        written = false
        timeout = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            finish(error: PlainHTTPClient.DeadlineExceeded())
        }
        context.write(wrapOutboundOut(.head(request)), promise: nil)
        if !bytes.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: bytes)))), promise: nil)
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        done.futureResult.assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success: written = true
            case .failure(let error): finish(error: Self.closing(error))
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard promise != nil else {
            // Bytes nobody asked for (behind an answer, or while idle): the connection cannot
            // tell where the next answer starts.
            context.close(promise: nil)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let answer):
            // NIO's decoder drops 100 and 103; a 101 would hand the connection to another
            // protocol, which a POST of an event never asks for.
            guard answer.status.code >= 200 else {
                finish(error: PlainHTTPClient.UnexpectedAnswer(status: Int(answer.status.code)))
                return
            }
            head = answer
            body.start(answer)
        case .body(let buffer):
            body.append(buffer)
        case .end:
            finish(error: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish(error: PlainHTTPClient.ConnectionClosed())
        client?.closed(context.channel, address: address)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        finish(error: Self.closing(error))
    }

    /// ``PlainHTTPClient/ConnectionClosed`` for the errors of a connection the recipient closed
    /// or reset (a write into it, a read from it); other errors as they are.
    private static func closing(_ error: any Error) -> any Error {
        if error is ChannelError { return PlainHTTPClient.ConnectionClosed() }
        if let error = error as? IOError, error.errnoCode == ECONNRESET || error.errnoCode == EPIPE {
            return PlainHTTPClient.ConnectionClosed()
        }
        return error
    }

    /// Ends the exchange: hands the connection back (or closes it when the exchange did not end
    /// cleanly), then answers the promise.
    private func finish(error: (any Error)?) {
        guard let promise else {
            if error != nil { context?.close(promise: nil) }
            return
        }
        self.promise = nil
        timeout?.cancel()
        timeout = nil
        let release = self.release
        self.release = nil
        // Back in the pool before the answer is handed over, so that the caller's next request
        // finds it there. Another request can start on it only after this read pass.
        if error == nil && written && (head?.isKeepAlive ?? false) {
            release?()
        } else {
            context?.close(promise: nil)
        }
        promise.succeed(PlainHTTPClient.Exchange(head: head, body: body, error: error))
        head = nil
        body = AnswerBody(wantsReply: false)  // an idle connection holds no answer
    }
}
