import NIOCore

/// Sits at the socket end of an embedded pipeline and counts the reads and flushes that reach
/// it, passing them on.
final class OutboundCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    var flushes = 0

    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }

    func flush(context: ChannelHandlerContext) {
        flushes += 1
        context.flush()
    }
}
