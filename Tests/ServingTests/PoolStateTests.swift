import Gateway
@testable import Serving
import Testing

@Suite struct PoolStateTests {
    let revision = RevisionID(namespace: "default", name: "hello-00001")
    let start = ContinuousClock.now

    func state(desired: Int = 0, everReady: Bool = true, concurrency: Int = 0) -> PoolState {
        PoolState(
            revision: revision, concurrencyLimit: concurrency, policy: BalancingPolicy(containerConcurrency: concurrency),
            desired: desired, meter: ConcurrencyMeter(windowSeconds: 60, now: start), everReady: everReady, failedPermanently: false)
    }

    func terminated(_ actions: [PoolAction]) -> [UInt64] {
        actions.compactMap { if case .terminate(let id, _) = $0 { id } else { nil } }
    }

    func spawnedIDs(_ actions: [PoolAction]) -> [UInt64] {
        actions.compactMap { if case .spawn(let id) = $0 { id } else { nil } }
    }

    /// Marks a spawned worker as started on a port and ready.
    func makeReady(_ state: inout PoolState, _ id: UInt64, port: Int = 9000) {
        state.workers[id]!.pid = 100 + Int32(id)
        state.workers[id]!.port = port
        _ = state.workers[id]!.machine.probeSucceeded()
    }

    @Test func newRevisionStartsExactlyOneWorker() {
        var pool = state(desired: 1, everReady: false)
        #expect(spawnedIDs(pool.dispatch(now: start)) == [1])
        #expect(spawnedIDs(pool.dispatch(now: start)).isEmpty, "one is already starting")
    }

    @Test func aWaitingRequestAtZeroStartsAWorkerAndGetsItWhenReady() async throws {
        var pool = state()
        #expect(spawnedIDs(pool.dispatch(now: start)).isEmpty, "nothing wanted at zero without requests")
        let lease: UpstreamLease = try await withCheckedThrowingContinuation { continuation in
            pool.waiters.append(Waiter(id: 1, continuation: continuation, timeoutTask: nil, enqueuedAt: start))
            let spawned = spawnedIDs(pool.dispatch(now: start))
            #expect(spawned == [1])
            #expect(pool.desired == 1)
            makeReady(&pool, 1, port: 9123)
            for action in pool.dispatch(now: start) {
                if case .resume(let waiter, let lease) = action { waiter.continuation.resume(returning: lease) }
            }
        }
        #expect(lease.port == 9123)
        #expect(pool.waiters.isEmpty)
        #expect(pool.inFlight == 1)
    }

