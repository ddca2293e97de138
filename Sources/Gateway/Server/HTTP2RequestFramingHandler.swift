import NIOCore
import NIOHTTP1

/// Sits between an HTTP/2 stream's HTTP/1 codec and its ``ProxyHandler``: an HTTP/2 request
/// needs no `Content-Length` to carry a body, but the HTTP/1.1 request to the worker does (or
/// `Transfer-Encoding: chunked`), and NIO's encoder adds chunked framing only for methods that
/// usually have a body. So a head without `Content-Length` waits for the stream's next part: a
/// body part makes it chunked, the end of the stream passes it on as it is (no body). Either way
/// the handler then leaves; a stream carries one request.
final class HTTP2RequestFramingHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private var held: HTTPRequestHead?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            if head.headers.contains(name: "content-length") || head.headers.contains(name: "transfer-encoding") {
                context.fireChannelRead(data)
                leave(context)
            } else {
                held = head
            }
        case .body:
            if var head = held {
                held = nil
                head.headers.add(name: "transfer-encoding", value: "chunked")
                context.fireChannelRead(wrapInboundOut(.head(head)))
                context.fireChannelRead(data)
                leave(context)
            } else {
                context.fireChannelRead(data)
            }
        case .end:
            if let head = held {
                held = nil
                context.fireChannelRead(wrapInboundOut(.head(head)))
                context.fireChannelRead(data)
                leave(context)
            } else {
                context.fireChannelRead(data)
            }
        }
    }

    private func leave(_ context: ChannelHandlerContext) {
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
