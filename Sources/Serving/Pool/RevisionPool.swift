import Foundation
import Gateway
import Glibc
import Logging
import Store
import Synchronization

/// What every pool shares: the spawner, the reaper, settings, metrics, and a way to wake the
/// manager.
struct PoolRuntime: Sendable {
    let spawner: WorkerSpawner
    let models: ModelLoader
    let reaper: ChildReaper
    let configuration: ServingConfiguration
    let logger: Logger
    let metrics: (any ServingMetricsSink)?
    let notify: @Sendable () -> Void
    /// Parks every revision of a service (namespace, name) at zero: a model repository `unload`.
    let parkService: @Sendable (String, String) -> Void
}

/// A summary of a pool for status reporting and the autoscaler.
struct PoolSnapshot: Hashable, Sendable {
    var ready: Int
    var active: Int
    var frozen: Int
    var desired: Int
    var held: Bool
    var parked: Bool
    var queued: Int
    var inFlight: Int
    var everReady: Bool
    var failedPermanently: Bool
    var failure: PoolFailure?
    var consecutiveFailures: Int
}

/// The workers of one revision and the requests waiting for them (the activator for that
/// revision). Decisions are made by `PoolState` under a lock; process I/O happens outside it.
final class RevisionPool: LeaseIssuer {
    let id: RevisionID
    /// The revision's `metadata.uid`: a revision deleted and created again under the same name
    /// gets a new pool.
    let uid: String
    let serviceName: String
    let template: RevisionTemplate
    let logPath: String
    let runtime: PoolRuntime
    let state: Mutex<PoolState>
    private let nextWaiterID = Atomic<UInt64>(0)

    init(revision: RevisionResource, scaling: ScalingSpec, freezeAtZero: Bool, runtime: PoolRuntime) {
        id = RevisionID(namespace: revision.meta.namespace, name: revision.meta.name)
        uid = revision.meta.uid
        serviceName = revision.serviceName
        template = revision.spec
        logPath = "\(runtime.configuration.logDirectory)/\(revision.meta.namespace)/\(revision.meta.name).log"
        self.runtime = runtime
        let ready = revision.status.conditions["Ready"]
        let everReady = ready?.status == "True"
        let failed = ready?.status == "False"
        let now = ContinuousClock.now
        var initial = PoolState(
            revision: id, concurrencyLimit: revision.spec.containerConcurrency,
            policy: BalancingPolicy(containerConcurrency: revision.spec.containerConcurrency),
            // A new revision starts its initial scale (at least one worker, to prove it can serve).
            desired: everReady || failed ? 0 : max(1, scaling.initialScale),
            meter: ConcurrencyMeter(windowSeconds: Int(scaling.stableWindow.components.seconds), now: now),
            everReady: everReady, failedPermanently: failed)
        if revision.spec.port != nil { initial.workerLimit = 1 }
        // A model instance has no process to freeze; unloading it is the way to zero.
        initial.freezeAtZero = freezeAtZero && revision.spec.model == nil
        if failed, let ready { initial.failure = PoolFailure(reason: ready.reason ?? "Failed", message: ready.message ?? "") }
        state = Mutex(initial)
    }

    // MARK: Leasing (called by the gateway through the manager)

    func tryAcquire(hint: LeaseHint = LeaseHint()) -> UpstreamLease? {
        let now = ContinuousClock.now
        return state.withLock { state in
            guard !state.closed, var lease = state.lease(now: now, hint: hint) else { return nil }
            state.meter.countArrival(now: now)
            lease.issuer = self
            return lease
        }
    }

