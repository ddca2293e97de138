import NIOCore

/// One end of the byte pipe between a client and a worker after an HTTP upgrade (WebSocket)
/// switched both connections away from HTTP. What one end reads, the other writes; an end
/// stops reading while the other cannot take more (back-pressure both ways). When either
/// connection closes, the other is closed after its pending bytes are written. An
/// `IdleStateEvent` (the downstream end has an `IdleStateHandler` for
/// ``GatewayConfiguration/webSocketIdleTimeout``) or a drain (`ChannelShouldQuiesceEvent`)
/// closes the tunnel.
///
/// Both ends live on the same event loop (the worker connection comes from that loop's pool).
final class TunnelHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Which connection an end sits on.
    enum Side {
        case client, worker
    }

    /// What both ends share: the bytes read on each side, and the action to run once when the
    /// tunnel ends (given the bytes read from the client and from the worker).
    final class Lifetime {
        private var onEnd: ((_ fromClient: Int, _ fromWorker: Int) -> Void)?
        fileprivate var fromClient = 0
        fileprivate var fromWorker = 0

        init(onEnd: @escaping (_ fromClient: Int, _ fromWorker: Int) -> Void) {
            self.onEnd = onEnd
        }

        /// Runs the end action the first time only.
        func end() {
            let action = onEnd
            onEnd = nil
            action?(fromClient, fromWorker)
        }
    }

    /// The other end (cleared when either side closes, which breaks the reference cycle).
    private var peer: TunnelHandler?
    private let lifetime: Lifetime
    private let side: Side
    private var context: ChannelHandlerContext?
    private var readPending = false
    private var closing = false
    /// Bytes were passed to the other end since its last flush.
    private var unflushed = false

    init(lifetime: Lifetime, side: Side) {
        self.lifetime = lifetime
        self.side = side
    }

    /// Connects two ends and lets both read; a side that closed meanwhile ends the tunnel.
    static func connect(_ first: TunnelHandler, _ second: TunnelHandler) {
        first.peer = second
        second.peer = first
        for end in [first, second] where !(end.context?.channel.isActive ?? false) {
            end.finish()
            return
        }
        first.startReading()
        second.startReading()
        // Bytes the worker sent along with its 101 come from the HTTP decoder when it leaves,
        // which happens in a task queued before this one, with no read-complete after them.
        first.context?.eventLoop.assumeIsolated().execute {
            first.flushOther()
            second.flushOther()
        }
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let peer else { return }
        let bytes = unwrapInboundIn(data)
        switch side {
        case .client: lifetime.fromClient += bytes.readableBytes
        case .worker: lifetime.fromWorker += bytes.readableBytes
        }
        peer.send(bytes)
        unflushed = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushOther()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { peer?.resumeReads() }
        context.fireChannelWritabilityChanged()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent || event is ChannelShouldQuiesceEvent {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if peer?.context?.channel.isWritable ?? true {
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: Between the ends

    private func send(_ bytes: ByteBuffer) {
        context?.write(wrapOutboundOut(bytes), promise: nil)
    }

    /// Flushes what this end passed to the other one.
    private func flushOther() {
        guard unflushed else { return }
        unflushed = false
        peer?.context?.flush()
    }

    private func resumeReads() {
        guard readPending, let context else { return }
        readPending = false
        context.read()
    }

    private func startReading() {
        // A read held back by the HTTP handlers that left the pipeline would otherwise be lost.
        readPending = false
        context?.read()
    }

    /// This side closed: end the tunnel and close the other side once its bytes are out.
    private func finish() {
        let other = peer
        peer = nil
        other?.peer = nil
        other?.close()
        lifetime.end()
    }

    /// Closes this side after writing what is queued.
    private func close() {
        guard !closing, let context else { return }
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(channel.allocator.buffer(capacity: 0))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }
}
