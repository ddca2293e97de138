import NIOCore
import NIOHTTP1

/// Answers the gateway gives itself (errors, redirects, 429s): a JSON body, and the connection
/// kept or closed as the request's framing allows.
extension ProxyHandler {
    /// Answers the current request with `error` (no response may have started). The connection
    /// stays open only when the client wants keep-alive and no request body is still coming.
    func respond(with error: ProxyError) {
        let closing = !exchange.keepAlive || (exchange.requestHasBody && !exchange.requestEndReceived)
        if closing {
            phase = .closed
        } else {
            phase = exchange.requestEndReceived ? .idle : .discarding
        }
        pending.removeAll(keepingCapacity: true)  // without keeping it, a new buffer is allocated
        writeError(error, closing: closing)
        updateReads()
    }

    /// Writes a complete JSON error response, then closes the connection if `closing`.
    func writeError(_ error: ProxyError, closing: Bool) {
        guard let context else { return }
        exchange.responseHeadSent = true
        exchange.responseCode = Int(error.status.code)
        let body = exchange.servesModel ? error.inferenceProtocolBody : error.body
        exchange.responseBytes = body.readableBytes
        // Counted before writing: writing `.end` may deliver the next request re-entrantly.
        finishTelemetry(error.responseFlags)
        var headers = HTTPHeaders()
        headers.reserveCapacity(4)
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "content-length", value: String(body.readableBytes))
        if let requestID = exchange.telemetry?.requestID { headers.add(name: "x-request-id", value: requestID) }
        for (name, value) in error.extraHeaders { headers.add(name: name, value: value) }
        if closing {
            headers.add(name: "connection", value: "close")
        } else if exchange.version == .http1_0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        let head = HTTPResponseHead(version: exchange.version, status: error.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        if closing {
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
