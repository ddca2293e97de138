import NIOCore
import NIOHTTP1

/// The in-process side of ``ProxyHandler``: a lease whose worker is a ``LocalUpstream`` (a
/// loaded model instance). The body is collected (bounded by ``maxLocalBodyBytes``), the request
/// is handed over, and the answer comes back to this connection's event loop. The lease is
/// released when the answer is written, or when the exchange ends another way.
extension ProxyHandler {
    /// The largest request body the gateway collects for an in-process worker.
    static let maxLocalBodyBytes = 64 << 20

    func beginLocal(_ local: any LocalUpstream) {
        phase = .local
        localBody = []
        if exchange.localRequest == nil, let head = exchange.upstreamHead {
            var fields: [HeaderField] = []
            fields.reserveCapacity(head.headers.count)
            for (name, value) in head.headers { fields.append(HeaderField(name: name, value: value)) }
            exchange.localRequest = LocalRequest(method: head.method.rawValue, uri: head.uri, headers: fields, body: [])
        }
        if exchange.expectsContinue, !exchange.requestEndReceived, let context {
            // The client waits for this before sending the body (curl does above 1 KiB).
            exchange.expectsContinue = false
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .continue))), promise: nil)
        }
        // An answer given on the spot can end this exchange and start the next pipelined one,
        // whose parts then queue here: the phase is checked before a part is taken.
        while phase == .local, let part = pending.popFirst() {
            collectLocal(part)
        }
        updateReads()
    }

    func collectLocal(_ part: HTTPServerRequestPart) {
        switch part {
        case .head:
            preconditionFailure("request heads are never buffered")
        case .body(let body):
            guard localBody.count + body.readableBytes <= exchange.localBodyLimit else {
                localBody = []
                fail(with: .bodyTooLarge(limit: exchange.localBodyLimit))
                return
            }
            if localBody.isEmpty, let length = exchange.contentLength, length <= exchange.localBodyLimit {
                localBody.reserveCapacity(length)
            }
            body.withUnsafeReadableBytes { localBody.append(contentsOf: $0) }
        case .end:
            dispatchLocal()
        }
    }

    /// Starts an exchange with a ``GatewayMount``: no route, no policy, no resolver.
    func beginMounted(_ mount: GatewayMount, head: HTTPRequestHead, info: RequestHeadInfo) {
        exchange.service = mount.host
        exchange.mounted = true
        exchange.localBodyLimit = mount.maxBodyBytes
        exchange.expectsContinue = info.expectsContinue && exchange.version == .http1_1
        if let length = info.contentLength, length > mount.maxBodyBytes {
            exchange.keepAlive = false
            respond(with: .bodyTooLarge(limit: mount.maxBodyBytes))
            return
        }
        exchange.localRequest = LocalRequest(
            method: head.method.rawValue, uri: head.uri,
            headers: ProxyHeaders.mountFields(from: head, info: info, telemetry: exchange.telemetry),
            body: [])
        armTimeout(Self.mountTimeout)
        lease = UpstreamLease(revision: RevisionID(namespace: "", name: mount.host), port: 0, workerID: 0, local: mount.upstream)
        beginLocal(mount.upstream)
    }

    /// Bound on an in-process host's answer.
    static let mountTimeout: Duration = .seconds(30)

    /// Hands the complete request to the in-process worker.
    private func dispatchLocal() {
        guard let context, let local = lease?.local, var request = exchange.localRequest else { return }
        exchange.localRequest = nil
        request.body = localBody
        localBody = []
        exchange.upstreamHead = nil
        if exchange.log != nil { exchange.log?.upstreamSentNanoseconds = NIODeadline.now().uptimeNanoseconds }
        let generation = self.generation
        let eventLoop = context.eventLoop
        let handler = NIOLoopBound(self, eventLoop: eventLoop)
        local.handle(request) { response in
            if eventLoop.inEventLoop {
                handler.value.localResponded(response, generation: generation)
            } else {
                eventLoop.execute { handler.value.localResponded(response, generation: generation) }
            }
        }
    }

    /// Writes the in-process worker's answer, unless the exchange ended meanwhile.
    private func localResponded(_ response: LocalResponse, generation: UInt64) {
        guard generation == self.generation, phase == .local, let context else { return }
        cancelTimeout()
        releaseLease(.responded(status: response.status))
        if exchange.log != nil { exchange.log?.upstreamHeadNanoseconds = NIODeadline.now().uptimeNanoseconds }
        let keepAlive = exchange.keepAlive
        let head = ProxyHeaders.localResponseHead(
            response, version: exchange.version, keepAlive: keepAlive, requestID: exchange.telemetry?.requestID)
        exchange.responseHeadSent = true
        exchange.responseCode = response.status
        exchange.responseBytes = response.body.count
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if !response.body.isEmpty {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
        }
        endResponse(nil, closing: !keepAlive)
    }
}
