import NIOCore
import NIOHTTP1

/// NIO's HTTP/1.1 response decoder for a pooled worker connection, refusing every byte the worker
/// sends outside the response to a request of the gateway.
///
/// A keep-alive connection carries one exchange after another. Bytes a worker sends behind a
/// response's end, or while its connection sits idle in the pool, would be parsed as the start
/// of the next response, so a partial head (`HTTP/1.1 200 OK\r\nX-Injected: 1\r\nSet-Cookie: a`)
/// would put its status and headers into the answer to whichever client the connection serves
/// next. A whole extra message reaches ``UpstreamHandler`` without an exchange and closes the
/// connection; this decoder catches the partial ones:
///
/// * input while no request is outstanding is an error;
/// * when a response ends inside a read, the rest of that read must be empty: no bytes left in
///   the buffer (a header the parser holds on to), and the parser not inside a new message (a
///   status line it consumed), which the parser's end-of-input check tells exactly.
///
/// Either error closes the connection (``UpstreamHandler/errorCaught(context:error:)``) before
/// it can go back to the pool or, while idle, leaves the pool. The request side is observed
/// as NIO's decoder observes it (for the bodies of `HEAD` responses).
final class WorkerResponseDecoder: WriteObservingByteToMessageDecoder {
    typealias InboundOut = HTTPClientResponsePart
    typealias OutboundIn = HTTPClientRequestPart

    /// The worker sent bytes outside a response.
    struct StrayBytes: Error, CustomStringConvertible {
        var description: String { "the worker sent bytes outside a response" }
    }

    private let decoder: HTTPResponseDecoder
    /// A request head went out and its response has not ended.
    private(set) var awaitingResponse = false

    init(leftOverBytesStrategy: RemoveAfterUpgradeStrategy) {
        decoder = HTTPResponseDecoder(leftOverBytesStrategy: leftOverBytesStrategy)
    }

    /// Told by ``UpstreamHandler`` when a final response's end passes (not a 101's: the bytes
    /// behind a protocol switch belong to the tunnel).
    func responseEnded() {
        awaitingResponse = false
    }

    func write(data: HTTPClientRequestPart) {
        if case .head = data { awaitingResponse = true }
        decoder.write(data: data)
    }

    func decoderAdded(context: ChannelHandlerContext) {
        decoder.decoderAdded(context: context)
    }

    func decoderRemoved(context: ChannelHandlerContext) {
        decoder.decoderRemoved(context: context)
    }

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard awaitingResponse else { throw StrayBytes() }
        let state = try decoder.decode(context: context, buffer: &buffer)
        // Still awaiting unless the response ended in this call: a request written while the end
        // was delivered reaches `write(data:)` only after it (the handler holds writes back
        // while it decodes).
        if !awaitingResponse {
            guard buffer.readableBytes == 0 else { throw StrayBytes() }
            // At the end of a response the parser is between messages; if it consumed the start
            // of another one, an end of input here is an error. Nothing else changes.
            do {
                _ = try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: true)
            } catch {
                throw StrayBytes()
            }
        }
        return state
    }

    func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decoder.decodeLast(context: context, buffer: &buffer, seenEOF: seenEOF)
    }
}
