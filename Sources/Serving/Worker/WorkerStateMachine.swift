/// How a worker process ended.
public enum WorkerExit: Hashable, Sendable, CustomStringConvertible {
    /// `exit(code)`.
    case exited(Int32)
    /// Killed by a signal.
    case signaled(Int32)

    /// `exited with code 3` / `killed by signal 9`.
    public var description: String {
        switch self {
        case .exited(let code): "exited with code \(code)"
        case .signaled(let signal): "killed by signal \(signal)"
        }
    }
}

/// The lifecycle of one worker process as a value: `starting → ready → draining → terminating →
/// exited`, with a side door `ready ⇄ frozen` for the warm tier. It decides; the pool carries the
/// returned actions out.
public struct WorkerStateMachine: Sendable {
    /// Where the worker is in its life.
    public enum State: Hashable, Sendable {
        /// Process started; readiness probe running.
        case starting
        /// Passed its probe; takes requests.
        case ready
        /// Takes no new requests; stops when in-flight ones finish.
        case draining
        /// Stopped with SIGSTOP while the revision is at zero; thawed by the next request.
        case frozen
        /// SIGTERM sent; SIGKILL follows after the grace period.
        case terminating
        /// The process is gone.
        case exited(WorkerExit)
    }

    /// What the owner must do next.
    public enum Action: Hashable, Sendable {
        /// Nothing.
        case none
        /// Send SIGTERM and arm the SIGKILL timer.
        case terminate
        /// Send SIGKILL.
        case kill
        /// The worker can take requests now.
        case becameReady
        /// The process ended while it was expected to run (crash, or failed start).
        case unexpectedExit(WorkerExit, wasReady: Bool)
        /// The process ended after it was told to stop.
        case stopped
        /// Send SIGSTOP.
        case freeze
        /// Send SIGCONT: the worker takes requests again.
        case thaw
    }

    /// The current state.
    public private(set) var state: State = .starting
    /// Requests the worker is handling now.
    public private(set) var inFlight = 0
    /// Hard per-worker limit (`containerConcurrency`); 0 means unlimited.
    public let concurrencyLimit: Int
    private var wasReady = false

    /// A new worker whose process has just been started.
    public init(concurrencyLimit: Int) {
        self.concurrencyLimit = concurrencyLimit
    }

    /// Whether a new request may be sent to this worker now.
    public var hasCapacity: Bool {
        state == .ready && (concurrencyLimit == 0 || inFlight < concurrencyLimit)
    }

    /// Whether the worker is starting or serving (counts toward the revision's scale).
    public var isActive: Bool { state == .starting || state == .ready }

    /// The readiness probe passed.
    public mutating func probeSucceeded() -> Action {
        guard state == .starting else { return .none }
        state = .ready
        wasReady = true
        return .becameReady
    }

    /// The readiness probe gave up (deadline passed): stop the process.
    public mutating func probeFailed() -> Action {
        guard state == .starting else { return .none }
        state = .terminating
        return .terminate
    }

    /// Takes one request; false when the worker has no capacity.
    public mutating func lease() -> Bool {
        guard hasCapacity else { return false }
        inFlight += 1
        return true
    }

    /// A request finished. A draining worker with nothing left in flight is stopped.
    public mutating func release() -> Action {
        precondition(inFlight > 0, "release without a lease")
        inFlight -= 1
        if state == .draining && inFlight == 0 {
            state = .terminating
            return .terminate
        }
        return .none
    }

    /// Freezes an idle ready worker (warm tier); `.none` when it is busy or not ready.
    public mutating func freeze() -> Action {
        guard state == .ready, inFlight == 0 else { return .none }
        state = .frozen
        return .freeze
    }

    /// Thaws a frozen worker; it is ready again at once (its socket kept listening).
    public mutating func thaw() -> Action {
        guard state == .frozen else { return .none }
        state = .ready
        return .thaw
    }

    /// Stop taking requests and stop the process once idle.
    public mutating func drain() -> Action {
        switch state {
        case .starting, .frozen:
            state = .terminating
            return .terminate
        case .ready, .draining:
            if inFlight == 0 {
                state = .terminating
                return .terminate
            }
            state = .draining
            return .none
        case .terminating, .exited:
            return .none
        }
    }

    /// The termination grace period ran out.
    public mutating func gracePeriodExpired() -> Action {
        state == .terminating ? .kill : .none
    }

    /// The process ended.
    public mutating func processExited(_ status: WorkerExit) -> Action {
        let previous = state
        state = .exited(status)
        inFlight = 0
        switch previous {
        case .terminating, .draining, .frozen: return .stopped
        case .exited: return .none
        case .starting, .ready: return .unexpectedExit(status, wasReady: wasReady)
        }
    }
}
