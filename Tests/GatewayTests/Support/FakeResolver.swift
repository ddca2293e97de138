import Gateway
import Synchronization

/// An ``UpstreamResolver`` that leases one fixed port and counts every lease and release.
final class FakeResolver: UpstreamResolver {
    enum Behaviour: Sendable {
        /// `tryAcquire` succeeds at once.
        case ready(port: Int)
        /// `tryAcquire` fails; `acquire` returns a lease after `delay`.
        case slow(port: Int, delay: Duration)
        /// `tryAcquire` fails; `acquire` throws.
        case unavailable(UpstreamUnavailable)
        /// `tryAcquire` fails; `acquire` returns a lease of an in-process worker after `delay`.
        case slowLocal(any LocalUpstream, delay: Duration)
    }

    private struct State {
        var behaviour: Behaviour
        var nextWorkerID: UInt64 = 1
        var leased: [UInt64] = []
        var revisions: [String] = []
        var released: [(UInt64, UpstreamOutcome)] = []
        var slowCalls = 0
        var hints: [LeaseHint] = []
    }

    private let state: Mutex<State>

    init(_ behaviour: Behaviour) {
        self.state = Mutex(State(behaviour: behaviour))
    }

    func tryAcquire(_ revision: RevisionID) -> UpstreamLease? {
        state.withLock { state in
            guard case .ready(let port) = state.behaviour else { return nil }
            return Self.lease(revision, port: port, state: &state)
        }
    }

    func tryAcquire(_ revision: RevisionID, hint: LeaseHint) -> UpstreamLease? {
        state.withLock { $0.hints.append(hint) }
        return tryAcquire(revision)
    }

    func acquire(_ revision: RevisionID, timeout: Duration) async throws -> UpstreamLease {
        let behaviour = state.withLock { state in
            state.slowCalls += 1
            return state.behaviour
        }
        switch behaviour {
        case .ready(let port):
            return state.withLock { Self.lease(revision, port: port, state: &$0) }
        case .slow(let port, let delay):
            try await Task.sleep(for: delay)
            return state.withLock { Self.lease(revision, port: port, state: &$0) }
        case .unavailable(let error):
            throw error
        case .slowLocal(let upstream, let delay):
            try await Task.sleep(for: delay)
            return state.withLock { Self.lease(revision, port: 0, local: upstream, state: &$0) }
        }
    }

    func release(_ lease: UpstreamLease, outcome: UpstreamOutcome) {
        state.withLock { $0.released.append((lease.workerID, outcome)) }
    }

    private static func lease(_ revision: RevisionID, port: Int, local: (any LocalUpstream)? = nil, state: inout State) -> UpstreamLease {
        let id = state.nextWorkerID
        state.nextWorkerID += 1
        state.leased.append(id)
        state.revisions.append(revision.name)
        return UpstreamLease(revision: revision, port: port, workerID: id, local: local)
    }

    /// The revision name of every lease, in order.
    var leasedRevisions: [String] { state.withLock { $0.revisions } }
    /// The hints of every `tryAcquire(_:hint:)` call, in order.
    var hints: [LeaseHint] { state.withLock { $0.hints } }
    /// Leases handed out.
    var leaseCount: Int { state.withLock { $0.leased.count } }
    /// Calls of the async slow path.
    var slowCalls: Int { state.withLock { $0.slowCalls } }
    /// Outcomes of the releases, in order, as `completed`, `responded 200`, `connectFailed`, `timedOut`.
    var outcomes: [String] {
        state.withLock { state in
            state.released.map { outcome in
                switch outcome.1 {
                case .completed: "completed"
                case .responded(let status): "responded \(status)"
                case .connectFailed: "connectFailed"
                case .timedOut: "timedOut"
                }
            }
        }
    }

    /// Every lease was released exactly once (and nothing else was released).
    var everyLeaseReleasedOnce: Bool {
        state.withLock { state in
            let released = state.released.map(\.0)
            return released.sorted() == state.leased.sorted()
        }
    }

    /// Waits (up to `timeout`) until `count` releases happened.
    func waitForReleases(_ count: Int, timeout: Duration = .seconds(5)) async throws {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while state.withLock({ $0.released.count }) < count, clock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}

