import Testing
@testable import Eventing

/// One case of the CESQL v1.0 conformance suite (cloudevents/spec `cesql/cesql_tck/*.yaml`),
/// restated in Swift. Field meanings follow the TCK README: `result` and `error` are optional;
/// `event` replaces the input event; `eventOverrides` patch the default event.
struct TCKCase: Sendable, CustomTestStringConvertible {
    let name: String
    let expression: String
    let result: CESQLValue?
    let error: CESQLError.Kind?
    let event: [String: CloudEventValue]?
    let overrides: [String: CloudEventValue]

    init(
        _ name: String,
        _ expression: String,
        _ result: CESQLValue? = nil,
        error: CESQLError.Kind? = nil,
        event: [String: CloudEventValue]? = nil,
        overrides: [String: CloudEventValue] = [:]
    ) {
        self.name = name
        self.expression = expression
        self.result = result
        self.error = error
        self.event = event
        self.overrides = overrides
    }

    var testDescription: String { "\(name): \(expression)" }

    /// The TCK README says any valid event may be used when `event` is absent; the minimal one
    /// carries only the required attributes, so the suite's "missing" attributes really are.
    var inputEvent: TestEvent {
        (event.map(TestEvent.init) ?? TestEvent.minimal).with(overrides)
    }
}

/// Runs TCK cases. A case that cannot pass fails with a recorded issue; none are skipped.
enum TCK {
    static func run(_ testCase: TCKCase, sourceLocation: SourceLocation = #_sourceLocation) {
        if testCase.error == .parse {
            expectParseError(testCase, sourceLocation: sourceLocation)
            return
        }
        let program: CESQLProgram
        do {
            program = try CESQLProgram(testCase.expression)
        } catch {
            Issue.record("unexpected parse failure: \(error)", sourceLocation: sourceLocation)
            return
        }
        let event = testCase.inputEvent
        let outcome = program.evaluate(event)
        if let expected = testCase.result {
            #expect(outcome.value == expected, "value", sourceLocation: sourceLocation)
        }
        let kinds = outcome.errors.map(\.kind)
        if let expectedError = testCase.error {
            #expect(!kinds.isEmpty && kinds.allSatisfy { $0 == expectedError }, "errors: \(outcome.errors)", sourceLocation: sourceLocation)
            #expect(!program.matches(event), "an evaluation with errors must not match", sourceLocation: sourceLocation)
        } else {
            #expect(kinds.isEmpty, "unexpected errors: \(outcome.errors)", sourceLocation: sourceLocation)
            #expect(program.matches(event) == (outcome.value == .boolean(true)), "matches() disagrees with evaluate()", sourceLocation: sourceLocation)
        }
    }

    private static func expectParseError(_ testCase: TCKCase, sourceLocation: SourceLocation) {
        do {
            let program = try CESQLProgram(testCase.expression)
            Issue.record("expected a parse error, but it compiled (evaluates to \(program.evaluate(testCase.inputEvent).value))", sourceLocation: sourceLocation)
        } catch {
            #expect(error.kind == .parse, sourceLocation: sourceLocation)
        }
    }
}
