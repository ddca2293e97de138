/// Recursive-descent parser from tokens to a `CESQLNode` tree.
///
/// Precedence, tightest first (spec §3.6): function calls and atoms; unary `NOT` and `-`;
/// postfix `LIKE` / `NOT LIKE`, `IN` / `NOT IN`; `* / %`; `+ -`; comparisons; and finally `AND`,
/// `OR`, `XOR`, which the spec places on one level, evaluated left to right. (So, unlike most SQL
/// dialects, `a OR b AND c` means `(a OR b) AND c`.)
struct CESQLParser {
    /// Deep nesting is legal CESQL but would overflow the stack of the recursive parser and
    /// evaluator; no realistic filter comes close to this bound. It caps both the parser's
    /// recursion (parentheses, chained `NOT`) and the height of the compiled tree (long operator
    /// chains such as `1 + 1 + … + 1`).
    static let maximumDepth = 256

    /// A subtree plus its height, tracked while building so the bound is checked without a
    /// recursive walk.
    private struct Parsed {
        var node: CESQLNode
        var height: Int
    }

    private let tokens: [CESQLToken]
    private var index = 0
    private var depth = 0

    private init(tokens: [CESQLToken]) {
        self.tokens = tokens
    }

    static func parse(_ expression: String) throws(CESQLError) -> CESQLNode {
        var parser = CESQLParser(tokens: try CESQLLexer.tokenize(expression))
        if parser.current.kind == .end {
            throw CESQLError(kind: .parse, message: "the expression is empty", position: 0)
        }
        let root = try parser.parseExpression()
        guard parser.current.kind == .end else {
            throw parser.unexpected("an operator or the end of the expression")
        }
        return root.node
    }

    // MARK: Token access

    private var current: CESQLToken {
        // The lexer always terminates the list with `.end`, and `advance` never moves past it.
        tokens[Swift.min(index, tokens.count - 1)]
    }

    private var next: CESQLToken {
        tokens[Swift.min(index + 1, tokens.count - 1)]
    }

    private mutating func advance() {
        if index < tokens.count - 1 { index += 1 }
    }

    private mutating func consumeKeyword(_ keyword: CESQLKeyword) -> Bool {
        guard current.kind == .keyword(keyword) else { return false }
        advance()
        return true
    }

    private mutating func expect(_ kind: CESQLToken.Kind, _ description: String) throws(CESQLError) {
        guard current.kind == kind else { throw unexpected(description) }
        advance()
    }

    private func unexpected(_ expectation: String) -> CESQLError {
        CESQLError(
            kind: .parse,
            message: "expected \(expectation) but found \(current.kind.display)",
            position: current.offset
        )
    }

    private func tooDeep(at offset: Int) -> CESQLError {
        CESQLError(kind: .parse, message: "the expression nests deeper than \(Self.maximumDepth) levels", position: offset)
    }

    /// Wraps `node` as the parent of `children`, enforcing the height bound.
    private func build(_ node: CESQLNode, _ children: [Parsed], at offset: Int) throws(CESQLError) -> Parsed {
        let height = 1 + (children.map(\.height).max() ?? 0)
        guard height <= Self.maximumDepth else { throw tooDeep(at: offset) }
        return Parsed(node: node, height: height)
    }

    /// Runs `body` one recursion level deeper, bounding the parser's own stack use.
    private mutating func nested(
        _ body: (inout CESQLParser) throws(CESQLError) -> Parsed
    ) throws(CESQLError) -> Parsed {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maximumDepth else { throw tooDeep(at: current.offset) }
        return try body(&self)
    }

    // MARK: Grammar

    private mutating func parseExpression() throws(CESQLError) -> Parsed {
        try nested { parser throws(CESQLError) in try parser.parseLogical() }
    }

    private mutating func parseLogical() throws(CESQLError) -> Parsed {
        var lhs = try parseComparison()
        while case .keyword(let keyword) = current.kind, let op = Self.logicalOperator(keyword) {
            let offset = current.offset
            advance()
            let rhs = try parseComparison()
            lhs = try build(.logical(op, lhs.node, rhs.node), [lhs, rhs], at: offset)
        }
        return lhs
    }

