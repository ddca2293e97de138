/// Collects the errors of one evaluation.
///
/// Filtering only needs to know *whether* an error happened, so in that mode messages are never
/// formatted and nothing is allocated; `evaluate` asks for the full list.
struct CESQLEvaluationContext {
    let recordsErrors: Bool
    private(set) var errors: [CESQLError] = []
    private(set) var errorCount = 0

    init(recordsErrors: Bool) {
        self.recordsErrors = recordsErrors
    }

    mutating func raise(_ kind: CESQLError.Kind, _ message: @autoclosure () -> String) {
        errorCount += 1
        if recordsErrors { errors.append(CESQLError(kind: kind, message: message())) }
    }
}

/// Walks a compiled tree against one event.
///
/// Error semantics follow the conformance suite, which is the spec's "fail fast" mode (§4.1)
/// made precise: the operator or function that detects a problem returns the value the spec
/// prescribes for it (`0` for division by zero, `2147483647` for `ABS(-2147483648)`, `x` for
/// `LEFT(x, -1)`, the zero value for a failed cast), and every enclosing operator whose operand
/// raised an error stops evaluating and returns the zero value of its own return type. Hence
/// `missing / 0` is `0` with only a missing-attribute error, and `true AND (1 != 1 / 0)` is
/// `false`. `AND` and `OR` short-circuit (§3.4.2), and so does `IN` once an element matches.
enum CESQLEvaluator {
    static func evaluate<Event: EventAttributeReader>(
        _ node: CESQLNode, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue {
        switch node {
        case .literal(let value):
            return value
        case .attribute(let name):
            return attribute(name, event, &context)
        case .exists(let name):
            return .boolean(event.attribute(name) != nil)
        case .not(let operand):
            guard let value = boolean(operand, event, &context) else { return .boolean(false) }
            return .boolean(!value)
        case .negate(let operand):
            guard let value = integer(operand, event, &context) else { return .integer(0) }
            return .integer(negate(value, &context))
        case .arithmetic(let op, let lhs, let rhs):
            guard let left = integer(lhs, event, &context), let right = integer(rhs, event, &context) else {
                return .integer(0)
            }
            return .integer(arithmetic(op, left, right, &context))
        case .comparison(let op, let lhs, let rhs):
            guard let left = integer(lhs, event, &context), let right = integer(rhs, event, &context) else {
                return .boolean(false)
            }
            return .boolean(op.compare(left, right))
        case .equality(let negated, let lhs, let rhs):
            return equality(lhs, rhs, negated: negated, event, &context)
        case .logical(let op, let lhs, let rhs):
            return logical(op, lhs, rhs, event, &context)
        case .like(let operand, let pattern, let negated):
            guard let text = string(operand, event, &context) else { return .boolean(false) }
            return .boolean(pattern.matches(text) != negated)
        case .membership(let subject, let set, let negated):
            return membership(subject, set, negated: negated, event, &context)
        case .call(let call):
            return CESQLEvaluator.call(call, event, &context)
        case .unresolvedCall(let name, let arity, let reason):
            context.raise(.missingFunction, "cannot call \(name) with \(arity) argument(s): \(reason)")
            return .boolean(false)
        }
    }

    // MARK: Operands

    /// A missing attribute reports the error and yields `false`, the zero value the spec assumes
    /// when the type of the subexpression is unknown (§3.2); enclosing operators then replace it
    /// with the zero value of their own type.
    private static func attribute<Event: EventAttributeReader>(
        _ name: String, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue {
        guard let value = event.attribute(name) else {
            context.raise(.missingAttribute, "the event has no attribute \"\(name)\"")
            return .boolean(false)
        }
        return CESQLValue(value)
    }

    /// Evaluates an operand; nil when it (or anything beneath it) raised an error.
    private static func value<Event: EventAttributeReader>(
        _ node: CESQLNode, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue? {
        let errorsBefore = context.errorCount
        let result = evaluate(node, event, &context)
        return context.errorCount == errorsBefore ? result : nil
    }

    static func integer<Event: EventAttributeReader>(
        _ node: CESQLNode, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> Int32? {
        guard let operand = value(node, event, &context) else { return nil }
        return castToInteger(operand, &context)
    }

    static func boolean<Event: EventAttributeReader>(
        _ node: CESQLNode, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> Bool? {
        guard let operand = value(node, event, &context) else { return nil }
        return castToBoolean(operand, &context)
    }

    static func string<Event: EventAttributeReader>(
        _ node: CESQLNode, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> String? {
        value(node, event, &context)?.castToString
    }

    static func castToInteger(_ value: CESQLValue, _ context: inout CESQLEvaluationContext) -> Int32? {
        guard let result = value.castToInteger else {
            context.raise(.cast, "cannot convert \(value) to Integer")
            return nil
        }
        return result
    }

    static func castToBoolean(_ value: CESQLValue, _ context: inout CESQLEvaluationContext) -> Bool? {
        guard let result = value.castToBoolean else {
            context.raise(.cast, "cannot convert \(value) to Boolean; only 'true' and 'false' (any case) convert")
            return nil
        }
        return result
    }

    // MARK: Operators

    /// Overflow is a math error; like `ABS`, the result saturates to the nearest 32-bit value.
    private static func negate(_ value: Int32, _ context: inout CESQLEvaluationContext) -> Int32 {
        guard value != .min else {
            context.raise(.math, "-(\(value)) overflows a 32-bit integer")
            return .max
        }
        return -value
    }

    private static func arithmetic(
        _ op: CESQLArithmeticOperator, _ lhs: Int32, _ rhs: Int32, _ context: inout CESQLEvaluationContext
    ) -> Int32 {
        if (op == .divide || op == .remainder) && rhs == 0 {
            context.raise(.math, "division by zero in \(lhs) \(op.symbol) 0")
            return 0
        }
        // Every 32-bit operation is exact in 64 bits, so compute there and range-check once.
        let (left, right) = (Int64(lhs), Int64(rhs))
        let exact = switch op {
        case .add: left + right
        case .subtract: left - right
        case .multiply: left * right
        case .divide: left / right
        case .remainder: left % right
        }
        guard let result = Int32(exactly: exact) else {
            context.raise(.math, "\(lhs) \(op.symbol) \(rhs) overflows a 32-bit integer")
            return exact > 0 ? .max : .min
        }
        return result
    }

    /// `=` is overloaded for all three types, so the right operand's type picks the overload
    /// and the left operand is cast to it (§3.7): `'TRUE' = true` is true, `true = 'TRUE'` false.
    private static func equality<Event: EventAttributeReader>(
        _ lhs: CESQLNode, _ rhs: CESQLNode, negated: Bool, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue {
        guard let left = value(lhs, event, &context),
              let right = value(rhs, event, &context),
              let equal = equals(right, castingOther: left, &context)
        else { return .boolean(false) }
        return .boolean(equal != negated)
    }

    /// Compares `other`, cast to the type of `reference`, with `reference`. Nil on a cast error.
    private static func equals(
        _ reference: CESQLValue, castingOther other: CESQLValue, _ context: inout CESQLEvaluationContext
    ) -> Bool? {
        switch reference {
        case .integer(let expected):
            castToInteger(other, &context).map { $0 == expected }
        case .boolean(let expected):
            castToBoolean(other, &context).map { $0 == expected }
        case .string(let expected):
            UTF8Comparison.equal(other.castToString, expected)
        }
    }

    private static func logical<Event: EventAttributeReader>(
        _ op: CESQLLogicalOperator, _ lhs: CESQLNode, _ rhs: CESQLNode, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue {
        guard let left = boolean(lhs, event, &context) else { return .boolean(false) }
        switch (op, left) {
        case (.and, false): return .boolean(false)
        case (.or, true): return .boolean(true)
        default: break
        }
        guard let right = boolean(rhs, event, &context) else { return .boolean(false) }
        return .boolean(op == .xor ? left != right : right)
    }

    /// Set elements are cast to the subject's type (§3.7), then compared like `=`.
    private static func membership<Event: EventAttributeReader>(
        _ subject: CESQLNode, _ set: [CESQLNode], negated: Bool, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue {
        guard let reference = value(subject, event, &context) else { return .boolean(false) }
        for element in set {
            guard let candidate = value(element, event, &context),
                  let equal = equals(reference, castingOther: candidate, &context)
            else { return .boolean(false) }
            if equal { return .boolean(!negated) }
        }
        return .boolean(negated)
    }

    // MARK: Functions

    private static func call<Event: EventAttributeReader>(
        _ call: CESQLFunctionCall, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue {
        let zero = call.function.returnType.zero
        switch call {
        case .length(let x):
            guard let text = string(x, event, &context) else { return zero }
            return .integer(Int32(clamping: text.unicodeScalars.count))
        case .concat(let parts):
            return concatenate(parts, separator: nil, event, &context).map(CESQLValue.string) ?? zero
        case .concatWS(let delimiter, let parts):
            guard let separator = string(delimiter, event, &context),
                  let joined = concatenate(parts, separator: separator, event, &context)
            else { return zero }
            return .string(joined)
        case .lower(let x):
            return string(x, event, &context).map { .string($0.lowercased()) } ?? zero
        case .upper(let x):
            return string(x, event, &context).map { .string($0.uppercased()) } ?? zero
        case .trim(let x):
            return string(x, event, &context).map { .string(CESQLBuiltins.trim($0)) } ?? zero
        case .left(let x, let count):
            guard let text = string(x, event, &context), let n = integer(count, event, &context) else { return zero }
            return .string(CESQLBuiltins.left(text, n, &context))
        case .right(let x, let count):
            guard let text = string(x, event, &context), let n = integer(count, event, &context) else { return zero }
            return .string(CESQLBuiltins.right(text, n, &context))
        case .substring(let x, let position, let length):
            return substring(x, position, length, event, &context) ?? zero
        case .abs(let x):
            guard let number = integer(x, event, &context) else { return zero }
            return .integer(CESQLBuiltins.abs(number, &context))
        default:
            return cast(call, event, &context) ?? zero
        }
    }

    private static func concatenate<Event: EventAttributeReader>(
        _ parts: [CESQLNode], separator: String?, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> String? {
        var result = ""
        for (offset, part) in parts.enumerated() {
            guard let text = string(part, event, &context) else { return nil }
            if offset > 0, let separator { result += separator }
            result += text
        }
        return result
    }

    private static func substring<Event: EventAttributeReader>(
        _ x: CESQLNode, _ position: CESQLNode, _ length: CESQLNode?, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue? {
        guard let text = string(x, event, &context), let start = integer(position, event, &context) else { return nil }
        var count: Int32?
        if let length {
            guard let value = integer(length, event, &context) else { return nil }
            count = value
        }
        return .string(CESQLBuiltins.substring(text, start, count, &context))
    }

    /// `INT`, `BOOL`, `STRING` apply the casts of §3.7 explicitly; `IS_INT` / `IS_BOOL` report
    /// whether that cast would succeed, without raising an error.
    private static func cast<Event: EventAttributeReader>(
        _ call: CESQLFunctionCall, _ event: Event, _ context: inout CESQLEvaluationContext
    ) -> CESQLValue? {
        switch call {
        case .castInteger(let x): integer(x, event, &context).map(CESQLValue.integer)
        case .castBoolean(let x): boolean(x, event, &context).map(CESQLValue.boolean)
        case .castString(let x): string(x, event, &context).map(CESQLValue.string)
        case .isInteger(let x): value(x, event, &context).map { .boolean($0.castToInteger != nil) }
        case .isBoolean(let x): value(x, event, &context).map { .boolean($0.castToBoolean != nil) }
        default: nil
        }
    }
}
