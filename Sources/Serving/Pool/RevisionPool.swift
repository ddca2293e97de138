import Foundation
import Gateway
import Glibc
import Logging
import Store
import Synchronization

/// What every pool shares: the spawner, the reaper, settings, and a way to wake the manager.
struct PoolRuntime: Sendable {
    let spawner: WorkerSpawner
    let reaper: ChildReaper
    let configuration: ServingConfiguration
    let logger: Logger
    let notify: @Sendable () -> Void
}

/// A summary of a pool for status reporting.
struct PoolSnapshot: Hashable, Sendable {
    var ready: Int
    var active: Int
    var desired: Int
    var queued: Int
    var everReady: Bool
    var failedPermanently: Bool
    var failure: PoolFailure?
    var consecutiveFailures: Int
}

/// The workers of one revision and the requests waiting for them (the activator for that
/// revision). Decisions are made by `PoolState` under a lock; process I/O happens outside it.
final class RevisionPool: Sendable {
    let id: RevisionID
    let serviceName: String
    let template: RevisionTemplate
    let logPath: String
    let runtime: PoolRuntime
    let state: Mutex<PoolState>
    private let nextWaiterID = Atomic<UInt64>(0)

    init(revision: RevisionResource, runtime: PoolRuntime) {
        id = RevisionID(namespace: revision.meta.namespace, name: revision.meta.name)
        serviceName = revision.serviceName
        template = revision.spec
        logPath = "\(runtime.configuration.logDirectory)/\(revision.meta.namespace)/\(revision.meta.name).log"
        self.runtime = runtime
        let ready = revision.status.conditions["Ready"]
        let everReady = ready?.status == "True"
        let failed = ready?.status == "False"
        var initial = PoolState(
            revision: id, concurrencyLimit: revision.spec.containerConcurrency,
            desired: everReady || failed ? 0 : 1,  // a new revision starts one worker to prove it can
            lastActivity: .now, everReady: everReady, failedPermanently: failed)
        if failed, let ready { initial.failure = PoolFailure(reason: ready.reason ?? "Failed", message: ready.message ?? "") }
        state = Mutex(initial)
    }

    // MARK: Leasing (called by the gateway through the manager)

    func tryAcquire() -> UpstreamLease? {
        state.withLock { $0.closed ? nil : $0.lease(now: .now) }
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
                    let waiter = Waiter(id: waiterID, continuation: continuation, timeoutTask: timeoutTask)
                    if state.closed {
                        return [.fail(waiter, UpstreamUnavailable(code: "RevisionGone", message: "revision \(id.name) is being removed"))]
                    }
                    if state.failedPermanently {
                        let detail = state.failure.map { ": \($0.message)" } ?? ""
                        return [.fail(waiter, UpstreamUnavailable(code: "RevisionFailed", message: "revision \(id.name) failed\(detail)"))]
                    }
                    if state.waiters.count >= runtime.configuration.maxQueuedRequests {
                        return [.fail(waiter, UpstreamUnavailable(
                            code: "QueueFull", message: "\(state.waiters.count) requests already wait for revision \(id.name)"))]
                    }
                    state.waiters.append(waiter)
                    state.lastActivity = .now
                    return state.dispatch(now: .now)
                }
                perform(actions)
            }
        } onCancel: {
            abandonWaiter(waiterID, UpstreamUnavailable(code: "Cancelled", message: "the request was cancelled"))
        }
    }

    func release(_ lease: UpstreamLease, outcome: UpstreamOutcome) {
        let actions = state.withLock { state -> [PoolAction] in
            guard state.workers[lease.workerID] != nil else { return [] }
            state.lastActivity = .now
            var actions: [PoolAction] = []
            if state.workers[lease.workerID]!.machine.release() == .terminate, let pid = state.workers[lease.workerID]!.pid {
                actions.append(.terminate(workerID: lease.workerID, pid: pid))
            }
            return actions + state.dispatch(now: .now)
        }
        perform(actions)
    }

    private func abandonWaiter(_ waiterID: UInt64, _ error: UpstreamUnavailable) {
        let waiter = state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == waiterID }) else { return nil }
            return state.waiters.remove(at: index)
        }
        if let waiter { perform([.fail(waiter, error)]) }
    }

    // MARK: Control (called by the manager)

    /// Starts a worker if one is wanted (a new revision, or a retry after backoff).
    func kick() {
        perform(state.withLock { $0.dispatch(now: .now) })
    }

    /// Stops the workers after `idlePeriod` without requests.
    func scaleToZeroIfIdle(idlePeriod: Duration) {
        perform(state.withLock { $0.scaleToZeroIfIdle(now: .now, idlePeriod: idlePeriod) })
    }

    func snapshot() -> PoolSnapshot {
        state.withLock { state in
            PoolSnapshot(
                ready: state.readyWorkers, active: state.activeWorkers, desired: state.desired, queued: state.waiters.count,
                everReady: state.everReady, failedPermanently: state.failedPermanently, failure: state.failure,
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
    }

    // MARK: Carrying out actions

    func perform(_ actions: [PoolAction]) {
        for action in actions {
            switch action {
            case .resume(let waiter, let lease):
                waiter.timeoutTask?.cancel()
                waiter.continuation.resume(returning: lease)
            case .fail(let waiter, let error):
                waiter.timeoutTask?.cancel()
                waiter.continuation.resume(throwing: error)
            case .spawn(let workerID):
                Task { await self.startWorker(workerID) }
            case .terminate(let workerID, let pid):
                signalGroup(pid, SIGTERM)
                let grace = runtime.configuration.terminationGracePeriod
                Task { [weak self] in
                    try? await Task.sleep(for: grace)
                    self?.gracePeriodExpired(workerID)
                }
            case .kill(let pid):
                signalGroup(pid, SIGKILL)
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
