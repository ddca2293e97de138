import NIOCore
import NIOHTTP1

/// Keeps an HTTP/1.1 connection's socket registered for reading while its one request is being
/// answered.
///
/// NIO's `HTTPServerPipelineHandler` (the next handler up) holds reads back from a request's end
/// until its response has ended, so that pipelined requests wait their turn. NIO then takes the
/// socket's read interest out of epoll and puts it back once the response is out: two
/// `epoll_ctl` calls per request, which nginx does not make. This handler, placed below it, asks
/// for the read itself while exactly one request is outstanding, complete, with nothing after
/// it. Once anything more arrives (a pipelined request), it stops asking, so the pipeline
/// handler's hold-back bounds what is buffered as before.
///
/// With the socket read, a client that closes its connection while its request is answered is
/// noticed at once, and the exchange ends as a client disconnect, as nginx and Envoy end it.
final class ReadAheadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Request ends passed up minus response ends passed down.
    private var outstanding = 0
    /// A request has begun (head or body passed up) without its end.
    private var inRequest = false

    /// Whether this handler should keep the read going: the one request in flight was read
    /// whole, and nothing followed it.
    private var readsAhead: Bool { outstanding == 1 && !inRequest }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head, .body: inRequest = true
        case .end:
            inRequest = false
            outstanding += 1
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if readsAhead { context.read() }
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { outstanding -= 1 }
        context.write(data, promise: promise)
    }
}
