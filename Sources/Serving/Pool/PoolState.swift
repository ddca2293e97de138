import Gateway

/// A request waiting for a worker.
struct Waiter {
    var id: UInt64
    var continuation: CheckedContinuation<UpstreamLease, any Error>
    var timeoutTask: Task<Void, Never>?
    var enqueuedAt: ContinuousClock.Instant
}

/// One worker as the pool sees it: a process, or a loaded model instance.
struct WorkerSlot {
    var machine: WorkerStateMachine
    var port: Int
    var pid: Int32?
    /// The loaded model instance of a model revision's worker.
    var model: ModelWorker?
    /// When the worker was frozen (warm tier).
    var frozenSince: ContinuousClock.Instant?

    /// Whether there is something to stop: a process, or a loaded model.
    var isStarted: Bool { pid != nil || model != nil }
}

/// A failure worth reporting in the revision's status.
struct PoolFailure: Hashable, Sendable {
    var reason: String
    var message: String
}

/// Work for the pool to carry out after it let go of its lock.
enum PoolAction {
    case spawn(workerID: UInt64)
    /// Stops a worker: SIGTERM to its process (`pid`), or unloading its model (`pid` nil).
    case terminate(workerID: UInt64, pid: Int32?)
    case kill(pid: Int32)
    case freeze(pid: Int32)
    case thaw(pid: Int32, startedWaiting: ContinuousClock.Instant)
    case resume(Waiter, UpstreamLease)
    case fail(Waiter, UpstreamUnavailable)
    case retry(after: Duration)
}

/// How a lease picks among ready workers (Knative's activator policies).
enum BalancingPolicy: Sendable {
    /// The oldest worker with a free slot: packs small `containerConcurrency` limits tightly.
    case firstAvailable
    /// The worker with the fewest requests in flight.
    case leastLoaded

    init(containerConcurrency: Int) {
        self = (1...3).contains(containerConcurrency) ? .firstAvailable : .leastLoaded
    }
}

/// The pool's state and its decisions, kept free of I/O so that the rules (hand leases to waiters
/// in order, start workers up to the desired count, drain the extra ones, back off after
/// failures, give up on a revision that never became ready) are plain code under one lock.
struct PoolState {
    let revision: RevisionID
    let concurrencyLimit: Int
    var policy: BalancingPolicy
    /// At most this many workers (1 when the template fixes the port).
    var workerLimit = Int.max
    /// On the lease and release paths a slot is read, changed and stored back rather than
    /// changed in place (`workers[id]!.machine…`): the in-place form goes through the
    /// dictionary's `_modify` accessor, whose coroutine frame, for a value this size, is
    /// allocated on the heap each time.
    var workers: [UInt64: WorkerSlot] = [:]
    var waiters: [Waiter] = []
    /// Workers wanted, as the autoscaler decided (raised to 1 while requests wait).
    var desired: Int
    /// Held at zero (`outpost service stop`): requests are refused, no worker starts.
    var held = false
    /// Unloaded through the model repository API: at zero, whatever the autoscaler wants, until
    /// the next request arrives (which then waits for a worker as at any scale from zero).
    var parked = false
    /// Keep the last worker frozen instead of stopping it at scale zero.
    var freezeAtZero = false
    /// Load measurement for the autoscaler.
    var meter: ConcurrencyMeter
    /// When the current wait for a first worker began (for the activation-wait metric).
    var coldStartBegan: ContinuousClock.Instant?
    var everReady: Bool
    var failedPermanently: Bool
    var failure: PoolFailure?
    var consecutiveFailures = 0
    var retryAfter: ContinuousClock.Instant?
    var closed = false
    var nextWorkerID: UInt64 = 1
    /// Load balancing and outlier detection from the service's traffic policy.
    var workerPolicy = WorkerPolicy()
    /// Outlier-detection state per worker (see PoolState+Policies.swift).
    var outliers: [UInt64: OutlierRecord] = [:]
    /// The worker `ROUND_ROBIN` chose last.
    var roundRobinCursor: UInt64 = 0

    /// Failures of a revision that never became ready before it is marked failed.
    static let startAttempts = 3

    var activeWorkers: Int { workers.values.count { $0.machine.isActive } }
    var readyWorkers: Int { workers.values.count { $0.machine.state == .ready } }
    var inFlight: Int { workers.values.reduce(0) { $0 + $1.machine.inFlight } }
    /// In flight plus waiting: the concurrency the autoscaler sees.
    var observedConcurrency: Int { inFlight + waiters.count }

    /// Leases a ready worker with capacity, by the balancing policy (and the traffic policy's
    /// load balancer, outlier ejections and `hint`).
    mutating func lease(now: ContinuousClock.Instant, hint: LeaseHint = LeaseHint()) -> UpstreamLease? {
        let best = needsPolicyChoice(hint) ? chooseWorker(hint: hint, now: now) : defaultChoice()
        guard let id = best, var slot = workers[id] else { return nil }
        let leased = slot.machine.lease()
        workers[id] = slot
        guard leased else { return nil }
        meter.set(level: observedConcurrency, now: now)
        return UpstreamLease(revision: revision, port: slot.port, workerID: id, local: slot.model)
    }

    /// Knative's activator choice over every worker with capacity.
    private func defaultChoice() -> UInt64? {
        var best: UInt64?
        var bestLoad = Int.max
        for (id, slot) in workers where slot.machine.hasCapacity {
            switch policy {
            case .firstAvailable:
                if best == nil || id < best! { best = id }
            case .leastLoaded:
                if slot.machine.inFlight < bestLoad || (slot.machine.inFlight == bestLoad && id < best!) {
                    best = id
                    bestLoad = slot.machine.inFlight
                }
            }
        }
        return best
    }

