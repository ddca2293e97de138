import NIOCore

/// Bounds how long a request head may take once its first byte has arrived: a client that
/// dribbles a head byte by byte (slowloris) gets `408 Request Timeout` and the connection closes,
/// however often it sends. It sits in front of the HTTP decoder and sees raw bytes; the
/// ``ProxyHandler`` tells it when a head has arrived and when an exchange has ended, so that
/// the next bytes start the clock again. Bodies are bounded by the route's timeout instead.
///
/// The clock is a deadline, not a timer per request: a head that arrives only clears the
/// deadline, and the one scheduled task re-arms itself for the current deadline when it fires
/// early. Scheduling and cancelling a task for every request cost a few microseconds each on a
/// busy loop (NIO's timer heap searches linearly to cancel).
final class RequestHeadTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var context: ChannelHandlerContext?
    /// Between exchanges: the next bytes belong to a new head.
    private var awaitingHead = true
    /// When the head being read must be complete; nil while no head is being read.
    private var deadline: NIODeadline?
    /// The scheduled check, at or before `deadline`; it may outlive the head it was set for.
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancel()
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if awaitingHead, deadline == nil {
            let due = NIODeadline.now() + timeout
            deadline = due
            // A timer still pending from an earlier head fires before `due` and re-arms.
            if timer == nil { arm(context, at: due) }
        }
        context.fireChannelRead(data)
    }

    /// A complete head arrived: stop the clock until the exchange ends.
    func headArrived() {
        awaitingHead = false
        deadline = nil
    }

    /// The exchange ended; bytes from now on start the next head's clock.
    func exchangeEnded() {
        awaitingHead = true
    }

    private func arm(_ context: ChannelHandlerContext, at due: NIODeadline) {
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) { [self] in fired() }
    }

    private func cancel() {
        deadline = nil
        timer?.cancel()
        timer = nil
    }

    private func fired() {
        timer = nil
        guard awaitingHead, let due = deadline, let context else { return }
        if NIODeadline.now() < due {
            arm(context, at: due)
            return
        }
        deadline = nil
        let body = #"{"error":{"code":"RequestTimeout","message":"the request head did not arrive in time"}}"#
        var buffer = context.channel.allocator.buffer(capacity: 160 + body.utf8.count)
        buffer.writeString("HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
