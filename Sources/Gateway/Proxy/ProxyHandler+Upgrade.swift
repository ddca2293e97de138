import Logging
import NIOCore
import NIOHTTP1

/// WebSocket pass-through in ``ProxyHandler``: an HTTP/1.1 `GET` with `Connection: Upgrade` and
/// `Upgrade: websocket` goes to the worker with its upgrade headers, on a fresh worker
/// connection, never retried or mirrored. A worker that answers `101 Switching Protocols` gets
/// the 101 passed to the client, and then both connections drop their HTTP handlers for a pair
/// of ``TunnelHandler``s that copy bytes until either side closes or no byte has moved for
/// ``GatewayConfiguration/webSocketIdleTimeout``. The worker's lease is held until then (the
/// worker is busy with the connection, as Knative's queue-proxy counts it). Any other answer
/// is an ordinary response.
///
/// NIO's request decoder reads nothing after an upgrade request, so such a connection ends with
/// its exchange unless it becomes a tunnel (for other upgrades too, such as `h2c`, which the
/// gateway does not perform: the request is proxied without its upgrade headers).
extension ProxyHandler {
    /// Notes an HTTP/1.x upgrade request (called when its head has an `Upgrade` header).
    func noteUpgrade(_ head: HTTPRequestHead, info: RequestHeadInfo) {
        guard head.version.major == 1, let upgrade = info.upgrade,
              head.headers[canonicalForm: "connection"].contains(where: { $0.equalsIgnoringASCIICase("upgrade") })
        else { return }
        exchange.keepAlive = false
        let websocket = upgrade.split(separator: ",").contains { $0.trimmingASCIIWhitespace().equalsIgnoringASCIICase("websocket") }
        if websocket, head.method == .GET, head.version.minor >= 1 {
            exchange.upgrade = upgrade
        }
    }

    /// Puts the upgrade headers back on the worker's request head and rules out retries and
    /// mirroring (an upgrade happens once, with one worker).
    func prepareUpgrade(_ head: inout HTTPRequestHead) {
        guard let upgrade = exchange.upgrade else { return }
        exchange.retriesLeft = 0
        exchange.mirror?.cancel()
        exchange.mirror = nil
        head.headers.add(name: "connection", value: "upgrade")
        head.headers.add(name: "upgrade", value: upgrade)
    }

    /// The worker answered 101; the switch happens at the end of that response.
    func switchingProtocols(_ head: HTTPResponseHead) {
        guard exchange.upgrade != nil else {
            // A 101 nobody asked for: the worker broke the protocol.
            releaseLease(.responded(status: 101))
            fail(with: .upstreamClosed)
            return
        }
        cancelAttemptTimer()
        exchange.responseHeadReceived = true
        exchange.switchingHead = head
        if exchange.log != nil { exchange.log?.upstreamHeadNanoseconds = NIODeadline.now().uptimeNanoseconds }
    }

    /// Sends the 101 to the client and turns both connections into a tunnel.
    func beginTunnel() {
        guard let context, let connection = upstream, let head = exchange.switchingHead, let upgrade = exchange.upgrade else { return }
        upstream = nil
        connection.delegate = nil
        cancelTimeout()
        cancelAttemptTimer()
        var response = Self.switchingProtocolsHead(from: head, upgrade: upgrade, requestID: exchange.telemetry?.requestID)
        if !exchange.rule.responseHeaders.isEmpty { Self.apply(exchange.rule.responseHeaders, to: &response.headers) }
        exchange.responseHeadSent = true
        exchange.responseCode = 101
        context.write(wrapOutboundOut(.head(response)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        // Like Envoy, the upgraded request is counted and logged once, when the tunnel closes,
        // with its whole duration and the bytes that went through it.
        let tunnelled = endCount()
        let flags = completedFlags
        // The worker stays leased while the tunnel is open.
        let lease = self.lease
        self.lease = nil
        let resolver = environment.resolver
        let lifetime = TunnelHandler.Lifetime { [self] fromClient, fromWorker in
            if let lease { resolver.release(lease, outcome: .responded(status: 101)) }
            guard var ended = tunnelled else { return }
            ended.requestBytes += fromClient
            ended.responseBytes += fromWorker
            record(ended, flags: flags)
        }
        phase = .closed
        let downstreamEnd = TunnelHandler(lifetime: lifetime, side: .client)
        let upstreamEnd = TunnelHandler(lifetime: lifetime, side: .worker)
        do {
            try connection.replace(with: upstreamEnd)
            try replaceHTTPHandlers(context: context, with: downstreamEnd)
        } catch {
            environment.logger.debug("websocket tunnel setup failed", metadata: ["error": "\(error)"])
            connection.close()
            context.close(promise: nil)
            lifetime.end()
            return
        }
        TunnelHandler.connect(downstreamEnd, upstreamEnd)
    }

    /// Replaces this connection's HTTP/1.1 handlers (see `configureHTTP1Connection`) and this
    /// handler with the idle timer of the tunnel and `tunnel`.
    private func replaceHTTPHandlers(context: ChannelHandlerContext, with tunnel: TunnelHandler) throws {
        let pipeline = context.pipeline.syncOperations
        var old: [any RemovableChannelHandler] = []
        if let timer = try? pipeline.handler(type: RequestHeadTimer.self) { old.append(timer) }
        if let idle = try? pipeline.handler(type: IdleStateHandler.self) { old.append(idle) }
        old.append(try pipeline.handler(type: HTTPResponseEncoder.self))
        old.append(try pipeline.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self))
        if let serial = try? pipeline.handler(type: HTTPServerPipelineHandler.self) { old.append(serial) }
        if let readAhead = try? pipeline.handler(type: ReadAheadHandler.self) { old.append(readAhead) }
        try pipeline.addHandler(IdleStateHandler(allTimeout: TimeAmount(environment.webSocketIdleTimeout)))
        try pipeline.addHandler(tunnel)
        for handler in old { pipeline.removeHandler(handler, promise: nil) }
        pipeline.removeHandler(context: context, promise: nil)
    }

    /// The 101 for the client: the worker's headers without hop-by-hop ones, the upgrade
    /// headers, and the gateway's request id.
    static func switchingProtocolsHead(from head: HTTPResponseHead, upgrade: String, requestID: String?) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 3)
        for (name, value) in head.headers {
            switch ProxyHeaders.role(of: name) {
            case .hopByHop: continue
            case .requestID where requestID != nil: continue
            default: headers.add(name: name, value: value)
            }
        }
        headers.add(name: "connection", value: "upgrade")
        headers.add(name: "upgrade", value: head.headers.first(name: "upgrade") ?? upgrade)
        if let requestID { headers.add(name: "x-request-id", value: requestID) }
        return HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
    }
}
