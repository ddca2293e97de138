import NIOCore

/// Sends what an HTTP/2 connection has to write once per event-loop pass instead of once per
/// stream.
///
/// Each stream's response is written when its worker answers, from the worker connection's read,
/// and ends with a flush. Without this handler every flush reaches the socket as its own
/// `writev`: with 64 streams over 8 connections, one system call per response. Placed below
/// NIO's HTTP/2 handler, it turns a flush into a task that runs after the event loop has handled
/// the rest of the ready sockets, so the responses (and SETTINGS or WINDOW_UPDATE frames) that
/// became ready in that pass leave in one write. A flush is delayed by at most the rest of one
/// pass. Closing the connection flushes first, so a GOAWAY written just before is not lost.
///
/// Must run on the channel's event loop.
final class FlushCoalescingHandler: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private var context: ChannelHandlerContext?
    /// A flush task is queued and has not run yet.
    private var flushQueued = false

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        flushNow()
        self.context = nil
    }

    func flush(context: ChannelHandlerContext) {
        guard !flushQueued else { return }
        flushQueued = true
        context.eventLoop.assumeIsolated().execute { [self] in flushNow() }
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        flushNow()
        context.close(mode: mode, promise: promise)
    }

    /// Sends what is queued, if a flush is owed.
    private func flushNow() {
        guard flushQueued else { return }
        flushQueued = false
        context?.flush()
    }
}
