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
    /// Requests holding a `maxConnections` slot, and those queued for one (oldest first).
    private let slots = Mutex(SlotState())
    private let pending = Atomic<Int>(0)

    private struct SlotState {
        var inFlight = 0
        var waiters: [(id: UInt64, grant: @Sendable () -> Void)] = []
        var nextID: UInt64 = 0
    }

    /// The answer to ``requestSlot(grant:)``.
    enum SlotRequest: Equatable {
        /// The request holds a slot now.
        case granted
        /// The request is queued; `grant` runs (on the thread that frees a slot) when the slot
        /// passes to it. The id cancels the wait.
        case queued(UInt64)
        /// `http1MaxPendingRequests` requests wait already.
        case refused
    }

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

    /// Takes a `maxConnections` slot, or queues for one as Envoy's pending requests do (counted
    /// against `http1MaxPendingRequests`, which refuses beyond it). Slots pass to the oldest
    /// waiter as they free up.
    func requestSlot(grant: @escaping @Sendable () -> Void) -> SlotRequest {
        guard let limit = limits.maxConnections else { return .granted }
        return slots.withLock { state in
            if state.inFlight < limit {
                state.inFlight += 1
                return .granted
            }
            guard enterPending() else { return .refused }
            state.nextID &+= 1
            state.waiters.append((state.nextID, grant))
            return .queued(state.nextID)
        }
    }

    /// Leaves the queue; false when the slot was already handed to this waiter (its `grant`
    /// runs or has run, and the slot must be given back with ``leaveInFlight()``).
    func cancelSlotRequest(_ id: UInt64) -> Bool {
        let removed = slots.withLock { state -> Bool in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return false }
            state.waiters.remove(at: index)
            return true
        }
        if removed { leavePending() }
        return removed
    }

    /// Hands every queued request its slot: the route's limits changed and a new runtime counts
    /// from now on (the old slots drain as their requests end).
    func retire() {
        let waiting = slots.withLock { state -> [@Sendable () -> Void] in
            let grants = state.waiters.map(\.grant)
            state.inFlight += state.waiters.count
            state.waiters = []
            return grants
        }
        for grant in waiting {
            leavePending()
            grant()
        }
    }

    /// Ends a request that held a slot: the slot passes to the oldest waiter, if any.
    func leaveInFlight() {
        guard limits.maxConnections != nil else { return }
        let next = slots.withLock { state -> (@Sendable () -> Void)? in
            guard !state.waiters.isEmpty else {
                state.inFlight -= 1
                return nil
            }
            return state.waiters.removeFirst().grant
        }
        if let next {
            leavePending()
            next()
        }
    }
    /// Counts a request waiting for a worker towards `http1MaxPendingRequests`.
    func enterPending() -> Bool { Self.enter(pending, limit: limits.maxPendingRequests) }
    /// Ends a wait counted by ``enterPending()``.
    func leavePending() { pending.subtract(1, ordering: .relaxed) }

    private static func enter(_ counter: borrowing Atomic<Int>, limit: Int?) -> Bool {
        guard let limit else {
            counter.add(1, ordering: .relaxed)
            return true
        }
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
            // Saturates: a large `tokensPerFill` or a long idle spell would overflow.
            let (added, overflowAdd) = fills.multipliedReportingOverflow(by: Int64(limit.tokensPerFill))
            let (sum, overflowSum) = Int64(tokens).addingReportingOverflow(added)
            tokens = overflowAdd || overflowSum ? limit.maxTokens : Int(min(Int64(limit.maxTokens), sum))
            lastFill = NIODeadline.uptimeNanoseconds(lastFill.uptimeNanoseconds + UInt64(fills * interval))
        }
        if tokens > 0 {
            tokens -= 1
            return nil
        }
        return .nanoseconds(interval - (elapsed - fills * interval))
    }
}
