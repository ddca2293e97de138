/// A compiled CloudEvents SQL (CESQL v1.0) expression.
///
/// Compile once, evaluate many times: `init` lexes, parses, resolves functions, pre-compiles
/// `LIKE` patterns and folds event-independent subexpressions; evaluation only walks the tree.
///
/// ```swift
/// let program = try CESQLProgram("type LIKE 'com.example.%' AND INT(priority) > 3")
/// if program.matches(event) { … }
/// ```
public struct CESQLProgram: Sendable {
    /// The expression as written.
    public let expression: String
    /// Problems that make *every* evaluation report an error regardless of the event, found at
    /// compile time (calls to unknown functions or with the wrong number of arguments). Such an
    /// expression still compiles, as the spec requires these to surface as evaluation errors,
    /// but a filter built from it can never match; validators should reject it.
    public let staticErrors: [CESQLError]

    let root: CESQLNode

    /// Compiles `expression`, throwing a `.parse` error with the offending offset when it is not
    /// valid CESQL.
    public init(_ expression: String) throws(CESQLError) {
        let parsed = try CESQLParser.parse(expression)
        self.expression = expression
        self.staticErrors = Self.unresolvedCalls(in: parsed)
        self.root = Self.fold(parsed)
    }

    /// Evaluates the expression against `event`, returning its value and the errors raised.
    /// The value is always defined (CESQL is total); see `CESQLEvaluator` for how errors shape it.
    public func evaluate(_ event: some EventAttributeReader) -> (value: CESQLValue, errors: [CESQLError]) {
        var context = CESQLEvaluationContext(recordsErrors: true)
        let value = CESQLEvaluator.evaluate(root, event, &context)
        return (value, context.errors)
    }

    /// Filter semantics (spec §1.2, as Knative applies them): the event passes only when the
    /// expression yields Boolean `true` with no error. Errors are counted, never formatted.
    public func matches(_ event: some EventAttributeReader) -> Bool {
        var context = CESQLEvaluationContext(recordsErrors: false)
        let value = CESQLEvaluator.evaluate(root, event, &context)
        return context.errorCount == 0 && value == .boolean(true)
    }

    // MARK: Compile-time passes

    private static func unresolvedCalls(in node: CESQLNode) -> [CESQLError] {
        var errors: [CESQLError] = []
        collectUnresolvedCalls(node, into: &errors)
        return errors
    }

    private static func collectUnresolvedCalls(_ node: CESQLNode, into errors: inout [CESQLError]) {
        if case .unresolvedCall(let name, let arity, let reason) = node {
            errors.append(CESQLError(kind: .missingFunction, message: "cannot call \(name) with \(arity) argument(s): \(reason)"))
        }
        _ = node.mapChildren { child in
            collectUnresolvedCalls(child, into: &errors)
            return child
        }
    }

    /// Replaces event-independent subtrees that evaluate cleanly by their value, top-down so the
    /// largest constant subtree is folded at once. Subtrees that raise an error are kept, so the
    /// error is still reported by every evaluation, as the spec requires.
    private static func fold(_ node: CESQLNode) -> CESQLNode {
        if case .literal = node { return node }
        if node.isConstant {
            var context = CESQLEvaluationContext(recordsErrors: false)
            let value = CESQLEvaluator.evaluate(node, NoAttributes(), &context)
            if context.errorCount == 0 { return .literal(value) }
        }
        return node.mapChildren(fold)
    }
}

/// The empty event used for constant folding; constant subtrees never read attributes.
private struct NoAttributes: EventAttributeReader {
    func attribute(_ name: String) -> CloudEventValue? { nil }
}
