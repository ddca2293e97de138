import NIOCore
import Synchronization

/// The counters a ``RoutePolicy`` needs across requests and event loops: the token bucket of its
/// rate limit and the in-flight and pending counts of its connection-pool limits.
///
/// Route tables are rebuilt often (every reconcile pass), so the gateway carries a service's
/// runtime over to the next table while its limits stay the same (see
/// ``RouteTable/inheritingRuntime(from:)``); changed limits start from a full bucket.
final class RouteRuntime: Sendable {
    let rateLimit: LocalRateLimit?
    let limits: ConnectionPoolLimits
    private let bucket: Mutex<TokenBucket?>
    private let inFlight = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)

    init(rateLimit: LocalRateLimit?, limits: ConnectionPoolLimits, now: NIODeadline = .now()) {
        self.rateLimit = rateLimit
        self.limits = limits
        self.bucket = Mutex(rateLimit.map { TokenBucket(limit: $0, now: now) })
    }

    /// Takes a token; on refusal returns how long until the next fill (for `Retry-After`).
    func takeToken(now: NIODeadline) -> Duration? {
        guard rateLimit != nil else { return nil }
        return bucket.withLock { $0?.take(now: now) ?? nil }
    }

    /// Counts a request towards `maxConnections`; false when the limit is reached.
    func enterInFlight() -> Bool { Self.enter(inFlight, limit: limits.maxConnections) }
    /// Ends a request counted by ``enterInFlight()``.
    func leaveInFlight() { inFlight.subtract(1, ordering: .relaxed) }
    /// Counts a request waiting for a worker towards `http1MaxPendingRequests`.
    func enterPending() -> Bool { Self.enter(pending, limit: limits.maxPendingRequests) }
    /// Ends a wait counted by ``enterPending()``.
    func leavePending() { pending.subtract(1, ordering: .relaxed) }

    private static func enter(_ counter: borrowing Atomic<Int>, limit: Int?) -> Bool {
        guard let limit else { return true }
        let now = counter.add(1, ordering: .relaxed).newValue
        if now > limit {
            counter.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }
}

/// Envoy's token bucket: starts full; every whole `fillInterval` since the last fill adds
/// `tokensPerFill`, capped at `maxTokens`.
struct TokenBucket: Sendable {
    let limit: LocalRateLimit
    private(set) var tokens: Int
    private var lastFill: NIODeadline

    init(limit: LocalRateLimit, now: NIODeadline) {
        self.limit = limit
        self.tokens = limit.maxTokens
        self.lastFill = now
    }

    /// Takes one token: `nil` when granted, else the wait until the next fill.
    mutating func take(now: NIODeadline) -> Duration? {
        let interval = Int64(limit.fillInterval.components.seconds) * 1_000_000_000
            + limit.fillInterval.components.attoseconds / 1_000_000_000
        let elapsed = now.uptimeNanoseconds >= lastFill.uptimeNanoseconds
            ? Int64(now.uptimeNanoseconds - lastFill.uptimeNanoseconds) : 0
        let fills = elapsed / interval
        if fills > 0 {
            tokens = Int(min(Int64(limit.maxTokens), Int64(tokens) + fills * Int64(limit.tokensPerFill)))
            lastFill = NIODeadline.uptimeNanoseconds(lastFill.uptimeNanoseconds + UInt64(fills * interval))
        }
        if tokens > 0 {
            tokens -= 1
            return nil
        }
        return .nanoseconds(interval - (elapsed - fills * interval))
    }
}
