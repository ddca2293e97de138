import Logging
import NIOCore
import NIOHTTP1

/// The worker side of ``ProxyHandler``: lease, connection, response streaming and the ways an
/// exchange can end. Every path releases the lease exactly once through ``releaseLease(_:)``.
extension ProxyHandler {
    // MARK: Lease

    /// Waits for the resolver off the event loop, then continues on it.
    func acquireSlowly(_ target: RouteTarget) {
        guard let context else { return }
        let generation = self.generation
        let attempt = exchange.retryCount
        let resolver = environment.resolver
        let promise = context.eventLoop.makePromise(of: UpstreamLease.self)
        acquireTask = promise.completeWithTask {
            try await resolver.acquire(target.revision, timeout: target.timeout)
        }
        promise.futureResult.assumeIsolated().whenComplete { [self] result in
            acquireCompleted(result, generation: generation, attempt: attempt)
        }
    }

    func acquireCompleted(_ result: Result<UpstreamLease, any Error>, generation: UInt64, attempt: Int) {
        guard generation == self.generation, attempt == exchange.retryCount, phase == .acquiring else {
            // The request (or this attempt) ended while we waited: give the worker back.
            if case .success(let lease) = result { environment.resolver.release(lease, outcome: .completed) }
            return
        }
        acquireTask = nil
        if exchange.countedPending {
            exchange.countedPending = false
            exchange.runtime?.leavePending()
        }
        switch result {
        case .success(let lease):
            leaseAcquired(lease)
        case .failure(let error as UpstreamUnavailable):
            fail(with: .unavailable(error))
        case .failure(let error):
            fail(with: .unavailable(UpstreamUnavailable(code: "ActivationFailed", message: "\(error)")))
        }
    }

    func leaseAcquired(_ lease: UpstreamLease) {
        self.lease = lease
        if let local = lease.local {
            beginLocal(local)
            return
        }
        exchange.upstreamPort = lease.port
        phase = .connecting
        // An upgrade takes a fresh connection: it never comes back, and must not be resent.
        if exchange.upgrade == nil, let connection = loop.pool.checkout(port: lease.port) {
            attach(connection, reused: true)
        } else {
            connect(port: lease.port)
        }
    }

    /// Gives the lease back (no-op when none is held).
    func releaseLease(_ outcome: UpstreamOutcome) {
        guard let lease else { return }
        self.lease = nil
        if !exchange.mounted { environment.resolver.release(lease, outcome: outcome) }
    }

    // MARK: Worker connection

    func connect(port: Int) {
        let generation = self.generation
        let attempt = exchange.retryCount
        loop.pool.connect(port: port) { [self] result in
            guard generation == self.generation, attempt == exchange.retryCount, phase == .connecting else {
                // Nobody needs it any more; a fresh, unused connection is worth keeping.
                if case .success(let connection) = result { loop.pool.checkin(connection) }
                return
            }
            switch result {
            case .success(let connection):
                attach(connection, reused: false)
            case .failure(let error):
                environment.logger.debug("worker connection failed", metadata: ["port": "\(port)", "error": "\(error)"])
                connectFailed()
            }
        }
    }

    /// Starts forwarding on `connection`: the head, the held parts, then live parts (a chunked
    /// request's head goes with its first part, see `Exchange.holdsHeadForFirstPart`).
    func attach(_ connection: UpstreamHandler, reused: Bool) {
        guard connection.isActive else {
            connectFailed()
            return
        }
        upstream = connection
        connection.requestCount += 1
        connection.delegate = self
        exchange.reusedConnection = reused
        phase = .forwarding
        connection.setReadsPaused(!(context?.channel.isWritable ?? false))
        if exchange.expectsContinue, !exchange.requestEndReceived, let context {
            exchange.expectsContinue = false
            let interim = HTTPResponseHead(version: .http1_1, status: .continue)
            context.writeAndFlush(wrapOutboundOut(.head(interim)), promise: nil)
        }
        if exchange.holdsHeadForFirstPart && !exchange.requestEndForwarded {
            exchange.headHeld = exchange.upstreamHead != nil  // `forward` sends it with the first part
        } else if let head = exchange.upstreamHead {
            if exchange.log != nil { exchange.log?.upstreamSentNanoseconds = NIODeadline.now().uptimeNanoseconds }
            connection.send(.head(head))
        }
        while let part = pending.popFirst() {
            forward(part)
        }
        // May report the connection closed re-entrantly (keep-alive race); the handlers below
        // cope with whatever phase that leaves.
        connection.flush()
        updateReads()
    }

