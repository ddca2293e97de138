import NIOCore
import NIOHTTP1

/// Attempts and retries of ``ProxyHandler`` (Istio `HTTPRetry`): each attempt leases a worker
/// (avoiding the one the last attempt failed on), optionally bounded by `perTryTimeout`; a failed
/// attempt that the rule's `retryOn` covers is given up (its worker connection closed, its lease
/// released with the failure so outlier detection sees it) and, after Envoy's jittered backoff,
/// a new attempt replays the head and the body parts kept so far.
extension ProxyHandler {
    /// Leases a worker for the next attempt: the fast path on the loop, else the resolver's
    /// bounded wait (counted against `http1MaxPendingRequests`).
    func startAttempt() {
        guard let target = exchange.target else { return }
        phase = .acquiring
        if exchange.slotWait != nil {
            exchange.attemptAwaitsSlot = true  // `slotGranted` starts it
            return
        }
        if let perTry = exchange.rule.retry.perTryTimeout { armPerTryTimeout(perTry) }
        let hint = LeaseHint(avoiding: exchange.failedWorkerID, hash: exchange.hash)
        if let lease = environment.resolver.tryAcquire(target.revision, hint: hint) {
            leaseAcquired(lease)
            return
        }
        if let runtime = exchange.runtime, !exchange.countedPending {
            guard runtime.enterPending() else {
                fail(with: .overflow("http.http1MaxPendingRequests"))
                return
            }
            exchange.countedPending = true
        }
        acquireSlowly(target)
    }

    /// Keeps a forwarded body part for a later attempt, while retries remain and the body is small.
    func keepForReplay(_ body: ByteBuffer) {
        guard exchange.retriesLeft > 0 else { return }
        exchange.replayBytes += body.readableBytes
        if exchange.replayBytes > RetryPolicy.maxReplayBytes {
            // Too large to keep: this request is not retried (Envoy's buffer-overflow rule).
            exchange.retriesLeft = 0
            exchange.replay = []
            exchange.replayEnd = nil
            return
        }
        exchange.replay.append(body)
    }

    /// Whether a failed attempt may be retried: retries left, and nothing sent to the client.
    var canRetry: Bool {
        exchange.retriesLeft > 0 && !exchange.responseHeadSent && exchange.upstreamHead != nil
    }

    /// Gives up the current attempt after `outcome` and schedules the next one.
    func retryAttempt(after outcome: UpstreamOutcome) {
        cancelAttemptTimer()
        dropUpstream()
        exchange.failedWorkerID = lease?.workerID
        releaseLease(outcome)
        exchange.retriesLeft -= 1
        exchange.retryCount += 1
        exchange.responseHeadReceived = false
        exchange.reusedConnection = false
        exchange.retried = false
        exchange.bodyBytesForwarded = false
        exchange.requestEndForwarded = false
        // What was forwarded goes again, ahead of anything that arrived meanwhile.
        if case .some(let trailers) = exchange.replayEnd { pending.prepend(.end(trailers)) }
        for body in exchange.replay.reversed() { pending.prepend(.body(body)) }
        exchange.replay = []
        exchange.replayBytes = 0
        exchange.replayEnd = nil
        phase = .acquiring
        let backoff = RetryPolicy.backoff(retry: exchange.retryCount, random: loop.random.next())
        delayAttempt(by: backoff) { [self] in startAttempt() }
    }

    /// The flags of an exchange the worker answered: `URX` when retries ran out on a failure
    /// they cover, `DI` when a fault delay was injected, else none.
    var completedFlags: ResponseFlags {
        if exchange.retryCount > 0, exchange.rule.retry.retries(status: exchange.responseCode) { return .upstreamRetryLimitExceeded }
        return exchange.delayInjected ? .delayInjected : .none
    }

    /// Bounds the current attempt until its response head arrives.
    func armPerTryTimeout(_ duration: Duration) {
        guard let context else { return }
        let generation = self.generation
        let attempt = exchange.retryCount
        attemptTimer = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(duration)) { [self] in
            guard generation == self.generation, attempt == exchange.retryCount, !exchange.responseHeadReceived else { return }
            switch phase {
            case .acquiring, .connecting, .forwarding: break
            case .idle, .discarding, .closed, .local: return  // an in-process model is bounded by the request timeout
            }
            attemptTimer = nil
            if canRetry, exchange.rule.retry.retriesPerTryTimeout {
                acquireTask?.cancel()
                acquireTask = nil
                retryAttempt(after: .timedOut)
            } else {
                acquireTask?.cancel()
                acquireTask = nil
                releaseLease(.timedOut)
                fail(with: .gatewayTimeout(duration))
            }
        }
    }

    /// Cancels the per-try timeout or a pending delay.
    func cancelAttemptTimer() {
        attemptTimer?.cancel()
        attemptTimer = nil
    }
}
