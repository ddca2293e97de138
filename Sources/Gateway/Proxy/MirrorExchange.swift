import NIOCore
import NIOHTTP1

/// One mirrored copy of a request (Istio `mirror`): leased, connected and sent beside the
/// primary exchange on the same event loop, its response read and thrown away.
///
/// Best effort by construction: the primary never waits for it. Parts that arrive before the
/// mirror worker is connected are held up to ``RetryPolicy/maxReplayBytes``; more than that, a
/// mirror connection that cannot take writes, or the mirror target's timeout, ends the copy
/// (the connection is closed and the lease given back). The exchange keeps itself alive until it
/// finishes, since the worker connection refers to its delegate weakly.
final class MirrorExchange: UpstreamHandlerDelegate {
    private let resolver: any UpstreamResolver
    private let pool: UpstreamConnectionPool
    private var lease: UpstreamLease?
    private var connection: UpstreamHandler?
    private var held: [HTTPClientRequestPart] = []
    private var heldBytes = 0
    private var requestEnded = false
    private var finished = false
    private var status = 0
    private var keepAlive = false
    private var deadline: Scheduled<Void>?
    private var acquireTask: Task<Void, Never>?
    /// `self` until the exchange finishes.
    private var retainer: MirrorExchange?

    private init(resolver: any UpstreamResolver, pool: UpstreamConnectionPool, head: HTTPRequestHead, holdsHead: Bool) {
        self.resolver = resolver
        self.pool = pool
        self.held = [.head(head)]
        self.holdsHead = holdsHead
    }

    /// A chunked request's head goes out with its first body part, as the primary's does, so
    /// a malformed first chunk reaches neither worker.
    private var holdsHead: Bool

    /// Starts a copy of a request whose head is `head` (already rewritten for the mirror).
    /// Feed it the request's body parts and end with ``send(_:)``.
    static func start(
        head: HTTPRequestHead, revision: RevisionID, timeout: Duration, resolver: any UpstreamResolver,
        pool: UpstreamConnectionPool, eventLoop: any EventLoop, holdsHead: Bool = false
    ) -> MirrorExchange {
        let mirror = MirrorExchange(resolver: resolver, pool: pool, head: head, holdsHead: holdsHead)
        mirror.retainer = mirror
        mirror.deadline = eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(timeout)) { [mirror] in
            mirror.finish(.timedOut)
        }
        if let lease = resolver.tryAcquire(revision) {
            mirror.leased(lease)
        } else {
            let promise = eventLoop.makePromise(of: UpstreamLease.self)
            mirror.acquireTask = promise.completeWithTask { try await resolver.acquire(revision, timeout: timeout) }
            promise.futureResult.assumeIsolated().whenComplete { [mirror] result in
                mirror.acquireTask = nil
                switch result {
                case .success(let lease):
                    if mirror.finished {
                        resolver.release(lease, outcome: .completed)
                    } else {
                        mirror.leased(lease)
                    }
                case .failure:
                    mirror.finish(.completed)
                }
            }
        }
        return mirror
    }

    /// Copies a request part (the head comes from ``start``; a held head goes out with the
    /// first part).
    func send(_ part: HTTPServerRequestPart) {
        guard !finished else { return }
        let clientPart: HTTPClientRequestPart
        switch part {
        case .head: return
        case .body(let body):
            heldBytes += body.readableBytes
            clientPart = .body(.byteBuffer(body))
        case .end(let trailers):
            requestEnded = true
            clientPart = .end(trailers)
        }
        guard let connection else {
            if heldBytes > RetryPolicy.maxReplayBytes {
                finish(.completed)
            } else {
                held.append(clientPart)
            }
            return
        }
        guard connection.isWritable else {
            finish(.completed)  // never slow the primary down for a copy
            return
        }
        if holdsHead {
            holdsHead = false
            for part in held { connection.send(part) }
            held = []
        }
        connection.send(clientPart)
        connection.flush()
    }

    /// Ends the copy at once.
    func cancel() {
        finish(.completed)
    }

    private func leased(_ lease: UpstreamLease) {
        self.lease = lease
        if let connection = pool.checkout(port: lease.port) {
            attach(connection)
            return
        }
        pool.connect(port: lease.port) { [self] result in
            switch result {
            case .success(let connection):
                if finished {
                    pool.checkin(connection)
                } else {
                    attach(connection)
                }
            case .failure:
                finish(.connectFailed)
            }
        }
    }

    private func attach(_ connection: UpstreamHandler) {
        guard connection.isActive else {
            finish(.connectFailed)
            return
        }
        self.connection = connection
        connection.delegate = self
        connection.requestCount += 1
        // A held head waits in `held` until the first body part arrives (`send`).
        if holdsHead && held.count == 1 { return }
        holdsHead = false
        for part in held { connection.send(part) }
        held = []
        connection.flush()
    }

    private func finish(_ outcome: UpstreamOutcome) {
        guard !finished else { return }
        finished = true
        deadline?.cancel()
        deadline = nil
        acquireTask?.cancel()
        acquireTask = nil
        if let connection {
            self.connection = nil
            connection.delegate = nil
            connection.close()
        }
        if let lease {
            self.lease = nil
            resolver.release(lease, outcome: outcome)
        }
        retainer = nil
    }

    // MARK: UpstreamHandlerDelegate

    func upstreamReceived(_ part: HTTPClientResponsePart) {
        switch part {
        case .head(let head):
            if head.status.code >= 200 {
                status = Int(head.status.code)
                keepAlive = head.isKeepAlive
            }
        case .body:
            break
        case .end:
            guard let connection, requestEnded, keepAlive else {
                finish(.responded(status: status))
                return
            }
            // A clean exchange: the connection can serve the next request.
            self.connection = nil
            connection.delegate = nil
            pool.checkin(connection)
            finish(.responded(status: status))
        }
    }

    func upstreamReadComplete() {}

    func upstreamWritabilityChanged() {}

    func upstreamClosed() {
        connection = nil
        finish(status == 0 ? .connectFailed : .responded(status: status))
    }
}