    private static func logicalOperator(_ keyword: CESQLKeyword) -> CESQLLogicalOperator? {
        switch keyword {
        case .and: .and
        case .or: .or
        case .xor: .xor
        default: nil
        }
    }

    private mutating func parseComparison() throws(CESQLError) -> Parsed {
        var lhs = try parseAdditive()
        while let make = Self.comparisonBuilder(current.kind) {
            let offset = current.offset
            advance()
            let rhs = try parseAdditive()
            lhs = try build(make(lhs.node, rhs.node), [lhs, rhs], at: offset)
        }
        return lhs
    }

    private static func comparisonBuilder(_ kind: CESQLToken.Kind) -> ((CESQLNode, CESQLNode) -> CESQLNode)? {
        switch kind {
        case .equal: { .equality(negated: false, $0, $1) }
        case .notEqual, .lessGreater: { .equality(negated: true, $0, $1) }
        case .less: { .comparison(.less, $0, $1) }
        case .lessOrEqual: { .comparison(.lessOrEqual, $0, $1) }
        case .greater: { .comparison(.greater, $0, $1) }
        case .greaterOrEqual: { .comparison(.greaterOrEqual, $0, $1) }
        default: nil
        }
    }

    private mutating func parseAdditive() throws(CESQLError) -> Parsed {
        var lhs = try parseMultiplicative()
        while let op = Self.additiveOperator(current.kind) {
            let offset = current.offset
            advance()
            let rhs = try parseMultiplicative()
            lhs = try build(.arithmetic(op, lhs.node, rhs.node), [lhs, rhs], at: offset)
        }
        return lhs
    }

    private static func additiveOperator(_ kind: CESQLToken.Kind) -> CESQLArithmeticOperator? {
        switch kind {
        case .plus: .add
        case .minus: .subtract
        default: nil
        }
    }

    private mutating func parseMultiplicative() throws(CESQLError) -> Parsed {
        var lhs = try parsePostfix()
        while let op = Self.multiplicativeOperator(current.kind) {
            let offset = current.offset
            advance()
            let rhs = try parsePostfix()
            lhs = try build(.arithmetic(op, lhs.node, rhs.node), [lhs, rhs], at: offset)
        }
        return lhs
    }

    private static func multiplicativeOperator(_ kind: CESQLToken.Kind) -> CESQLArithmeticOperator? {
        switch kind {
        case .star: .multiply
        case .slash: .divide
        case .percent: .remainder
        default: nil
        }
    }

    /// `x [NOT] LIKE 'pattern'` and `x [NOT] IN (…)`, applied left to right.
    private mutating func parsePostfix() throws(CESQLError) -> Parsed {
        var subject = try parseUnary()
        while true {
            let offset = current.offset
            let negated = current.kind == .keyword(.not)
                && (next.kind == .keyword(.like) || next.kind == .keyword(.in))
            if negated { advance() }
            if consumeKeyword(.like) {
                let pattern = try parseLikePattern()
                subject = try build(.like(subject.node, pattern, negated: negated), [subject], at: offset)
            } else if consumeKeyword(.in) {
                let set = try parseSet()
                subject = try build(.membership(subject.node, set.map(\.node), negated: negated), [subject] + set, at: offset)
            } else {
                return subject
            }
        }
    }

    /// The pattern must be a string literal as written; anything else is a parse error (§3.4.3).
    private mutating func parseLikePattern() throws(CESQLError) -> CESQLLikePattern {
        guard case .string(let pattern) = current.kind else {
            throw unexpected("a quoted string literal as the LIKE pattern")
        }
        advance()
        return CESQLLikePattern(pattern)
    }

    private mutating func parseSet() throws(CESQLError) -> [Parsed] {
        try expect(.leftParen, "'(' to open the IN set")
        var elements = [try parseExpression()]
        while current.kind == .comma {
            advance()
            elements.append(try parseExpression())
        }
        try expect(.rightParen, "',' or ')' to close the IN set")
        return elements
    }

