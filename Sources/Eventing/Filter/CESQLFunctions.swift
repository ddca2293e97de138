/// The built-in functions of CESQL v1.0 (spec §3.5 and the casting functions of §3.7), plus
/// `IS_INT` / `IS_BOOL`, which the Go SDK (and therefore Knative) also provides.
///
/// "Character" throughout means Unicode scalar value: it is stable across Unicode versions and
/// matches how the Go SDK counts runes.
enum CESQLFunction: String, Sendable, CaseIterable {
    case length = "LENGTH"
    case concat = "CONCAT"
    case concatWS = "CONCAT_WS"
    case lower = "LOWER"
    case upper = "UPPER"
    case trim = "TRIM"
    case left = "LEFT"
    case right = "RIGHT"
    case substring = "SUBSTRING"
    case abs = "ABS"
    case int = "INT"
    case bool = "BOOL"
    case string = "STRING"
    case isInt = "IS_INT"
    case isBool = "IS_BOOL"

    var returnType: CESQLType {
        switch self {
        case .length, .abs, .int: .integer
        case .concat, .concatWS, .lower, .upper, .trim, .left, .right, .substring, .string: .string
        case .bool, .isInt, .isBool: .boolean
        }
    }

    /// The accepted argument counts, worded for a missing-function message.
    var arityDescription: String {
        switch self {
        case .concat: "any number of arguments"
        case .concatWS: "a delimiter followed by any number of arguments"
        case .left, .right: "2 arguments"
        case .substring: "2 or 3 arguments"
        case .length, .lower, .upper, .trim, .abs, .int, .bool, .string, .isInt, .isBool: "1 argument"
        }
    }
}

/// A resolved call: the function plus its arguments, shaped by arity so the evaluator never
/// indexes into an argument list.
enum CESQLFunctionCall: Sendable {
    case length(CESQLNode)
    case concat([CESQLNode])
    case concatWS(delimiter: CESQLNode, [CESQLNode])
    case lower(CESQLNode)
    case upper(CESQLNode)
    case trim(CESQLNode)
    case left(CESQLNode, count: CESQLNode)
    case right(CESQLNode, count: CESQLNode)
    case substring(CESQLNode, position: CESQLNode, length: CESQLNode?)
    case abs(CESQLNode)
    case castInteger(CESQLNode)
    case castBoolean(CESQLNode)
    case castString(CESQLNode)
    case isInteger(CESQLNode)
    case isBoolean(CESQLNode)

    var function: CESQLFunction {
        switch self {
        case .length: .length
        case .concat: .concat
        case .concatWS: .concatWS
        case .lower: .lower
        case .upper: .upper
        case .trim: .trim
        case .left: .left
        case .right: .right
        case .substring: .substring
        case .abs: .abs
        case .castInteger: .int
        case .castBoolean: .bool
        case .castString: .string
        case .isInteger: .isInt
        case .isBoolean: .isBool
        }
    }

    var arguments: [CESQLNode] {
        switch self {
        case .length(let x), .lower(let x), .upper(let x), .trim(let x), .abs(let x),
             .castInteger(let x), .castBoolean(let x), .castString(let x), .isInteger(let x), .isBoolean(let x):
            [x]
        case .concat(let xs): xs
        case .concatWS(let delimiter, let xs): [delimiter] + xs
        case .left(let x, let count), .right(let x, let count): [x, count]
        case .substring(let x, let position, let length): [x, position] + (length.map { [$0] } ?? [])
        }
    }

    func mapArguments(_ transform: (CESQLNode) -> CESQLNode) -> CESQLFunctionCall {
        switch self {
        case .length(let x): .length(transform(x))
        case .concat(let xs): .concat(xs.map(transform))
        case .concatWS(let delimiter, let xs): .concatWS(delimiter: transform(delimiter), xs.map(transform))
        case .lower(let x): .lower(transform(x))
        case .upper(let x): .upper(transform(x))
        case .trim(let x): .trim(transform(x))
        case .left(let x, let count): .left(transform(x), count: transform(count))
        case .right(let x, let count): .right(transform(x), count: transform(count))
        case .substring(let x, let position, let length):
            .substring(transform(x), position: transform(position), length: length.map(transform))
        case .abs(let x): .abs(transform(x))
        case .castInteger(let x): .castInteger(transform(x))
        case .castBoolean(let x): .castBoolean(transform(x))
        case .castString(let x): .castString(transform(x))
        case .isInteger(let x): .isInteger(transform(x))
        case .isBoolean(let x): .isBoolean(transform(x))
        }
    }

