import Gateway

/// A request waiting for a worker.
struct Waiter {
    var id: UInt64
    var continuation: CheckedContinuation<UpstreamLease, any Error>
    var timeoutTask: Task<Void, Never>?
}

/// One worker process as the pool sees it.
struct WorkerSlot {
    var machine: WorkerStateMachine
    var port: Int
    var pid: Int32?
}

/// A failure worth reporting in the revision's status.
struct PoolFailure: Hashable, Sendable {
    var reason: String
    var message: String
}

/// Work for the pool to carry out after it let go of its lock.
enum PoolAction {
    case spawn(workerID: UInt64)
    case terminate(workerID: UInt64, pid: Int32)
    case kill(pid: Int32)
    case resume(Waiter, UpstreamLease)
    case fail(Waiter, UpstreamUnavailable)
    case retry(after: Duration)
}

/// The pool's state and its decisions, kept free of I/O so that the rules (hand leases to waiters
/// in order, start a worker only when one is wanted and none is coming, back off after failures,
/// give up on a revision that never became ready) are plain code under one lock.
struct PoolState {
    let revision: RevisionID
    let concurrencyLimit: Int
    var workers: [UInt64: WorkerSlot] = [:]
    var waiters: [Waiter] = []
    /// Workers wanted: 1 while the revision is active, 0 at scale zero.
    var desired: Int
    var lastActivity: ContinuousClock.Instant
    var everReady: Bool
    var failedPermanently: Bool
    var failure: PoolFailure?
    var consecutiveFailures = 0
    var retryAfter: ContinuousClock.Instant?
    var closed = false
    var nextWorkerID: UInt64 = 1

    /// Failures of a revision that never became ready before it is marked failed.
    static let startAttempts = 3

    var activeWorkers: Int { workers.values.count { $0.machine.isActive } }
    var readyWorkers: Int { workers.values.count { $0.machine.state == .ready } }
    var inFlight: Int { workers.values.reduce(0) { $0 + $1.machine.inFlight } }

    /// Leases the least-loaded ready worker with capacity.
    mutating func lease(now: ContinuousClock.Instant) -> UpstreamLease? {
        var best: UInt64?
        var bestLoad = Int.max
        for (id, slot) in workers where slot.machine.hasCapacity && slot.machine.inFlight < bestLoad {
            best = id
            bestLoad = slot.machine.inFlight
        }
        guard let id = best, workers[id]!.machine.lease() else { return nil }
        lastActivity = now
        return UpstreamLease(revision: revision, port: workers[id]!.port, workerID: id)
    }

    /// Hands free capacity to waiters in arrival order, then starts a worker if one is wanted
    /// and none is starting or serving.
    mutating func dispatch(now: ContinuousClock.Instant) -> [PoolAction] {
        var actions: [PoolAction] = []
        while !waiters.isEmpty, let lease = lease(now: now) {
            actions.append(.resume(waiters.removeFirst(), lease))
        }
        if !waiters.isEmpty { desired = max(desired, 1) }
        guard !closed, !failedPermanently, desired > activeWorkers else { return actions }
        if let retryAfter, now < retryAfter { return actions }
        retryAfter = nil
        let id = nextWorkerID
        nextWorkerID += 1
        workers[id] = WorkerSlot(machine: WorkerStateMachine(concurrencyLimit: concurrencyLimit), port: 0, pid: nil)
        actions.append(.spawn(workerID: id))
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

    /// Drains every worker when the revision has been idle for `idlePeriod`.
    mutating func scaleToZeroIfIdle(now: ContinuousClock.Instant, idlePeriod: Duration) -> [PoolAction] {
        guard desired > 0 || activeWorkers > 0, waiters.isEmpty, inFlight == 0,
              now - lastActivity >= idlePeriod else { return [] }
        desired = 0
        return drainAll()
    }

    /// Stops taking requests on every worker; each stops once idle.
    mutating func drainAll() -> [PoolAction] {
        var actions: [PoolAction] = []
        for id in Array(workers.keys) {
            if workers[id]!.machine.drain() == .terminate, let pid = workers[id]!.pid {
                actions.append(.terminate(workerID: id, pid: pid))
            }
        }
        return actions
    }
}
