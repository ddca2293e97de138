import Logging
import NIOCore
import NIOHTTP1
import NIOSSL

/// Proxies the requests of one downstream HTTP/1.1 connection to workers, on the connection's
/// event loop.
///
/// For each request head: route by `Host`, pick a target, lease a worker (sync fast path, async
/// slow path), take a pooled keep-alive connection to it (or open one) and stream both bodies
/// part by part. Request parts that arrive before the worker is connected are held while reads
/// are paused; afterwards reads follow the worker connection's writability, and the worker
/// connection's reads follow this connection's writability. ``HTTPServerPipelineHandler`` in
/// front of this handler serialises pipelined requests, so there is at most one exchange.
final class ProxyHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    /// Where the current request is.
    enum Phase {
        /// Waiting for a request head.
        case idle
        /// Waiting for the resolver to lease a worker.
        case acquiring
        /// Holding a lease, opening a worker connection.
        case connecting
        /// Request and response stream between client and worker.
        case forwarding
        /// Collecting the body for an in-process worker, then waiting for its answer.
        case local
        /// Answered with an error; dropping the rest of a bodiless request until its end.
        case discarding
        /// The connection is closing.
        case closed
    }

    /// Facts about the current request, reset for every head.
    struct Exchange {
        var target: RouteTarget?
        /// The head for the worker; kept until a response starts, for the keep-alive retry.
        var upstreamHead: HTTPRequestHead?
        var version: HTTPVersion = .http1_1
        var keepAlive = true
        var requestHasBody = false
        var expectsContinue = false
        /// A chunked request's head waits for the first body part (or the end): llhttp checks a
        /// chunk's size line before it hands over its data, so a malformed first chunk is a 400
        /// that never reaches the worker, not a head the worker has already seen.
        var holdsHeadForFirstPart = false
        /// The head is attached to a worker connection but not yet sent (see above).
        var headHeld = false
        /// Worker connections closed (and replaced) while the head was held.
        var heldHeadReconnects = 0
        var requestEndReceived = false
        var requestEndForwarded = false
        var bodyBytesForwarded = false
        var reusedConnection = false
        var retried = false
        var responseHeadReceived = false
        var responseHeadSent = false
        var upstreamKeepAlive = false
        // Telemetry (see ProxyHandler+Telemetry.swift).
        /// Set when the head arrives; `finishTelemetry` counts the exchange and clears it (once).
        var awaitingCount = false
        var telemetry: RequestTelemetry?
        /// `NIODeadline` uptime when the head arrived.
        var startNanoseconds: UInt64 = 0
        /// The matched route (strings shared with the route table).
        var namespace: String?
        var service: String?
        var requestBytes = 0
        var responseBytes = 0
        /// Status sent to the client; 0 until a response head is written.
        var responseCode = 0
        var upstreamPort: Int?
        /// Access-log facts, gathered only when the access log is on.
        var log: AccessLogFacts?
        // Traffic policy (see ProxyHandler+Policy.swift and ProxyHandler+Retry.swift).
        /// The policy rule the request matched.
        var rule = RouteRule.default
        /// The service's shared limits, when its policy has any.
        var runtime: RouteRuntime?
        /// Counted towards `maxConnections` / `http1MaxPendingRequests` (given back once).
        var countedInFlight = false
        var countedPending = false
        /// Queued for a `maxConnections` slot: the route's wait id and the exchange's generation.
        var slotWait: (id: UInt64, generation: UInt64)?
        /// The first attempt is waiting for that slot.
        var attemptAwaitsSlot = false
        /// The route serves a model: the gateway's own errors use KServe's `{"error": "…"}`.
        var servesModel = false
        /// `connectionPool.http.maxRequestsPerConnection` of the service.
        var maxRequestsPerConnection: Int?
        /// The consistent-hash key of the request, if the policy hashes.
        var hash: UInt64?
        /// A consistent-hash cookie issued to the client with the response.
        var setCookie: String?
        /// Retries still allowed, and retries done so far.
        var retriesLeft = 0
        var retryCount = 0
        /// Body parts forwarded so far, kept to send them again on a retry (while `replayBytes`
        /// stays within ``RetryPolicy/maxReplayBytes``); the forwarded end is kept apart, so a
        /// bodiless request allocates nothing for it.
        var replay: [ByteBuffer] = []
        var replayBytes = 0
        var replayEnd: HTTPHeaders??
        /// The worker of the last failed attempt, avoided by the next one.
        var failedWorkerID: UInt64?
        /// A fault delay was injected.
        var delayInjected = false
        /// The copy of this request going to the mirror service, while it takes parts.
        var mirror: MirrorExchange?
        /// The request goes to a ``GatewayMount`` (no resolver lease to give back).
        var mounted = false
        /// The largest body collected for an in-process worker.
        var localBodyLimit = ProxyHandler.maxLocalBodyBytes
        /// The request for an in-process worker (its body is collected in `localBody`).
        var localRequest: LocalRequest?
        /// The request's valid `Content-Length`, if it sent one.
        var contentLength: Int?
        /// The `Upgrade` value of a WebSocket upgrade, and the worker's 101 once it came
        /// (see ProxyHandler+Upgrade.swift).
        var upgrade: String?
        var switchingHead: HTTPResponseHead?
    }

    let environment: ProxyEnvironment
    let loop: LoopContext
    var context: ChannelHandlerContext?
    var client = ClientAddress(nil)
    var phase = Phase.idle
    var exchange = Exchange()
    /// Bumped for every request so late callbacks (timer, acquire, connect) recognise they are stale.
    var generation: UInt64 = 0
    var lease: UpstreamLease?
    var upstream: UpstreamHandler?
    /// Request parts received before the worker connection was ready.
    var pending = CircularBuffer<HTTPServerRequestPart>(initialCapacity: 4)
    /// When the running exchange times out (``RouteTarget/timeout``); nil between exchanges.
    var timeoutDeadline: NIODeadline?
    /// The scheduled check for `timeoutDeadline`, due at `timeoutCheckAt` (never later than the
    /// deadline). It may outlive the exchange it was set for: see ``armTimeout(_:)``.
    var timeoutCheck: NIOScheduledCallback?
    var timeoutCheckAt = NIODeadline.distantFuture
    /// The per-try timeout of the current attempt, or a pending delay (fault or backoff).
    var attemptTimer: Scheduled<Void>?
    var acquireTask: Task<Void, Never>?
    var readPending = false
    /// The request body collected for an in-process worker.
    var localBody: [UInt8] = []
    /// TLS facts of this connection, read at its first request (after the handshake).
    var peer: PeerInfo?

    /// Bounds the arrival of each request head; told when a head arrives and an exchange ends.
    let headTimer: RequestHeadTimer?

    init(environment: ProxyEnvironment, loop: LoopContext, headTimer: RequestHeadTimer? = nil) {
        self.environment = environment
        self.loop = loop
        self.headTimer = headTimer
    }

    // MARK: Channel events

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if context.channel.isActive { client = ClientAddress(context.channel.remoteAddress) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        finishTelemetry(.downstreamConnectionTermination)
        abandonExchange()
        phase = .closed
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        client = ClientAddress(context.channel.remoteAddress)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        finishTelemetry(.downstreamConnectionTermination)
        abandonExchange()
        phase = .closed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): receiveHead(head)
        case .body(let body): receiveBody(body)
        case .end(let trailers): receiveEnd(trailers)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream?.flush()
        context.fireChannelReadComplete()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream?.setReadsPaused(!context.channel.isWritable)
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent {
            // Only a connection between requests (or stuck in a request head) times out here;
            // a request in flight is bounded by its target's timeout.
            if idle == .read, phase == .idle {
                phase = .closed
                context.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            // I/O errors (connection reset, …): nobody to answer.
            finishTelemetry(.downstreamConnectionTermination)
            abandonExchange()
            phase = .closed
            context.close(promise: nil)
            return
        }
        let canAnswer: Bool
        switch phase {
        case .idle: canAnswer = true
        case .acquiring, .connecting, .forwarding, .local: canAnswer = !exchange.responseHeadSent
        case .discarding, .closed: canAnswer = false
        }
        if phase == .idle {
            exchange = Exchange()
            beginTelemetry(head: nil, info: nil)
        }
        abandonExchange()
        phase = .closed
        if canAnswer {
            writeError(.parserError(parserError, maxHeaderBytes: environment.maxHeaderBytes), closing: true)
        } else {
            finishTelemetry(.downstreamProtocolError)
            context.close(promise: nil)
        }
    }

    func read(context: ChannelHandlerContext) {
        if readsAllowed {
            context.read()
        } else {
            readPending = true
        }
    }

    // MARK: Request side

    func receiveHead(_ head: HTTPRequestHead) {
        if phase == .closed { return }  // a pipelined request after we decided to close
        var head = head
        if head.uri.utf8.first != UInt8(ascii: "/") {
            if let originForm = ProxyHeaders.originForm(of: head) {
                receiveHead(originForm)
                return
            }
        } else if let path = RequestPath.normalized(head.uri) {
            // Routing, policies and the worker all see the normalized path (Istio's BASE).
            head.uri = path
        }
        guard phase == .idle else {
            // HTTPServerPipelineHandler delivers one request at a time; anything else is a bug.
            environment.logger.error("gateway received a request head while busy", metadata: ["phase": "\(phase)"])
            finishTelemetry(.downstreamProtocolError)
            abandonExchange()
            phase = .closed
            context?.close(promise: nil)
            return
        }
        headTimer?.headArrived()
        generation &+= 1
        exchange = Exchange()
        exchange.version = head.version == .http1_0 ? .http1_0 : .http1_1
        // An HTTP/2 stream carries one exchange and ends with it; NIO's `isKeepAlive` is false for
        // its head only because keep-alive is an HTTP/1 notion. Taken as keep-alive, its answer
        // carries no `Connection: close` (which NIO's codec would strip again) and its channel is
        // not closed on top of the stream's own end. An answer that comes before the request's
        // end still closes (resets) the stream.
        exchange.keepAlive = head.version.major == 2 || head.isKeepAlive
        let info = RequestHeadInfo(head.headers)
        beginTelemetry(head: head, info: info)
        exchange.requestHasBody = info.hasBody
        exchange.contentLength = info.contentLength
        if info.upgrade != nil { noteUpgrade(head, info: info) }
        // RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding has faulty framing.
        if let problem = info.problem ?? (info.hasTransferEncoding && head.version == .http1_0 ? .invalidFraming : nil) {
            // A malformed head leaves the connection's framing in doubt: answer and close.
            exchange.keepAlive = false
            respond(with: problem)
            return
        }
        if let problem = ProxyHeaders.requestLineProblem(of: head, hasBody: info.hasBody) {
            // CONNECT leaves NIO's decoder reading nothing more (as after an upgrade): close.
            if head.method == .CONNECT { exchange.keepAlive = false }
            respond(with: problem)
            return
        }
        if head.headers.count > environment.maxHeaderCount {
            exchange.keepAlive = false
            respond(with: .tooManyHeaders(limit: environment.maxHeaderCount))
            return
        }
        // HTTP/1.1 heads are bounded by NIO's decoder; an HTTP/2 block up to the connection's
        // cap is decoded whole, so its size (RFC 9113 §6.5.2) is checked here.
        if head.version.major == 2, ProxyHeaders.headerListSize(head) > environment.maxHeaderBytes {
            respond(with: .headersTooLarge(limit: environment.maxHeaderBytes))
            return
        }
        if peer == nil { peer = connectionPeer() }
        let security = loop.security.current
        let host = info.host ?? ""
        if !environment.mounts.isEmpty, let mount = environment.mounts[RouteTable.normalize(host: host)] {
            guard admitPeer(mode: security.platformMode) else { return }
            beginMounted(mount, head: head, info: info)
            return
        }
        let table = loop.routes.current
        guard let route = table.route(forHost: host) else {
            guard admitPeer(mode: security.platformMode) else { return }
            if let mount = environment.addressMount, RouteTable.isAddressHost(host) {
                beginMounted(mount, head: head, info: info)
                return
            }
            respond(with: .routeNotFound(host: host, domain: table.domain))
            return
        }
        exchange.namespace = route.namespace
        exchange.service = route.service
        exchange.servesModel = !route.modelVersions.isEmpty
        var routePeer = peer ?? .plaintext
        guard authorize(head, host: host, route: route, security: security, peer: &routePeer) else { return }
        // `Knative-Serving-Tag` picks a tagged target; an unknown tag falls back to the split.
        let tagged = route.tags.isEmpty ? nil : head.headers.first(name: "knative-serving-tag").flatMap { route.tags[$0] }
        // A model version in the path picks its revision (a canary's, say) over the split.
        let versioned = route.modelVersions.isEmpty ? nil : route.modelVersionTarget(path: head.uri[...])
        guard let target = tagged ?? versioned ?? route.pick(roll: environment.roll.next(using: &loop.random)) else {
            respond(with: .noReadyRevision(route))
            return
        }
        exchange.target = target
        exchange.expectsContinue = info.expectsContinue && exchange.version == .http1_1
        exchange.holdsHeadForFirstPart = info.isChunked
        var upstreamHead = ProxyHeaders.upstreamRequestHead(
            from: head, info: info, client: client, telemetry: exchange.telemetry, peer: routePeer)
        guard admit(head, route: route, table: table, upstreamHead: &upstreamHead) else { return }
        if exchange.upgrade != nil { prepareUpgrade(&upstreamHead) }
        exchange.upstreamHead = upstreamHead
        phase = .acquiring
        if let delay = exchange.rule.fault?.delay, roll(percent: delay.percent) {
            // Istio's fixed delay comes before the route (and its timeout) starts.
            exchange.delayInjected = true
            delayAttempt(by: delay.duration) { [self] in beginForwarding(target) }
        } else {
            beginForwarding(target)
        }
    }

    /// Arms the request timeout and starts the first attempt.
    func beginForwarding(_ target: RouteTarget) {
        armTimeout(exchange.rule.timeout ?? target.timeout)
        startAttempt()
    }

    func receiveBody(_ body: ByteBuffer) {
        exchange.requestBytes &+= body.readableBytes
        exchange.mirror?.send(.body(body))
        switch phase {
        case .acquiring, .connecting: pending.append(.body(body))
        case .forwarding: forward(.body(body))
        case .local: collectLocal(.body(body))
        case .idle, .discarding, .closed: break
        }
    }

    func receiveEnd(_ trailers: HTTPHeaders?) {
        exchange.requestEndReceived = true
        exchange.mirror?.send(.end(trailers))
        exchange.mirror = nil
        switch phase {
        case .acquiring, .connecting:
            pending.append(.end(trailers))
        case .forwarding:
            forward(.end(trailers))
            upstream?.flush()
        case .local:
            collectLocal(.end(trailers))
        case .discarding:
            phase = .idle
        case .idle, .closed:
            break
        }
        updateReads()
    }

    /// Sends one request part to the attached worker connection (without flushing).
    func forward(_ part: HTTPServerRequestPart) {
        guard let upstream else { return }
        if exchange.headHeld, let head = exchange.upstreamHead {
            exchange.headHeld = false
            if exchange.log != nil { exchange.log?.upstreamSentNanoseconds = NIODeadline.now().uptimeNanoseconds }
            upstream.send(.head(head))
        }
        switch part {
        case .head:
            preconditionFailure("request heads are never buffered")
        case .body(let body):
            if body.readableBytes > 0 { exchange.bodyBytesForwarded = true }
            keepForReplay(body)
            upstream.send(.body(.byteBuffer(body)))
        case .end(let trailers):
            exchange.requestEndForwarded = true
            if exchange.retriesLeft > 0 { exchange.replayEnd = .some(trailers) }
            upstream.send(.end(trailers))
        }
    }

    /// The connection's TLS peer: plaintext, or TLS with the client certificate's SPIFFE ID.
    func connectionPeer() -> PeerInfo {
        guard let context, let handler = try? context.pipeline.syncOperations.handler(type: NIOSSLServerHandler.self) else {
            return .plaintext
        }
        return PeerInfo.from(handler, gatewayIdentity: environment.tls.current.identity)
    }

    // MARK: Reads (back-pressure)

    /// Whether this connection may read now. Before the worker is connected it must not (the
    /// held parts stay bounded); while forwarding it follows the worker connection's
    /// writability. Once the request has ended, further reads belong to the next request and
    /// HTTPServerPipelineHandler holds them back itself.
    var readsAllowed: Bool {
        switch phase {
        case .idle, .discarding, .local: return true
        case .closed: return false
        case .acquiring, .connecting: return exchange.requestEndReceived
        case .forwarding: return exchange.requestEndReceived || (upstream?.isWritable ?? false)
        }
    }

    /// Issues a read that was held back, if reads are allowed again.
    func updateReads() {
        guard readPending, readsAllowed, let context else { return }
        readPending = false
        context.read()
    }
}
