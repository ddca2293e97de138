import Gateway
@testable import Serving
import Testing

@Suite struct PoolStateTests {
    let revision = RevisionID(namespace: "default", name: "hello-00001")
    let start = ContinuousClock.now

    func state(desired: Int = 0, everReady: Bool = true) -> PoolState {
        PoolState(revision: revision, concurrencyLimit: 0, desired: desired, lastActivity: start, everReady: everReady, failedPermanently: false)
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
            pool.waiters.append(Waiter(id: 1, continuation: continuation, timeoutTask: nil))
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

    @Test func scaleToZeroOnlyAfterTheIdlePeriodWithNothingInFlight() {
        var pool = state(desired: 1)
        _ = pool.dispatch(now: start)
        makeReady(&pool, 1)
        let idle = Duration.seconds(10)
        #expect(pool.scaleToZeroIfIdle(now: start + .seconds(9), idlePeriod: idle).isEmpty)
        let lease = pool.lease(now: start + .seconds(5))
        #expect(lease != nil)
        #expect(pool.scaleToZeroIfIdle(now: start + .seconds(30), idlePeriod: idle).isEmpty, "a request is in flight")
        _ = pool.workers[1]!.machine.release()
        pool.lastActivity = start + .seconds(30)
        #expect(pool.scaleToZeroIfIdle(now: start + .seconds(39), idlePeriod: idle).isEmpty)
        let actions = pool.scaleToZeroIfIdle(now: start + .seconds(40), idlePeriod: idle)
        guard case .terminate(let id, let pid)? = actions.first else { Issue.record("expected a terminate"); return }
        #expect(id == 1 && pid == 101)
        #expect(pool.desired == 0)
        #expect(pool.lease(now: start + .seconds(41)) == nil, "a draining worker takes no requests")
    }
}