    /// The attempt could not reach its worker: retry elsewhere when the rule allows, else 502.
    func connectFailed() {
        if canRetry, exchange.rule.retry.retriesConnectFailure {
            retryAttempt(after: .connectFailed)
            return
        }
        releaseLease(.connectFailed)
        fail(with: .upstreamConnectFailed)
    }

    /// RFC 9110 §9.2.2 idempotent methods: safe to send again after a keep-alive race.
    static func isIdempotent(_ method: HTTPMethod) -> Bool {
        switch method {
        case .GET, .HEAD, .OPTIONS, .TRACE, .PUT, .DELETE: true
        default: false
        }
    }

    /// Detaches and closes the worker connection, if any (it is mid-exchange, so not reusable).
    func dropUpstream() {
        guard let connection = upstream else { return }
        upstream = nil
        connection.delegate = nil
        connection.close()
    }

    // MARK: Timeout

    /// Bounds the exchange by `duration`.
    ///
    /// The exchange gets a deadline; a scheduled callback (no promise or closure) checks it.
    /// Ending an exchange only clears the deadline, and a check that comes early re-arms itself
    /// for the current one, so back-to-back requests on a connection schedule nothing: NIO's
    /// timer heap searches linearly to cancel, which cost a few microseconds per request on a
    /// busy loop. The check is cancelled for real when the connection ends.
    func armTimeout(_ duration: Duration) {
        guard let context else { return }
        let due = NIODeadline.now() + TimeAmount(duration)
        timeoutDeadline = due
        if timeoutCheck != nil && timeoutCheckAt <= due { return }
        timeoutCheck?.cancel()
        scheduleTimeoutCheck(context, at: due)
    }

    /// The exchange ended: no deadline until the next one.
    func cancelTimeout() {
        timeoutDeadline = nil
    }

    /// Drops the deadline and its scheduled check (the connection is ending).
    func stopTimeout() {
        timeoutDeadline = nil
        timeoutCheck?.cancel()
        timeoutCheck = nil
    }

    private func scheduleTimeoutCheck(_ context: ChannelHandlerContext, at due: NIODeadline) {
        timeoutCheck = try? context.eventLoop.assumeIsolated().scheduleCallback(at: due, handler: self)
        timeoutCheckAt = due
    }

    func handleScheduledCallback(eventLoop: some EventLoop) {
        timeoutCheck = nil
        guard let due = timeoutDeadline else { return }
        if NIODeadline.now() < due {
            if let context { scheduleTimeoutCheck(context, at: due) }
            return
        }
        timeoutDeadline = nil
        switch phase {
        case .acquiring, .connecting, .forwarding, .local: break
        case .idle, .discarding, .closed: return
        }
        if exchange.responseHeadSent {
            // Mid-response: the only honest signal left is closing the connection.
            finishTelemetry(.upstreamRequestTimeout)
            abandonExchange()
            phase = .closed
            context?.close(promise: nil)
        } else {
            acquireTask?.cancel()
            acquireTask = nil
            releaseLease(.timedOut)
            fail(with: .gatewayTimeout(exchange.rule.timeout ?? exchange.target?.timeout ?? .zero))
        }
    }

    // MARK: Endings

    /// Fails the request before any response byte was sent: 5xx from the gateway.
    func fail(with error: ProxyError) {
        cancelTimeout()
        cancelAttemptTimer()
        dropUpstream()
        releaseLease(.completed)
        respond(with: error)
    }

    /// Drops everything the exchange holds (client gone or connection failing).
    func abandonExchange() {
        stopTimeout()
        cancelAttemptTimer()
        exchange.mirror?.cancel()
        exchange.mirror = nil
        acquireTask?.cancel()
        acquireTask = nil
        dropUpstream()
        releaseLease(.completed)
        pending.removeAll(keepingCapacity: true)  // without keeping it, a new buffer is allocated
    }

    /// The worker finished its response: complete it downstream, recycle the worker connection.
    func responseEnded(_ trailers: HTTPHeaders?) {
        guard context != nil else { return }
        let connection = upstream
        upstream = nil
        cancelTimeout()
        releaseLease(.responded(status: exchange.responseCode))
        if let connection {
            connection.delegate = nil
            let spent = exchange.maxRequestsPerConnection.map { connection.requestCount >= $0 } ?? false
            if exchange.upstreamKeepAlive && exchange.requestEndForwarded && !spent && exchange.upgrade == nil {
                loop.pool.checkin(connection)
            } else {
                connection.close()
            }
        }
        // A response that ended before its request did leaves unread body bytes: close.
        endResponse(trailers, closing: !exchange.keepAlive || !exchange.requestEndReceived, flags: completedFlags)
    }

