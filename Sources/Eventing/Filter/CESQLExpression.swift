/// The compiled form of a CESQL expression: an immutable tree that the evaluator walks once per
/// event. Operators are resolved at compile time (function names, arities, `LIKE` patterns) so
/// evaluation does no string parsing and no dictionary lookups beyond the event's own.
indirect enum CESQLNode: Sendable {
    case literal(CESQLValue)
    /// A context attribute or extension, by its lower-case name.
    case attribute(String)
    case exists(String)
    case not(CESQLNode)
    case negate(CESQLNode)
    case arithmetic(CESQLArithmeticOperator, CESQLNode, CESQLNode)
    case comparison(CESQLComparisonOperator, CESQLNode, CESQLNode)
    /// `=` (or `!=` / `<>` when negated). Kept apart from the ordering comparisons because it is
    /// the one ambiguous binary operator: the right operand's runtime type decides the cast.
    case equality(negated: Bool, CESQLNode, CESQLNode)
    case logical(CESQLLogicalOperator, CESQLNode, CESQLNode)
    case like(CESQLNode, CESQLLikePattern, negated: Bool)
    case membership(CESQLNode, [CESQLNode], negated: Bool)
    case call(CESQLFunctionCall)
    /// A call no built-in can serve. It evaluates to `false` with a missing-function error every
    /// time (spec §3.5); its arguments are never evaluated.
    case unresolvedCall(name: String, arity: Int, reason: String)
}

enum CESQLArithmeticOperator: Sendable {
    case add, subtract, multiply, divide, remainder

    var symbol: String {
        switch self {
        case .add: "+"
        case .subtract: "-"
        case .multiply: "*"
        case .divide: "/"
        case .remainder: "%"
        }
    }
}

enum CESQLComparisonOperator: Sendable {
    case less, lessOrEqual, greater, greaterOrEqual

    func compare(_ lhs: Int32, _ rhs: Int32) -> Bool {
        switch self {
        case .less: lhs < rhs
        case .lessOrEqual: lhs <= rhs
        case .greater: lhs > rhs
        case .greaterOrEqual: lhs >= rhs
        }
    }
}

enum CESQLLogicalOperator: Sendable {
    case and, or, xor
}

extension CESQLNode {
    /// The type the node yields; used to produce the zero value when an operand fails.
    var returnType: CESQLType {
        switch self {
        case .literal(let value): value.type
        // An attribute's type is only known at run time; a missing one counts as Boolean (§3.2).
        case .attribute: .boolean
        case .exists, .not, .comparison, .equality, .logical, .like, .membership, .unresolvedCall: .boolean
        case .negate, .arithmetic: .integer
        case .call(let call): call.function.returnType
        }
    }

    /// True when the node's value cannot depend on the event, so it can be computed at compile
    /// time. Unresolved calls are excluded so their error keeps being reported.
    var isConstant: Bool {
        switch self {
        case .literal: true
        case .attribute, .exists, .unresolvedCall: false
        case .not(let operand), .negate(let operand): operand.isConstant
        case .arithmetic(_, let lhs, let rhs), .comparison(_, let lhs, let rhs),
             .equality(_, let lhs, let rhs), .logical(_, let lhs, let rhs):
            lhs.isConstant && rhs.isConstant
        case .like(let operand, _, _): operand.isConstant
        case .membership(let subject, let set, _): subject.isConstant && set.allSatisfy(\.isConstant)
        case .call(let call): call.arguments.allSatisfy(\.isConstant)
        }
    }

    /// Rebuilds the node with `transform` applied to each direct child.
    func mapChildren(_ transform: (CESQLNode) -> CESQLNode) -> CESQLNode {
        switch self {
        case .literal, .attribute, .exists, .unresolvedCall: self
        case .not(let operand): .not(transform(operand))
        case .negate(let operand): .negate(transform(operand))
        case .arithmetic(let op, let lhs, let rhs): .arithmetic(op, transform(lhs), transform(rhs))
        case .comparison(let op, let lhs, let rhs): .comparison(op, transform(lhs), transform(rhs))
        case .equality(let negated, let lhs, let rhs): .equality(negated: negated, transform(lhs), transform(rhs))
        case .logical(let op, let lhs, let rhs): .logical(op, transform(lhs), transform(rhs))
        case .like(let operand, let pattern, let negated): .like(transform(operand), pattern, negated: negated)
        case .membership(let subject, let set, let negated): .membership(transform(subject), set.map(transform), negated: negated)
        case .call(let call): .call(call.mapArguments(transform))
        }
    }
}
