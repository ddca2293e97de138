import Testing
@testable import Eventing

/// Drives a machine against scripted responses with a fake clock: every attempt is made
/// exactly when it becomes due and finishes instantly.
private struct Scenario {
    var machine: DeliveryStateMachine
    var now: Double
    /// (target, time) of every attempt made.
    var attempts: [(DeliveryStateMachine.Target, Double)] = []
    var actions: [DeliveryStateMachine.Action] = []

    init(policy: ResolvedDelivery, start: Double = 1_000) {
        machine = DeliveryStateMachine(policy: policy)
        now = start
    }

    mutating func run(responses: [Int?], retryAfter: Duration? = nil) {
        var generator = SeededGenerator(state: 7)
        for status in responses {
            guard !machine.isFinished else { return }
            if case .waiting(let until) = machine.state {
                let resumed1 = machine.resume(now: until - 0.001)
                #expect(!resumed1)
                now = until
                let resumed2 = machine.resume(now: now)
                #expect(resumed2)
            }
            attempts.append((machine.target, now))
            actions.append(machine.attemptFinished(status: status, retryAfter: retryAfter, now: now, using: &generator))
        }
    }

    func times(for target: DeliveryStateMachine.Target) -> [Double] {
        attempts.filter { $0.0 == target }.map(\.1)
    }
}

private func expectTimes(_ actual: [Double], _ expected: [Double], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, sourceLocation: sourceLocation)
    for (a, e) in zip(actual, expected) {
        #expect(abs(a - e) < 1e-9, "\(actual) != \(expected)", sourceLocation: sourceLocation)
    }
}

private let dls = Destination.service("dead-letters")

@Suite("DeliveryStateMachine")
struct DeliveryStateMachineTests {
    struct TimingCase: Sendable, CustomTestStringConvertible {
        let name: String
        let policy: BackoffPolicy
        let delay: Duration
        let retry: Int
        /// Attempt offsets from the start, in seconds.
        let expected: [Double]
        var testDescription: String { name }
    }

    @Test("retries at the backoff schedule, then dead-letters", arguments: [
        TimingCase(name: "linear PT0.1S ×3", policy: .linear, delay: .milliseconds(100), retry: 3, expected: [0, 0.1, 0.3, 0.6]),
        TimingCase(name: "exponential PT0.1S ×3", policy: .exponential, delay: .milliseconds(100), retry: 3, expected: [0, 0.2, 0.6, 1.4]),
        TimingCase(name: "exponential PT0.2S ×10 (platform default)", policy: .exponential, delay: .milliseconds(200), retry: 10,
                   expected: [0, 0.4, 1.2, 2.8, 6.0, 12.4, 25.2, 50.8, 102.0, 204.4, 409.2]),
        TimingCase(name: "no retries", policy: .linear, delay: .seconds(1), retry: 0, expected: [0]),
        TimingCase(name: "zero delay", policy: .linear, delay: .zero, retry: 2, expected: [0, 0, 0]),
    ])
    func timing(testCase: TimingCase) {
        let policy = ResolvedDelivery(retry: testCase.retry, backoffPolicy: testCase.policy,
                                      backoffDelay: testCase.delay, deadLetterSink: dls)
        var scenario = Scenario(policy: policy)
        scenario.run(responses: Array(repeating: 500, count: testCase.retry + 1))
        expectTimes(scenario.times(for: .subscriber), testCase.expected.map { 1_000 + $0 })
        #expect(scenario.actions.last == .sendToDeadLetter(errorCode: 500))
        #expect(scenario.machine.state == .deadLettering(attempt: 1))
        #expect(scenario.machine.target == .deadLetterSink)
        #expect(scenario.machine.subscriberErrorCode == 500)
    }

    @Test("retry actions carry the next attempt number and time")
    func retryActions() {
        let policy = ResolvedDelivery(retry: 2, backoffPolicy: .linear, backoffDelay: .milliseconds(100), deadLetterSink: dls)
        var scenario = Scenario(policy: policy, start: 0)
        scenario.run(responses: [nil, 503, 503])
        #expect(scenario.actions.count == 3)
        guard case .scheduleRetry(let first, 2) = scenario.actions[0],
              case .scheduleRetry(let second, 3) = scenario.actions[1]
        else {
            Issue.record("unexpected actions \(scenario.actions)")
            return
        }
        #expect(abs(first - 0.1) < 1e-9)
        #expect(abs(second - 0.3) < 1e-9)
        #expect(scenario.actions[2] == .sendToDeadLetter(errorCode: 503))
    }