    private mutating func parseUnary() throws(CESQLError) -> Parsed {
        let offset = current.offset
        switch current.kind {
        case .keyword(.not):
            advance()
            let operand = try nested { parser throws(CESQLError) in try parser.parseUnary() }
            return try build(.not(operand.node), [operand], at: offset)
        case .minus:
            if case .integer(let digits) = next.kind {
                advance()
                advance()
                return Parsed(node: .literal(.integer(try Self.integer("-" + digits, at: offset))), height: 1)
            }
            advance()
            let operand = try nested { parser throws(CESQLError) in try parser.parseUnary() }
            return try build(.negate(operand.node), [operand], at: offset)
        case .plus:
            guard case .integer(let digits) = next.kind else {
                throw CESQLError(kind: .parse, message: "a leading '+' is only allowed on an integer literal", position: offset)
            }
            advance()
            advance()
            return Parsed(node: .literal(.integer(try Self.integer(digits, at: offset))), height: 1)
        default:
            return try parsePrimary()
        }
    }

    private mutating func parsePrimary() throws(CESQLError) -> Parsed {
        let token = current
        let leaf: CESQLNode
        switch token.kind {
        case .integer(let digits):
            advance()
            leaf = .literal(.integer(try Self.integer(digits, at: token.offset)))
        case .string(let text):
            advance()
            leaf = .literal(.string(text))
        case .keyword(.true):
            advance()
            leaf = .literal(.boolean(true))
        case .keyword(.false):
            advance()
            leaf = .literal(.boolean(false))
        case .keyword(.exists):
            advance()
            leaf = .exists(try parseIdentifier(after: "EXISTS"))
        case .word(let word):
            if next.kind == .leftParen { return try parseCall(named: word, at: token.offset) }
            advance()
            leaf = .attribute(try Self.identifier(word, at: token.offset))
        case .leftParen:
            advance()
            let inner = try parseExpression()
            try expect(.rightParen, "')' to close the parenthesis")
            return inner
        default:
            throw unexpected("a value, attribute, function call or '('")
        }
        return Parsed(node: leaf, height: 1)
    }

    private mutating func parseIdentifier(after keyword: String) throws(CESQLError) -> String {
        guard case .word(let word) = current.kind, next.kind != .leftParen else {
            throw unexpected("an attribute name after \(keyword)")
        }
        let offset = current.offset
        advance()
        return try Self.identifier(word, at: offset)
    }

    private mutating func parseCall(named name: String, at offset: Int) throws(CESQLError) -> Parsed {
        guard Self.isFunctionName(name) else {
            throw CESQLError(
                kind: .parse,
                message: "'\(name)' is not a valid function name; function names are letters and underscores starting with a letter",
                position: offset
            )
        }
        advance()
        advance()
        var arguments: [Parsed] = []
        if current.kind != .rightParen {
            arguments.append(try parseExpression())
            while current.kind == .comma {
                advance()
                arguments.append(try parseExpression())
            }
        }
        try expect(.rightParen, "',' or ')' to close the argument list of \(name)")
        let call = CESQLFunctionCall.resolve(name: name, arguments: arguments.map(\.node))
        return try build(call, arguments, at: offset)
    }

    // MARK: Lexical rules

    /// Integer literals must fit in 32 bits (spec §2.2); `-2147483648` is accepted because the
    /// sign is folded in before the range check.
    private static func integer(_ text: String, at offset: Int) throws(CESQLError) -> Int32 {
        guard let value = Int32(text, radix: 10) else {
            throw CESQLError(kind: .parse, message: "integer literal \(text) does not fit in a signed 32-bit integer", position: offset)
        }
        return value
    }

    /// Attribute names are letters and digits (the CloudEvents naming rule). They are looked up
    /// in lower case because CloudEvents attribute names are lower case by definition, which
    /// keeps `EXISTS SOURCE` working as the conformance suite expects.
    private static func identifier(_ word: String, at offset: Int) throws(CESQLError) -> String {
        guard word.unicodeScalars.allSatisfy({ $0 != "_" }) else {
            throw CESQLError(
                kind: .parse,
                message: "'\(word)' is not a valid attribute name; attribute names contain only letters and digits",
                position: offset
            )
        }
        return word.lowercased()
    }

    private static func isFunctionName(_ word: String) -> Bool {
        guard let first = word.unicodeScalars.first, first != "_", !("0"..."9").contains(first) else { return false }
        return word.unicodeScalars.allSatisfy { !("0"..."9").contains($0) }
    }
}
