import Gateway
@testable import Serving
import Testing

/// Worker choice under traffic policies: outlier ejection, load balancers, the retry hint.
@Suite struct PoolPolicyTests {
    let revision = RevisionID(namespace: "default", name: "hello-00001")
    let start = ContinuousClock.now

    /// A pool with `count` ready workers (ids 1...count) and no concurrency limit.
    func pool(workers count: Int, policy: WorkerPolicy) -> PoolState {
        var state = PoolState(
            revision: revision, concurrencyLimit: 0, policy: .leastLoaded, desired: count,
            meter: ConcurrencyMeter(windowSeconds: 60, now: start), everReady: true, failedPermanently: false)
        _ = state.dispatch(now: start)
        for id in 1...UInt64(count) {
            state.workers[id]!.pid = 100 + Int32(id)
            state.workers[id]!.port = 9000 + Int(id)
            _ = state.workers[id]!.machine.probeSucceeded()
        }
        state.apply(policy)
        return state
    }

    /// Leases and releases at once with `outcome`; returns the worker id.
    func exchange(_ state: inout PoolState, at now: ContinuousClock.Instant, outcome: UpstreamOutcome = .responded(status: 200), hint: LeaseHint = LeaseHint()) -> UInt64? {
        guard let lease = state.lease(now: now, hint: hint) else { return nil }
        state.recordOutcome(outcome, workerID: lease.workerID, now: now)
        _ = state.workers[lease.workerID]!.machine.release()
        return lease.workerID
    }

