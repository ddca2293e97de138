import NIOCore
import NIOHTTP1

/// What a pooled worker connection reports to the request currently using it. Called on the
/// event loop that owns both connections.
protocol UpstreamHandlerDelegate: AnyObject {
    /// A response part arrived from the worker.
    func upstreamReceived(_ part: HTTPClientResponsePart)
    /// The worker's read burst ended: a good moment to flush towards the client.
    func upstreamReadComplete()
    /// The worker connection became writable or stopped being writable.
    func upstreamWritabilityChanged()
    /// The worker connection closed while this delegate was attached.
    func upstreamClosed()
}

/// The last handler of a keep-alive HTTP/1.1 connection to one worker port. It forwards response
/// parts to the attached exchange and lets that exchange pause reads (back-pressure towards a
/// slow client). Idle, it sits in an ``UpstreamConnectionPool``.
final class UpstreamHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart
    typealias OutboundOut = HTTPClientRequestPart

    /// The worker port this connection goes to.
    let port: Int
    /// The exchange using the connection; `nil` while idle.
    weak var delegate: (any UpstreamHandlerDelegate)?
    /// The pool to leave when the connection closes while idle.
    weak var pool: UpstreamConnectionPool?
    /// Whether the connection sits in its pool's idle list.
    var isPooled = false
    /// When the connection was last returned to the pool.
    var idleSince = NIODeadline.distantPast
    /// Requests sent on this connection (for `maxRequestsPerConnection`).
    var requestCount = 0
    /// Between a `channelRead` and the end of its read pass (`channelReadComplete`).
    private(set) var isReading = false
    /// Checked in during a read pass: `pool` takes it when the pass ends (see
    /// ``UpstreamConnectionPool/checkin(_:)``).
    var checkInAfterRead = false
    /// The connection's response decoder, told where each response ends.
    let decoder: WorkerResponseDecoder
    /// The response being read switches protocols (its end starts a tunnel).
    private var switchingProtocols = false

    private var context: ChannelHandlerContext?
    private var readsPaused = false
    private var readPending = false

    init(port: Int, decoder: WorkerResponseDecoder) {
        self.port = port
        self.decoder = decoder
    }

    /// Whether the connection can still carry a request.
    var isActive: Bool { context?.channel.isActive ?? false }

    /// Whether writes go out without piling up in the channel's buffer.
    var isWritable: Bool { context?.channel.isWritable ?? false }

    /// Queues a request part (call ``flush()`` to send).
    func send(_ part: HTTPClientRequestPart) {
        context?.write(wrapOutboundOut(part), promise: nil)
    }

    /// Sends what was queued.
    func flush() {
        context?.flush()
    }

    /// Stops or resumes reading from the worker.
    func setReadsPaused(_ paused: Bool) {
        readsPaused = paused
        if !paused, readPending, let context {
            readPending = false
            context.read()
        }
    }

    /// Closes the connection; the delegate is not told (detach it first).
    func close() {
        context?.close(promise: nil)
    }

    /// After the worker switched protocols (101): replaces this connection's HTTP handlers and
    /// this handler with `tunnel`. Bytes the worker sent right behind its response head are
    /// handed to `tunnel` when the decoder leaves (the pool's decoders forward left-overs).
    func replace(with tunnel: TunnelHandler) throws {
        guard let context else { throw ChannelError.ioOnClosedChannel }
        delegate = nil
        let pipeline = context.pipeline.syncOperations
        try pipeline.addHandler(tunnel)
        pipeline.removeHandler(try pipeline.handler(type: HTTPRequestEncoder.self), promise: nil)
        pipeline.removeHandler(try pipeline.handler(type: ByteToMessageHandler<WorkerResponseDecoder>.self), promise: nil)
        pipeline.removeHandler(context: context, promise: nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        isReading = true
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head): switchingProtocols = head.status == .switchingProtocols
        case .body: break
        case .end: if !switchingProtocols { decoder.responseEnded() }
        }
        guard let delegate else {
            // Bytes on an idle connection (or behind the response that just ended): the worker
            // broke the protocol; drop the connection.
            checkInAfterRead = false
            context.close(promise: nil)
            return
        }
        delegate.upstreamReceived(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        isReading = false
        if checkInAfterRead {
            checkInAfterRead = false
            if let pool { pool.checkin(self) } else { context.close(promise: nil) }
        }
        delegate?.upstreamReadComplete()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        delegate?.upstreamWritabilityChanged()
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        isReading = false
        checkInAfterRead = false
        if isPooled { pool?.connectionClosed(self) }
        let delegate = self.delegate
        self.delegate = nil
        delegate?.upstreamClosed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed response or a reset: the connection is unusable. The exchange learns about
        // it through `channelInactive`.
        context.close(promise: nil)
    }

    func read(context: ChannelHandlerContext) {
        if readsPaused {
            readPending = true
        } else {
            context.read()
        }
    }
}