    struct OutcomeCase: Sendable, CustomTestStringConvertible {
        let name: String
        let deadLetterSink: Destination?
        let responses: [Int?]
        let actions: [DeliveryStateMachine.Action]
        let state: DeliveryStateMachine.State
        var testDescription: String { name }
    }

    @Test("outcomes", arguments: [
        OutcomeCase(name: "202 completes", deadLetterSink: dls, responses: [202],
                    actions: [.complete], state: .delivered),
        OutcomeCase(name: "200 after a retry completes", deadLetterSink: dls, responses: [500, 200],
                    actions: [.scheduleRetry(at: 1_000.1, attempt: 2), .complete], state: .delivered),
        OutcomeCase(name: "permanent 400 goes straight to DLS", deadLetterSink: dls, responses: [400],
                    actions: [.sendToDeadLetter(errorCode: 400)], state: .deadLettering(attempt: 1)),
        OutcomeCase(name: "3xx is not retried", deadLetterSink: dls, responses: [302],
                    actions: [.sendToDeadLetter(errorCode: 302)], state: .deadLettering(attempt: 1)),
        OutcomeCase(name: "DLS accepts", deadLetterSink: dls, responses: [400, 202],
                    actions: [.sendToDeadLetter(errorCode: 400), .complete], state: .deadLettered),
        OutcomeCase(name: "no DLS drops after permanent failure", deadLetterSink: nil, responses: [403],
                    actions: [.drop(.noDeadLetterSink(lastStatus: 403))], state: .dropped(.noDeadLetterSink(lastStatus: 403))),
        OutcomeCase(name: "DLS permanent failure drops", deadLetterSink: dls, responses: [400, 400],
                    actions: [.sendToDeadLetter(errorCode: 400), .drop(.deadLetterSinkFailed(lastStatus: 400))],
                    state: .dropped(.deadLetterSinkFailed(lastStatus: 400))),
    ])
    func outcomes(testCase: OutcomeCase) {
        let policy = ResolvedDelivery(retry: 1, backoffPolicy: .linear, backoffDelay: .milliseconds(100),
                                      deadLetterSink: testCase.deadLetterSink)
        var scenario = Scenario(policy: policy)
        scenario.run(responses: testCase.responses)
        #expect(scenario.actions.count == testCase.actions.count)
        for (actual, expected) in zip(scenario.actions, testCase.actions) {
            switch (actual, expected) {
            case (.scheduleRetry(let a, let n), .scheduleRetry(let b, let m)):
                #expect(abs(a - b) < 1e-9 && n == m)
            default:
                #expect(actual == expected)
            }
        }
        #expect(scenario.machine.state == testCase.state)
    }

    @Test("no DLS: retries exhausted then dropped")
    func dropWithoutSink() {
        let policy = ResolvedDelivery(retry: 2, backoffPolicy: .exponential, backoffDelay: .milliseconds(100))
        var scenario = Scenario(policy: policy)
        scenario.run(responses: [500, nil, 429])
        #expect(scenario.attempts.count == 3)
        #expect(scenario.actions.last == .drop(.noDeadLetterSink(lastStatus: 429)))
        #expect(scenario.machine.isFinished)
    }

    @Test("dead-letter delivery is retried `retry` times with the same backoff, then dropped")
    func deadLetterRetries() {
        let policy = ResolvedDelivery(retry: 2, backoffPolicy: .linear, backoffDelay: .milliseconds(100), deadLetterSink: dls)
        var scenario = Scenario(policy: policy, start: 0)
        scenario.run(responses: [500, 500, 500, 503, 503, 503, 200])
        expectTimes(scenario.times(for: .subscriber), [0, 0.1, 0.3])
        expectTimes(scenario.times(for: .deadLetterSink), [0.3, 0.4, 0.6])
        #expect(scenario.actions.last == .drop(.deadLetterSinkFailed(lastStatus: 503)))
        #expect(scenario.attempts.count == 6)
        #expect(scenario.machine.subscriberErrorCode == 500)
        #expect(scenario.machine.lastStatus == 503)
    }