    func acquire(timeout: Duration) async throws -> UpstreamLease {
        if let lease = tryAcquire() { return lease }
        let waiterID = nextWaiterID.add(1, ordering: .relaxed).newValue
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<UpstreamLease, any Error>) in
                let timeoutTask = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    guard !Task.isCancelled else { return }
                    self?.abandonWaiter(waiterID, UpstreamUnavailable(
                        code: "ActivationTimeout",
                        message: "no worker of revision \(self?.id.name ?? "") became ready within \(DurationText.format(timeout))"))
                }
                let actions = state.withLock { state -> [PoolAction] in
                    let now = ContinuousClock.now
                    let waiter = Waiter(id: waiterID, continuation: continuation, timeoutTask: timeoutTask, enqueuedAt: now)
                    if let refusal = refusal(state) { return [.fail(waiter, refusal)] }
                    if state.waiters.count >= runtime.configuration.maxQueuedRequests {
                        return [.fail(waiter, UpstreamUnavailable(
                            code: "QueueFull", message: "\(state.waiters.count) requests already wait for revision \(id.name)"))]
                    }
                    state.waiters.append(waiter)
                    state.meter.countArrival(now: now)
                    state.meter.set(level: state.observedConcurrency, now: now)
                    return state.dispatch(now: now)
                }
                perform(actions)
            }
        } onCancel: {
            abandonWaiter(waiterID, UpstreamUnavailable(code: "Cancelled", message: "the request was cancelled"))
        }
    }

    /// Why a new request cannot wait for this revision, if it cannot.
    private func refusal(_ state: PoolState) -> UpstreamUnavailable? {
        if state.closed {
            return UpstreamUnavailable(code: "RevisionGone", message: "revision \(id.name) is being removed")
        }
        if state.held {
            return UpstreamUnavailable(code: "ServiceStopped", message: "service \(serviceName) is stopped; `outpost service resume \(serviceName)` lets it serve again")
        }
        if state.failedPermanently {
            let detail = state.failure.map { ": \($0.message)" } ?? ""
            return UpstreamUnavailable(code: "RevisionFailed", message: "revision \(id.name) failed\(detail)")
        }
        return nil
    }

    func release(_ lease: UpstreamLease, outcome: UpstreamOutcome) {
        let actions = state.withLock { state -> [PoolAction] in
            guard state.workers[lease.workerID] != nil else { return [] }
            let now = ContinuousClock.now
            var actions: [PoolAction] = []
            state.recordOutcome(outcome, workerID: lease.workerID, now: now)
            var slot = state.workers[lease.workerID]!
            let step = slot.machine.release()
            state.workers[lease.workerID] = slot  // stored back, not changed in place: see `PoolState.workers`
            if step == .terminate, slot.isStarted {
                actions.append(.terminate(workerID: lease.workerID, pid: slot.pid))
            }
            state.meter.set(level: state.observedConcurrency, now: now)
            return actions + state.dispatch(now: now)
        }
        perform(actions)
    }

    private func abandonWaiter(_ waiterID: UInt64, _ error: UpstreamUnavailable) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
            let waiter = state.waiters.remove(at: index)
            state.meter.set(level: state.observedConcurrency, now: .now)
            return waiter
        }
        if let waiter { perform([.fail(waiter, error)]) }
    }

    // MARK: Control (called by the manager)

    /// Brings the workers toward the desired count (a new revision, or a retry after backoff).
    func kick() {
        perform(state.withLock { $0.dispatch(now: .now) })
    }

    /// Sets the worker count the autoscaler wants.
    func scale(to desired: Int) {
        perform(state.withLock { state -> [PoolAction] in
            state.desired = desired
            return state.dispatch(now: .now)
        })
    }

    /// Drains every worker and keeps the revision at zero until the next request arrives,
    /// whatever the autoscaler wants meanwhile.
    func park() {
        perform(state.withLock { state -> [PoolAction] in
            state.parked = true
            state.desired = 0
            return state.dispatch(now: .now)
        })
        runtime.notify()
    }

    /// Stops workers frozen for longer than `retention`.
    func expireFrozen(retention: Duration) {
        perform(state.withLock { $0.expireFrozen(now: .now, retention: retention) })
    }

    /// Holds the revision at zero (`true`) or lets requests start it again (`false`).
    func hold(_ held: Bool) {
        let actions = state.withLock { state -> [PoolAction] in
            guard state.held != held else { return [] }
            state.held = held
            guard held else { return [] }
            state.desired = 0
            let refusal = refusal(state)!
            let failed = state.waiters.map { PoolAction.fail($0, refusal) }
            state.waiters.removeAll()
            return failed + state.dispatch(now: .now)
        }
        perform(actions)
    }

    /// Window averages of the revision's load: (stable, panic), in the revision's metric.
    func load(now: ContinuousClock.Instant, scaling: ScalingSpec) -> (stable: Double, panic: Double, idle: Duration) {
        state.withLock { state in
            let stable = state.meter.averages(now: now, window: scaling.stableWindow)
            let panic = state.meter.averages(now: now, window: scaling.panicWindow)
            let idle = state.meter.idleDuration(now: now)
            return scaling.metric == .rps ? (stable.rps, panic.rps, idle) : (stable.concurrency, panic.concurrency, idle)
        }
    }

    func snapshot() -> PoolSnapshot {
        state.withLock { state in
            PoolSnapshot(
                ready: state.readyWorkers, active: state.activeWorkers,
                frozen: state.workers.values.count { $0.machine.state == .frozen }, desired: state.desired, held: state.held,
                parked: state.parked, queued: state.waiters.count, inFlight: state.inFlight, everReady: state.everReady,
                failedPermanently: state.failedPermanently, failure: state.failure,
                consecutiveFailures: state.consecutiveFailures)
        }
    }

    /// Fails waiting requests, stops every worker and waits until all have exited.
    func shutdown() async {
        let actions = state.withLock { state -> [PoolAction] in
            state.closed = true
            state.desired = 0
            let error = UpstreamUnavailable(code: "RevisionGone", message: "revision \(id.name) is shutting down")
            let failed = state.waiters.map { PoolAction.fail($0, error) }
            state.waiters.removeAll()
            return failed + state.drainAll()
        }
        perform(actions)
        let deadline = ContinuousClock.now + runtime.configuration.terminationGracePeriod + .seconds(2)
        while ContinuousClock.now < deadline, !state.withLock({ $0.workers.isEmpty }) {
            try? await Task.sleep(for: .milliseconds(10))
        }
        // A process still serving after the grace period (a long request, a WebSocket) is
        // killed, as Knative kills a pod. A model instance stops when its last request returns
        // its lease, which comes back here whatever happened to the revision meanwhile.
        let left = state.withLock { state in state.workers.values.compactMap(\.pid) }
        if !left.isEmpty { log("\(left.count) worker(s) still running after the grace period; sending SIGKILL") }
        for pid in left { signalGroup(pid, SIGKILL) }
    }

    // MARK: Carrying out actions

    func perform(_ actions: [PoolAction]) {
        for action in actions {
            switch action {
            case .resume(let waiter, var lease):
                lease.issuer = self
                waiter.timeoutTask?.cancel()
                runtime.metrics?.activationWait(revision: id, duration: .now - waiter.enqueuedAt)
                waiter.continuation.resume(returning: lease)
            case .fail(let waiter, let error):
                waiter.timeoutTask?.cancel()
                waiter.continuation.resume(throwing: error)
            case .spawn(let workerID):
                Task { await self.startWorker(workerID) }
            case .terminate(let workerID, nil):
                stopModelWorker(workerID)
            case .terminate(let workerID, let pid?):
                signalGroup(pid, SIGTERM)
                signalGroup(pid, SIGCONT)  // a frozen worker must run to see SIGTERM
                let grace = runtime.configuration.terminationGracePeriod
                Task { [weak self] in
                    try? await Task.sleep(for: grace)
                    self?.gracePeriodExpired(workerID)
                }
            case .kill(let pid):
                signalGroup(pid, SIGKILL)
            case .freeze(let pid):
                signalGroup(pid, SIGSTOP)
                log("worker pid \(pid) frozen (warm tier)")
            case .thaw(let pid, let began):
                signalGroup(pid, SIGCONT)
                runtime.metrics?.coldStart(revision: id, duration: .now - began, kind: .thawed)
            case .retry(let delay):
                Task { [weak self] in
                    try? await Task.sleep(for: delay)
                    self?.kick()
                    self?.runtime.notify()
                }
            }
        }
    }

    private func signalGroup(_ pid: Int32, _ signal: Int32) {
        if Glibc.kill(-pid, signal) != 0 { _ = Glibc.kill(pid, signal) }
    }

    private func gracePeriodExpired(_ workerID: UInt64) {
        let actions = state.withLock { state -> [PoolAction] in
            guard let slot = state.workers[workerID], let pid = slot.pid,
                  state.workers[workerID]!.machine.gracePeriodExpired() == .kill else { return [] }
            return [.kill(pid: pid)]
        }
        if !actions.isEmpty { log("worker did not stop within the grace period; sending SIGKILL") }
        perform(actions)
    }
}