    /// Counts the exchange with `flags` and writes the response's end; then the connection takes
    /// the next request, or closes when `closing`.
    func endResponse(_ trailers: HTTPHeaders?, closing: Bool, flags: ResponseFlags = .none) {
        guard let context else { return }
        finishTelemetry(flags)
        // Set before writing `.end`: the pipeline handler may deliver the next request inside it.
        phase = closing ? .closed : .idle
        let end = wrapOutboundOut(.end(trailers))
        if closing {
            let channel = context.channel
            context.writeAndFlush(end).whenComplete { _ in channel.close(promise: nil) }
        } else {
            context.writeAndFlush(end, promise: nil)
        }
        updateReads()
    }
}

extension ProxyHandler: NIOScheduledCallbackHandler {}

extension ProxyHandler: UpstreamHandlerDelegate {
    func upstreamReceived(_ part: HTTPClientResponsePart) {
        guard phase == .forwarding, let context else { return }
        switch part {
        case .head(let head):
            let status = Int(head.status.code)
            if status == 101 {
                switchingProtocols(head)
                return
            }
            if status >= 200, canRetry, exchange.rule.retry.retries(status: status) {
                retryAttempt(after: .responded(status: status))
                return
            }
            cancelAttemptTimer()
            exchange.responseHeadReceived = true
            exchange.upstreamKeepAlive = head.isKeepAlive
            exchange.upstreamHead = nil
            exchange.replay = []
            exchange.replayEnd = nil
            if exchange.log != nil { exchange.log?.upstreamHeadNanoseconds = NIODeadline.now().uptimeNanoseconds }
            var keepAlive = exchange.keepAlive
            var response = ProxyHeaders.downstreamResponseHead(
                from: head, version: exchange.version, keepAlive: &keepAlive, requestID: exchange.telemetry?.requestID)
            if !exchange.rule.responseHeaders.isEmpty { Self.apply(exchange.rule.responseHeaders, to: &response.headers) }
            if let cookie = exchange.setCookie { response.headers.add(name: "set-cookie", value: cookie) }
            exchange.keepAlive = keepAlive
            exchange.responseHeadSent = true
            exchange.responseCode = Int(head.status.code)
            context.write(wrapOutboundOut(.head(response)), promise: nil)
        case .body(let body):
            exchange.responseBytes &+= body.readableBytes
            context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        case .end(let trailers):
            if exchange.switchingHead != nil {
                beginTunnel()
            } else {
                responseEnded(trailers)
            }
        }
    }

    func upstreamReadComplete() {
        context?.flush()
    }

    func upstreamWritabilityChanged() {
        updateReads()
    }

    func upstreamClosed() {
        guard phase == .forwarding, upstream != nil else { return }
        upstream = nil
        guard exchange.responseHeadReceived else {
            if exchange.headHeld, exchange.heldHeadReconnects < 3, let lease {
                exchange.heldHeadReconnects += 1
                // The worker closed a connection before it got anything (an idle or header
                // timeout while a chunked request's head waited for its first chunk): connect
                // again, without spending a retry.
                phase = .connecting
                connect(port: lease.port)
                return
            }
            if exchange.reusedConnection, !exchange.bodyBytesForwarded, !exchange.retried,
               exchange.upstreamHead.map({ Self.isIdempotent($0.method) }) ?? false, let lease {
                // Keep-alive race: the worker closed the idle connection as we reused it.
                // Nothing of the body was sent, so send the request again on a fresh connection,
                // but only an idempotent one (as Go's http.Transport does): the worker may have
                // read the head and acted on it before closing.
                exchange.retried = true
                exchange.replayEnd = nil  // only the end was forwarded; it goes again from `pending`
                if exchange.requestEndForwarded {
                    exchange.requestEndForwarded = false
                    pending.prepend(.end(nil))
                }
                phase = .connecting
                connect(port: lease.port)
                return
            }
            // A held head (see `Exchange.holdsHeadForFirstPart`) is the only way nothing of
            // the request reached this connection.
            if canRetry, exchange.rule.retry.retriesReset(requestSent: !exchange.headHeld) {
                retryAttempt(after: .connectFailed)
                return
            }
            releaseLease(.connectFailed)
            fail(with: .upstreamClosed)
            return
        }
        // Closed mid-response: the client can only learn it from the connection closing.
        finishTelemetry(.upstreamConnectionTermination)
        abandonExchange()
        phase = .closed
        context?.close(promise: nil)
    }
}