    /// Dispatches a call by case-insensitive name and arity (spec §3.5). Calls that match no
    /// built-in become `.unresolvedCall`, which the evaluator reports as a missing function.
    static func resolve(name: String, arguments: [CESQLNode]) -> CESQLNode {
        guard let function = CESQLFunction(rawValue: name.uppercased()) else {
            return .unresolvedCall(name: name, arity: arguments.count, reason: "there is no function named \(name)")
        }
        guard let call = make(function, arguments) else {
            let reason = "\(function.rawValue) takes \(function.arityDescription), not \(arguments.count)"
            return .unresolvedCall(name: name, arity: arguments.count, reason: reason)
        }
        return .call(call)
    }

    private static func make(_ function: CESQLFunction, _ args: [CESQLNode]) -> CESQLFunctionCall? {
        switch (function, args.count) {
        case (.concat, _): return .concat(args)
        case (.concatWS, 1...): return .concatWS(delimiter: args[0], Array(args.dropFirst()))
        case (.left, 2): return .left(args[0], count: args[1])
        case (.right, 2): return .right(args[0], count: args[1])
        case (.substring, 2): return .substring(args[0], position: args[1], length: nil)
        case (.substring, 3): return .substring(args[0], position: args[1], length: args[2])
        case (_, 1): return unary(function, args[0])
        default: return nil
        }
    }

    private static func unary(_ function: CESQLFunction, _ x: CESQLNode) -> CESQLFunctionCall? {
        switch function {
        case .length: .length(x)
        case .lower: .lower(x)
        case .upper: .upper(x)
        case .trim: .trim(x)
        case .abs: .abs(x)
        case .int: .castInteger(x)
        case .bool: .castBoolean(x)
        case .string: .castString(x)
        case .isInt: .isInteger(x)
        case .isBool: .isBoolean(x)
        // Variadic functions are dispatched before single-argument ones; the others need more.
        case .concat, .concatWS, .left, .right, .substring: nil
        }
    }
}

// MARK: - Semantics of the string and integer built-ins

/// The pure part of each built-in: plain values in, value out, errors raised on the context.
enum CESQLBuiltins {
    /// `LEFT(x, n)`: the first `n` characters; `x` itself plus an error when `n` is negative.
    static func left(_ text: String, _ count: Int32, _ context: inout CESQLEvaluationContext) -> String {
        guard count >= 0 else {
            context.raise(.functionEvaluation, "LEFT requires a non-negative length, got \(count)")
            return text
        }
        return String(Substring(text.unicodeScalars.prefix(Int(count))))
    }

    /// `RIGHT(x, n)`: the last `n` characters; `x` itself plus an error when `n` is negative.
    static func right(_ text: String, _ count: Int32, _ context: inout CESQLEvaluationContext) -> String {
        guard count >= 0 else {
            context.raise(.functionEvaluation, "RIGHT requires a non-negative length, got \(count)")
            return text
        }
        return String(Substring(text.unicodeScalars.suffix(Int(count))))
    }

    /// `SUBSTRING(x, pos[, len])` with 1-based `pos`; a negative `pos` counts from the end and 0
    /// yields the empty string. Out-of-range positions and negative lengths yield the empty
    /// string plus an error.
    static func substring(_ text: String, _ position: Int32, _ length: Int32?, _ context: inout CESQLEvaluationContext) -> String {
        let scalars = text.unicodeScalars
        let count = scalars.count
        let pos = Int(position)
        if pos > count || pos < -count {
            context.raise(.functionEvaluation, "SUBSTRING position \(position) is outside a string of length \(count)")
            return ""
        }
        if let length, length < 0 {
            context.raise(.functionEvaluation, "SUBSTRING requires a non-negative length, got \(length)")
            return ""
        }
        if pos == 0 { return "" }
        let startOffset = pos > 0 ? pos - 1 : count + pos
        let available = count - startOffset
        let taken = length.map { min(Int($0), available) } ?? available
        let start = scalars.index(scalars.startIndex, offsetBy: startOffset)
        let end = scalars.index(start, offsetBy: taken)
        return String(Substring(scalars[start..<end]))
    }

    /// `TRIM(x)`: strips leading and trailing Unicode `White_Space` characters only, leaving
    /// control characters that are not whitespace in place (spec §3.5.1).
    static func trim(_ text: String) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
              let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(Substring(scalars[first...last]))
    }

    /// `ABS(x)`: the one value without a positive counterpart saturates, with a math error.
    static func abs(_ value: Int32, _ context: inout CESQLEvaluationContext) -> Int32 {
        guard value != .min else {
            context.raise(.math, "ABS(\(value)) overflows a 32-bit integer")
            return .max
        }
        return Swift.abs(value)
    }
}