    @Test func consecutive5xxEjectsAWorkerForBaseTimeThenItReturns() {
        var detection = OutlierDetection()
        detection.consecutive5xxErrors = 3
        detection.baseEjectionTime = .seconds(5)
        var state = pool(workers: 2, policy: WorkerPolicy(outlierDetection: detection))
        // Worker 1 (the first choice when idle) fails three times in a row.
        for _ in 0..<3 { #expect(exchange(&state, at: start, outcome: .responded(status: 503)) == 1) }
        #expect(state.ejectedWorkers(now: start) == [1])
        #expect((0..<10).allSatisfy { _ in exchange(&state, at: start + .seconds(4)) == 2 })
        // After the ejection time it takes requests again.
        #expect(exchange(&state, at: start + .seconds(5)) == 1)
        #expect(state.ejectedWorkers(now: start + .seconds(5)).isEmpty)
    }

    @Test func aSuccessResetsTheCountAndGatewayErrorsCountSeparately() {
        var detection = OutlierDetection()
        detection.consecutive5xxErrors = 0
        detection.consecutiveGatewayErrors = 2
        var state = pool(workers: 1, policy: WorkerPolicy(outlierDetection: detection))
        _ = exchange(&state, at: start, outcome: .responded(status: 502))
        _ = exchange(&state, at: start, outcome: .responded(status: 200))
        _ = exchange(&state, at: start, outcome: .responded(status: 500))
        _ = exchange(&state, at: start, outcome: .connectFailed)
        #expect(state.ejectedWorkers(now: start).isEmpty, "500 is not a gateway error; 200 reset the count")
        _ = exchange(&state, at: start, outcome: .timedOut)
        #expect(state.ejectedWorkers(now: start) == [1])
        // The only worker is ejected: panic mode lets it serve rather than nobody.
        #expect(exchange(&state, at: start) == 1)
    }

    @Test func maxEjectionPercentBoundsEjectionsButAllowsOne() {
        var detection = OutlierDetection()
        detection.consecutive5xxErrors = 1
        detection.maxEjectionPercent = 10
        var state = pool(workers: 4, policy: WorkerPolicy(outlierDetection: detection))
        for id in 1...UInt64(4) { state.recordOutcome(.responded(status: 500), workerID: id, now: start) }
        #expect(state.ejectedWorkers(now: start).count == 1)
    }

    @Test func theEjectionTimeGrowsWithRepeatedEjections() {
        var detection = OutlierDetection()
        detection.consecutive5xxErrors = 1
        detection.baseEjectionTime = .seconds(10)
        detection.interval = .seconds(60)
        var state = pool(workers: 2, policy: WorkerPolicy(outlierDetection: detection))
        state.recordOutcome(.responded(status: 500), workerID: 1, now: start)
        state.returnEjectedWorkers(now: start + .seconds(10))
        state.recordOutcome(.responded(status: 500), workerID: 1, now: start + .seconds(11))
        #expect(state.ejectedWorkers(now: start + .seconds(30)) == [1], "second ejection lasts 2 × 10 s")
        #expect(state.ejectedWorkers(now: start + .seconds(31)).isEmpty)
    }

    /// Envoy's `max_ejection_time` (default 300 s) caps base × n; a base above it is the cap.
    @Test(arguments: [(Duration.seconds(10), Duration.seconds(300)), (.seconds(600), .seconds(600))])
    func theEjectionTimeIsCapped(base: Duration, cap: Duration) {
        var detection = OutlierDetection()
        detection.consecutive5xxErrors = 1
        detection.baseEjectionTime = base
        detection.interval = .seconds(86_400)  // no decay between the ejections below
        var state = pool(workers: 2, policy: WorkerPolicy(outlierDetection: detection))
        var now = start
        for _ in 0..<40 {
            state.recordOutcome(.responded(status: 500), workerID: 1, now: now)
            #expect(state.ejectedWorkers(now: now) == [1])
            guard let until = state.outliers[1]?.ejectedUntil else { return }
            #expect(until - now <= cap)
            now = until
            state.returnEjectedWorkers(now: now)
        }
        state.recordOutcome(.responded(status: 500), workerID: 1, now: now)
        #expect(state.ejectedWorkers(now: now + cap - .seconds(1)) == [1])
        #expect(state.ejectedWorkers(now: now + cap).isEmpty, "the 41st ejection lasts the cap, not 41 × base")
    }

    @Test func roundRobinTakesWorkersInTurn() {
        var state = pool(workers: 3, policy: WorkerPolicy(loadBalancer: .roundRobin))
        let order = (0..<6).compactMap { _ in exchange(&state, at: start) }
        #expect(order == [1, 2, 3, 1, 2, 3])
    }

    @Test func randomSpreadsOverWorkers() {
        var state = pool(workers: 3, policy: WorkerPolicy(loadBalancer: .random))
        let chosen = Set((0..<200).compactMap { _ in exchange(&state, at: start) })
        #expect(chosen == [1, 2, 3])
    }

    @Test func consistentHashKeepsAKeyOnOneWorkerAndSpreadsKeys() {
        var state = pool(workers: 4, policy: WorkerPolicy(loadBalancer: .consistentHash))
        for key in 0..<20 as Range<UInt64> {
            let hint = LeaseHint(hash: key &* 0x9E37_79B9)
            let first = exchange(&state, at: start, hint: hint)
            #expect((0..<5).allSatisfy { _ in exchange(&state, at: start, hint: hint) == first })
        }
        let owners = Set((0..<64 as Range<UInt64>).compactMap { exchange(&state, at: start, hint: LeaseHint(hash: $0 &* 0x1234_5678_9ABC)) })
        #expect(owners.count >= 3)
    }

    @Test func theRetryHintAvoidsTheFailedWorkerWhenAnotherHasCapacity() {
        var state = pool(workers: 2, policy: WorkerPolicy())
        #expect(exchange(&state, at: start, hint: LeaseHint(avoiding: 1)) == 2)
        #expect(exchange(&state, at: start, hint: LeaseHint(avoiding: 2)) == 1)
        var single = pool(workers: 1, policy: WorkerPolicy())
        #expect(exchange(&single, at: start, hint: LeaseHint(avoiding: 1)) == 1, "with one worker, it is the only choice")
    }
}