    /// Hands free capacity to waiters in arrival order, then brings the active workers to the
    /// desired count: thaws a frozen worker first, starts new ones, drains the extra ones.
    mutating func dispatch(now: ContinuousClock.Instant) -> [PoolAction] {
        var actions: [PoolAction] = []
        while !waiters.isEmpty, let lease = lease(now: now) {
            let waiter = waiters.removeFirst()
            meter.set(level: observedConcurrency, now: now)
            actions.append(.resume(waiter, lease))
        }
        if !waiters.isEmpty {
            parked = false
            desired = max(desired, 1)  // the poke: a request at zero starts a worker at once
            if activeWorkers == 0, coldStartBegan == nil { coldStartBegan = now }
        }
        if held || parked {
            // A stopped service keeps no worker, frozen ones included, whatever their retention.
            return actions + drainExtra(keeping: 0, now: now) + expireFrozen(now: now, retention: .zero)
        }
        guard !closed, !failedPermanently else { return actions + drainExtra(keeping: 0, now: now) }
        let target = min(desired, workerLimit)
        if target > activeWorkers, let frozen = workers.first(where: { $0.value.machine.state == .frozen })?.key,
           workers[frozen]!.machine.thaw() == .thaw, let pid = workers[frozen]!.pid {
            actions.append(.thaw(pid: pid, startedWaiting: coldStartBegan ?? now))
            coldStartBegan = nil
            while !waiters.isEmpty, let lease = lease(now: now) {
                let waiter = waiters.removeFirst()
                meter.set(level: observedConcurrency, now: now)
                actions.append(.resume(waiter, lease))
            }
        }
        if target < activeWorkers { return actions + drainExtra(keeping: target, now: now) }
        if let retryAfter, now < retryAfter { return actions }
        retryAfter = nil
        while target > activeWorkers {
            let id = nextWorkerID
            nextWorkerID += 1
            workers[id] = WorkerSlot(machine: WorkerStateMachine(concurrencyLimit: concurrencyLimit), port: 0, pid: nil)
            actions.append(.spawn(workerID: id))
        }
        return actions
    }

    /// Drains active workers beyond `count`: starting ones first, then the least busy. The
    /// last worker of a warm-tier revision is frozen instead when it is idle.
    mutating func drainExtra(keeping count: Int, now: ContinuousClock.Instant) -> [PoolAction] {
        var actions: [PoolAction] = []
        let active = workers.filter { $0.value.machine.isActive }
        let order = active.sorted { a, b in
            let aStarting = a.value.machine.state == .starting
            let bStarting = b.value.machine.state == .starting
            if aStarting != bStarting { return aStarting }
            if a.value.machine.inFlight != b.value.machine.inFlight { return a.value.machine.inFlight < b.value.machine.inFlight }
            return a.key > b.key
        }
        var excess = active.count - count
        for (id, _) in order where excess > 0 {
            excess -= 1
            let isLast = count == 0 && excess == 0
            if isLast, freezeAtZero, !held, !closed, let pid = workers[id]!.pid, workers[id]!.machine.freeze() == .freeze {
                workers[id]!.frozenSince = now
                actions.append(.freeze(pid: pid))
                continue
            }
            if workers[id]!.machine.drain() == .terminate, workers[id]!.isStarted {
                actions.append(.terminate(workerID: id, pid: workers[id]!.pid))
            }
        }
        return actions
    }

    /// Records a failed start or a crash and decides what follows: a retry after a backoff,
    /// failing the waiting requests, or (for a revision that never became ready) giving up.
    mutating func recordFailure(_ failure: PoolFailure, fatal: Bool, now: ContinuousClock.Instant) -> [PoolAction] {
        self.failure = failure
        consecutiveFailures += 1
        var actions: [PoolAction] = []
        let givingUp = !everReady && (fatal || consecutiveFailures >= Self.startAttempts)
        if givingUp || consecutiveFailures >= Self.startAttempts {
            let error = UpstreamUnavailable(code: failure.reason, message: "revision \(revision.name) has no healthy worker: \(failure.message)")
            actions += waiters.map { PoolAction.fail($0, error) }
            waiters.removeAll()
        }
        if givingUp {
            failedPermanently = true
            desired = 0
            return actions
        }
        let backoff = Self.backoff(afterFailures: consecutiveFailures)
        retryAfter = now + backoff
        actions.append(.retry(after: backoff))
        return actions
    }

    /// 100 ms doubling per consecutive failure, at most 30 s.
    static func backoff(afterFailures failures: Int) -> Duration {
        let exponent = min(max(failures - 1, 0), 9)
        return min(.milliseconds(100 * (1 << exponent)), .seconds(30))
    }

    /// Stops frozen workers that have been frozen for `retention`.
    mutating func expireFrozen(now: ContinuousClock.Instant, retention: Duration) -> [PoolAction] {
        var actions: [PoolAction] = []
        for (id, slot) in workers where slot.machine.state == .frozen {
            guard let since = slot.frozenSince, now - since >= retention, let pid = slot.pid else { continue }
            if workers[id]!.machine.drain() == .terminate { actions.append(.terminate(workerID: id, pid: pid)) }
        }
        return actions
    }

    /// Stops taking requests on every worker (frozen ones too); each stops once idle.
    mutating func drainAll() -> [PoolAction] {
        var actions: [PoolAction] = []
        for id in Array(workers.keys) {
            if workers[id]!.machine.drain() == .terminate, workers[id]!.isStarted {
                actions.append(.terminate(workerID: id, pid: workers[id]!.pid))
            }
        }
        return actions
    }
}
