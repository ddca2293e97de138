import NIOCore

/// Bounds how long a request head may take once its first byte has arrived: a client that
/// dribbles a head byte by byte (slowloris) gets `408 Request Timeout` and the connection closes,
/// however often it sends. It sits in front of the HTTP decoder and sees raw bytes; the
/// ``ProxyHandler`` tells it when a head has arrived and when an exchange has ended, so that
/// the next bytes start the clock again. Bodies are bounded by the route's timeout instead.
final class RequestHeadTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var context: ChannelHandlerContext?
    /// Between exchanges: the next bytes belong to a new head.
    private var awaitingHead = true
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
        if awaitingHead, timer == nil {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in expired() }
        }
        context.fireChannelRead(data)
    }

    /// A complete head arrived: stop the clock until the exchange ends.
    func headArrived() {
        awaitingHead = false
        cancel()
    }

    /// The exchange ended; bytes from now on start the next head's clock.
    func exchangeEnded() {
        awaitingHead = true
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }

    private func expired() {
        timer = nil
        guard awaitingHead, let context else { return }
        let body = #"{"error":{"code":"RequestTimeout","message":"the request head did not arrive in time"}}"#
        var buffer = context.channel.allocator.buffer(capacity: 160 + body.utf8.count)
        buffer.writeString("HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\ncontent-length: \(body.utf8.count)\r\nconnection: close\r\n\r\n\(body)")
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
    }
}