    @Test func leasesGoToTheLeastLoadedReadyWorker() {
        var pool = state(desired: 1)
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1, port: 9001)
        pool.workers[2] = WorkerSlot(machine: WorkerStateMachine(concurrencyLimit: 0), port: 9002, pid: 7)
        _ = pool.workers[2]!.machine.probeSucceeded()
        let first = pool.lease(now: start)
        let second = pool.lease(now: start)
        #expect(Set([first?.port, second?.port]) == [9001, 9002])
    }

    @Test func revisionThatNeverBecomesReadyFailsAfterThreeAttempts() {
        var pool = state(desired: 1, everReady: false)
        let failure = PoolFailure(reason: "ExitCode", message: "worker exited with code 1 before becoming ready")
        var now = start
        for attempt in 1...2 {
            let actions = pool.recordFailure(failure, fatal: false, now: now)
            #expect(!pool.failedPermanently)
            guard case .retry(let delay) = actions.last else { Issue.record("no retry after attempt \(attempt)"); return }
            #expect(delay == PoolState.backoff(afterFailures: attempt))
            #expect(spawnedIDs(pool.dispatch(now: now)).isEmpty, "no restart during backoff")
            now = now + delay
        }
        _ = pool.recordFailure(failure, fatal: false, now: now)
        #expect(pool.failedPermanently)
        #expect(pool.desired == 0)
        #expect(spawnedIDs(pool.dispatch(now: now + .seconds(60))).isEmpty, "a failed revision is not restarted")
    }

    @Test func probeDeadlineFailsANewRevisionAtOnce() {
        var pool = state(desired: 1, everReady: false)
        _ = pool.recordFailure(PoolFailure(reason: "ProgressDeadlineExceeded", message: "x"), fatal: true, now: start)
        #expect(pool.failedPermanently)
    }

    @Test func aCrashOfAReadyRevisionRestartsAfterBackoff() {
        var pool = state(desired: 1)
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1)
        pool.workers.removeValue(forKey: 1)
        let actions = pool.recordFailure(PoolFailure(reason: "WorkerCrashed", message: "x"), fatal: true, now: start)
        #expect(!pool.failedPermanently, "a revision that once served is retried, not given up")
        guard case .retry(let delay) = actions.last else { Issue.record("expected a retry"); return }
        #expect(delay == .milliseconds(100))
        #expect(spawnedIDs(pool.dispatch(now: start + delay)) == [2])
    }

    @Test func backoffDoublesAndIsCapped() {
        #expect(PoolState.backoff(afterFailures: 1) == .milliseconds(100))
        #expect(PoolState.backoff(afterFailures: 2) == .milliseconds(200))
        #expect(PoolState.backoff(afterFailures: 4) == .milliseconds(800))
        #expect(PoolState.backoff(afterFailures: 50) == .seconds(30))
    }

    @Test func scalingUpStartsSeveralWorkersAndScalingDownDrainsTheIdleOnesFirst() {
        var pool = state(desired: 1)
        #expect(spawnedIDs(pool.dispatch(now: start)) == [1])
        makeReady(&pool, 1)
        pool.desired = 3
        #expect(spawnedIDs(pool.dispatch(now: start)) == [2, 3])
        makeReady(&pool, 2, port: 9002)
        makeReady(&pool, 3, port: 9003)
        // Worker 2 is busy; scaling to 1 drains the two idle ones.
        _ = pool.workers[2]!.machine.lease()
        pool.desired = 1
        #expect(Set(terminated(pool.dispatch(now: start))) == [1, 3])
        #expect(pool.activeWorkers == 1)
        #expect(pool.workers[2]!.machine.state == .ready)
    }

    @Test func scalingToZeroWaitsForInFlightRequests() {
        var pool = state(desired: 1)
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1)
        let lease = pool.lease(now: start)
        #expect(lease != nil)
        pool.desired = 0
        #expect(terminated(pool.dispatch(now: start)).isEmpty, "a busy worker drains first")
        #expect(pool.workers[1]!.machine.state == .draining)
        #expect(pool.lease(now: start) == nil, "a draining worker takes no requests")
        #expect(pool.workers[1]!.machine.release() == .terminate)
    }

    @Test func smallConcurrencyLimitsPackTheFirstAvailableWorker() {
        var pool = state(desired: 2, concurrency: 2)
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1, port: 9001)
        makeReady(&pool, 2, port: 9002)
        let ports = (0..<4).compactMap { _ in pool.lease(now: start)?.port }
        #expect(ports == [9001, 9001, 9002, 9002])
        #expect(pool.lease(now: start) == nil, "containerConcurrency is a hard limit")
    }

    @Test func warmTierFreezesTheLastWorkerAndThawsItOnDemand() async throws {
        var pool = state(desired: 1)
        pool.freezeAtZero = true
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1)
        pool.desired = 0
        let actions = pool.dispatch(now: start)
        guard case .freeze(let pid)? = actions.first else { Issue.record("expected a freeze, got \(actions)"); return }
        #expect(pid == 101)
        #expect(pool.workers[1]!.machine.state == .frozen)
        #expect(pool.activeWorkers == 0)
        // A request arrives: the frozen worker is thawed instead of starting a process.
        let lease: UpstreamLease = try await withCheckedThrowingContinuation { continuation in
            pool.waiters.append(Waiter(id: 1, continuation: continuation, timeoutTask: nil, enqueuedAt: start))
            let actions = pool.dispatch(now: start)
            #expect(spawnedIDs(actions).isEmpty)
            var thawed = false
            for action in actions {
                if case .thaw = action { thawed = true }
                if case .resume(let waiter, let lease) = action { waiter.continuation.resume(returning: lease) }
            }
            #expect(thawed)
        }
        #expect(lease.workerID == 1)
        // Frozen too long: it is stopped.
        let released = pool.workers[1]!.machine.release()
        #expect(released == .none)
        pool.desired = 0
        _ = pool.dispatch(now: start)
        #expect(terminated(pool.expireFrozen(now: start + .seconds(59), retention: .seconds(60))).isEmpty)
        #expect(terminated(pool.expireFrozen(now: start + .seconds(61), retention: .seconds(60))) == [1])
    }

    @Test(arguments: [true, false])
    func aStoppedOrUnloadedServiceKeepsNoFrozenWorker(held: Bool) {
        var pool = state(desired: 1)
        pool.freezeAtZero = true
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1)
        pool.desired = 0
        _ = pool.dispatch(now: start)
        #expect(pool.workers[1]!.machine.state == .frozen)
        if held { pool.held = true } else { pool.parked = true }
        #expect(terminated(pool.dispatch(now: start)) == [1], "the frozen worker outlived the stop")
    }

    @Test func heldPoolStartsNothing() {
        var pool = state(desired: 1)
        pool.held = true
        #expect(spawnedIDs(pool.dispatch(now: start)).isEmpty)
    }

    @Test func parkedPoolStaysAtZeroUntilARequestArrives() async throws {
        var pool = state(desired: 2)
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1, port: 9001)
        makeReady(&pool, 2, port: 9002)
        // The unload request itself is still in flight on worker 1 when the pool is parked.
        let lease = pool.lease(now: start)
        pool.parked = true
        let drained = pool.dispatch(now: start)
        #expect(terminated(drained).count == 1, "the idle worker stops at once: \(drained)")
        #expect(pool.activeWorkers == 0)
        #expect(pool.workers[lease!.workerID]!.machine.release() == .terminate, "the busy one stops when its answer is sent")
        // The autoscaler still wants workers (min-scale, recent traffic): nothing starts.
        pool.workers.removeAll()
        pool.desired = 1
        #expect(spawnedIDs(pool.dispatch(now: start)).isEmpty)
        // The next request ends the park and waits for a new worker.
        let next: UpstreamLease = try await withCheckedThrowingContinuation { continuation in
            pool.waiters.append(Waiter(id: 1, continuation: continuation, timeoutTask: nil, enqueuedAt: start))
            let spawned = spawnedIDs(pool.dispatch(now: start))
            #expect(spawned.count == 1)
            #expect(!pool.parked)
            makeReady(&pool, spawned[0], port: 9003)
            for action in pool.dispatch(now: start) {
                if case .resume(let waiter, let lease) = action { waiter.continuation.resume(returning: lease) }
            }
        }
        #expect(next.port == 9003)
    }
}
