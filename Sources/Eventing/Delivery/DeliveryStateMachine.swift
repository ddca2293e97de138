/// The lifecycle of one delivery (one event to one trigger) as a pure value.
///
/// The dispatcher owns I/O and the clock; this type only decides what happens next.
/// Times are `Double` seconds since the Unix epoch because they are persisted in SQLite
/// next to the state, and a wall-clock timestamp survives a restart where a monotonic
/// instant would not.
///
/// Flow (attempt counts are exactly `retry + 1` per phase):
/// ```
/// pending(1) ─fail→ waiting ─resume→ pending(2) … ─last fail / permanent→ deadLettering(1)
///     └─2xx→ delivered                 deadLettering ─2xx→ deadLettered
///                                      deadLettering ─fail→ waiting ─resume→ deadLettering(2) …
///                                      exhausted or permanent → dropped
/// no dead-letter sink: subscriber failure → dropped
/// ```
public struct DeliveryStateMachine: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Subscriber attempt `attempt` (1-based) is due.
        case pending(attempt: Int)
        /// Backing off until `until`; ``target`` and ``attempt`` say what comes next.
        case waiting(until: Double)
        /// Dead-letter-sink attempt `attempt` (1-based) is due.
        case deadLettering(attempt: Int)
        /// The subscriber accepted the event.
        case delivered
        /// The dead-letter sink accepted the event.
        case deadLettered
        /// Given up; the event is lost for this trigger.
        case dropped(DropReason)
    }

    /// Which endpoint the current or next attempt goes to.
    public enum Target: Sendable, Equatable {
        case subscriber
        case deadLetterSink
    }

    public enum DropReason: Sendable, Equatable {
        /// The subscriber failed for good and no dead-letter sink is configured.
        case noDeadLetterSink(lastStatus: Int?)
        /// The dead-letter sink failed every attempt or rejected the event.
        case deadLetterSinkFailed(lastStatus: Int?)
    }

    /// What the dispatcher must do after reporting an attempt.
    public enum Action: Sendable, Equatable {
        /// Persist the state and try attempt `attempt` of ``target`` at `at`.
        case scheduleRetry(at: Double, attempt: Int)
        /// Finished successfully (to the subscriber or to the dead-letter sink).
        case complete
        /// Send to the dead-letter sink now; `errorCode` is the subscriber's final
        /// status, for the `knativeerrorcode` extension (`nil` after a network error).
        case sendToDeadLetter(errorCode: Int?)
        /// Give up and record why.
        case drop(DropReason)
    }

    public let policy: ResolvedDelivery
    public private(set) var state: State
    public private(set) var target: Target
    /// The attempt number (1-based, per target) that is due or being waited for.
    public private(set) var attempt: Int
    /// Status of the most recent attempt; `nil` before any attempt or after a network error.
    public private(set) var lastStatus: Int?
    /// The subscriber's final status, kept for dead-letter enrichment.
    public private(set) var subscriberErrorCode: Int?

    /// A new delivery whose first subscriber attempt is due immediately.
    public init(policy: ResolvedDelivery) {
        self.policy = policy
        self.state = .pending(attempt: 1)
        self.target = .subscriber
        self.attempt = 1
    }

    /// Rebuilds a machine from persisted columns.
    ///
    /// `pending` and `deadLettering` carry their own attempt and target, which win over
    /// the separate arguments; those arguments matter for `waiting`. `attempt` is
    /// clamped to at least 1.
    public init(
        policy: ResolvedDelivery,
        restoring state: State,
        target: Target,
        attempt: Int,
        lastStatus: Int? = nil,
        subscriberErrorCode: Int? = nil
    ) {
        self.policy = policy
        self.lastStatus = lastStatus
        self.subscriberErrorCode = subscriberErrorCode
        switch state {
        case .pending(let due):
            self.target = .subscriber
            self.attempt = max(1, due)
            self.state = .pending(attempt: self.attempt)
        case .deadLettering(let due):
            self.target = .deadLetterSink
            self.attempt = max(1, due)
            self.state = .deadLettering(attempt: self.attempt)
        case .waiting, .delivered, .deadLettered, .dropped:
            self.target = target
            self.attempt = max(1, attempt)
            self.state = state
        }
    }

    /// True once delivered, dead-lettered or dropped.
    public var isFinished: Bool {
        switch state {
        case .delivered, .deadLettered, .dropped: true
        case .pending, .waiting, .deadLettering: false
        }
    }

    /// When the next attempt may start: `until` while waiting, `nil` when finished,
    /// and `now` (i.e. immediately) when an attempt is already due.
    public func nextAttemptTime(now: Double) -> Double? {
        switch state {
        case .waiting(let until): until
        case .pending, .deadLettering: now
        case .delivered, .deadLettered, .dropped: nil
        }
    }

    /// Ends a backoff whose time has come. Returns whether an attempt is due now.
    @discardableResult
    public mutating func resume(now: Double) -> Bool {
        switch state {
        case .pending, .deadLettering:
            return true
        case .waiting(let until):
            guard now >= until else { return false }
            state = dueState()
            return true
        case .delivered, .deadLettered, .dropped:
            return false
        }
    }

    /// Records the result of the attempt that was due and returns what to do next.
    ///
    /// - Parameters:
    ///   - status: the HTTP status, or `nil` for a network error or timeout.
    ///   - retryAfter: the parsed `Retry-After` header, if any.
    ///   - now: when the attempt finished; retries are scheduled from here.
    ///
    /// Reporting while `waiting` is accepted as the awaited attempt (a dispatcher that
    /// restarted may pick up a persisted row directly). Reporting on a finished delivery
    /// changes nothing and repeats the final action, so duplicate reports are idempotent.
    public mutating func attemptFinished(status: Int?, retryAfter: Duration?, now: Double) -> Action {
        var generator = SystemRandomNumberGenerator()
        return attemptFinished(status: status, retryAfter: retryAfter, now: now, using: &generator)
    }

    /// ``attemptFinished(status:retryAfter:now:)`` drawing backoff jitter from `generator`.
    public mutating func attemptFinished(
        status: Int?,
        retryAfter: Duration?,
        now: Double,
        using generator: inout some RandomNumberGenerator
    ) -> Action {
        if let finalAction { return finalAction }
        if case .waiting = state { state = dueState() }
        lastStatus = status

        switch DeliveryOutcome.classify(status: status) {
        case .delivered:
            state = target == .subscriber ? .delivered : .deadLettered
            return .complete
        case .retryable where attempt < policy.maxAttempts:
            return scheduleRetry(status: status, retryAfter: retryAfter, now: now, using: &generator)
        case .retryable, .permanentFailure:
            return giveUpOnTarget(status: status)
        }
    }

    // MARK: - Transitions

    private mutating func scheduleRetry(
        status: Int?,
        retryAfter: Duration?,
        now: Double,
        using generator: inout some RandomNumberGenerator
    ) -> Action {
        let delay = policy.retryDelay(afterAttempt: attempt, status: status, retryAfter: retryAfter, using: &generator)
        let at = now + delay.seconds
        attempt += 1
        state = .waiting(until: at)
        return .scheduleRetry(at: at, attempt: attempt)
    }

    private mutating func giveUpOnTarget(status: Int?) -> Action {
        switch target {
        case .subscriber:
            subscriberErrorCode = status
            guard policy.deadLetterSink != nil else {
                return drop(.noDeadLetterSink(lastStatus: status))
            }
            target = .deadLetterSink
            attempt = 1
            state = .deadLettering(attempt: 1)
            return .sendToDeadLetter(errorCode: status)
        case .deadLetterSink:
            return drop(.deadLetterSinkFailed(lastStatus: status))
        }
    }

    private mutating func drop(_ reason: DropReason) -> Action {
        state = .dropped(reason)
        return .drop(reason)
    }

    private func dueState() -> State {
        target == .subscriber ? .pending(attempt: attempt) : .deadLettering(attempt: attempt)
    }

    /// The action a finished delivery repeats when reported again.
    private var finalAction: Action? {
        switch state {
        case .delivered, .deadLettered: .complete
        case .dropped(let reason): .drop(reason)
        case .pending, .waiting, .deadLettering: nil
        }
    }
}

extension Duration {
    /// Seconds as a `Double`, for adding to persisted epoch timestamps.
    var seconds: Double {
        let (whole, attoseconds) = components
        return Double(whole) + Double(attoseconds) / 1e18
    }
}