    @Test("Retry-After stretches the wait when retryAfterMax is set")
    func retryAfter() {
        let policy = ResolvedDelivery(retry: 1, backoffPolicy: .linear, backoffDelay: .milliseconds(100),
                                      retryAfterMax: .seconds(2), deadLetterSink: dls)
        var machine = DeliveryStateMachine(policy: policy)
        let action1 = machine.attemptFinished(status: 429, retryAfter: .seconds(5), now: 10)
        #expect(action1 == .scheduleRetry(at: 12, attempt: 2))

        var ignoring = DeliveryStateMachine(policy: ResolvedDelivery(retry: 1, backoffPolicy: .linear, backoffDelay: .seconds(1)))
        let action2 = ignoring.attemptFinished(status: 429, retryAfter: .seconds(5), now: 10)
        #expect(action2 == .scheduleRetry(at: 11, attempt: 2))
    }

    @Test("waiting, resume and the next attempt time")
    func waiting() {
        let policy = ResolvedDelivery(retry: 1, backoffPolicy: .linear, backoffDelay: .seconds(1), deadLetterSink: dls)
        var machine = DeliveryStateMachine(policy: policy)
        #expect(machine.state == .pending(attempt: 1))
        #expect(machine.nextAttemptTime(now: 5) == 5)
        _ = machine.attemptFinished(status: 500, retryAfter: nil, now: 5)
        #expect(machine.state == .waiting(until: 6))
        #expect(machine.attempt == 2)
        #expect(machine.nextAttemptTime(now: 5.5) == 6)
        let resumed3 = machine.resume(now: 5.9)
        #expect(!resumed3)
        let resumed4 = machine.resume(now: 6)
        #expect(resumed4)
        #expect(machine.state == .pending(attempt: 2))
    }

    @Test("a report while waiting counts as the awaited attempt")
    func reportWhileWaiting() {
        let policy = ResolvedDelivery(retry: 1, backoffPolicy: .linear, backoffDelay: .seconds(1), deadLetterSink: dls)
        var machine = DeliveryStateMachine(policy: policy)
        _ = machine.attemptFinished(status: 500, retryAfter: nil, now: 0)
        let action3 = machine.attemptFinished(status: 500, retryAfter: nil, now: 1)
        #expect(action3 == .sendToDeadLetter(errorCode: 500))
    }

    @Test("reports after the end repeat the final action and change nothing")
    func idempotentAfterEnd() {
        let policy = ResolvedDelivery(retry: 3, backoffPolicy: .linear, backoffDelay: .seconds(1))
        var delivered = DeliveryStateMachine(policy: policy)
        let action4 = delivered.attemptFinished(status: 200, retryAfter: nil, now: 0)
        #expect(action4 == .complete)
        let action5 = delivered.attemptFinished(status: 500, retryAfter: nil, now: 1)
        #expect(action5 == .complete)
        #expect(delivered.state == .delivered)
        let resumed5 = delivered.resume(now: 100)
        #expect(!resumed5)
        #expect(delivered.nextAttemptTime(now: 1) == nil)

        var dropped = DeliveryStateMachine(policy: policy)
        let action6 = dropped.attemptFinished(status: 400, retryAfter: nil, now: 0)
        #expect(action6 == .drop(.noDeadLetterSink(lastStatus: 400)))
        let action7 = dropped.attemptFinished(status: 200, retryAfter: nil, now: 1)
        #expect(action7 == .drop(.noDeadLetterSink(lastStatus: 400)))
    }

    @Test("restores persisted state")
    func restore() {
        let policy = ResolvedDelivery(retry: 2, backoffPolicy: .linear, backoffDelay: .seconds(1), deadLetterSink: dls)
        var waitingForSink = DeliveryStateMachine(policy: policy, restoring: .waiting(until: 50), target: .deadLetterSink,
                                                  attempt: 3, lastStatus: 503, subscriberErrorCode: 500)
        let resumed6 = waitingForSink.resume(now: 50)
        #expect(resumed6)
        #expect(waitingForSink.state == .deadLettering(attempt: 3))
        let action8 = waitingForSink.attemptFinished(status: 503, retryAfter: nil, now: 50)
        #expect(action8 == .drop(.deadLetterSinkFailed(lastStatus: 503)))

        let pending = DeliveryStateMachine(policy: policy, restoring: .pending(attempt: 0), target: .deadLetterSink, attempt: 9)
        #expect(pending.target == .subscriber)
        #expect(pending.attempt == 1)
        #expect(pending.state == .pending(attempt: 1))
    }
}
