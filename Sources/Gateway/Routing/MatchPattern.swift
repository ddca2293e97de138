/// A compiled regular expression, compared by its source text.
///
/// Istio specifies RE2, which matches in linear time. Patterns in the common part of RE2's
/// syntax (see ``LinearPattern``) are matched that way: one pass over the value, whatever the
/// pattern. Others go to Swift's `Regex`, which backtracks, so a pattern like `(a+)+` would take
/// exponential time on a value like `aaaa…a!`, on an event loop. Two limits keep those bounded:
/// - Patterns that backtrack catastrophically are refused (``UnsafePatternError``): a
///   backreference (`\1`, `\k<name>`, `\g…`, `(?P=name)`; RE2 has none), and a group repeated
///   by `*`, `+` or `{…}` that itself contains a quantifier or an alternation (`(a+)+`,
///   `(a*)*`, `(a|a)*`, `(x\d+)*`). The check is syntactic and errs on refusing.
/// - Values longer than ``maxMatchedBytes`` never match (for either engine). This bounds, but
///   does not remove, the polynomial cost left to `Regex`: unbounded quantifiers in a row over
///   overlapping characters (`.*.*x`) still take seconds on an 8 KiB value when the pattern
///   also uses syntax only `Regex` has (`\p{…}`, lookaround).
public struct MatchPattern: Sendable, Hashable {
    /// The expression as written.
    public let pattern: String
    private let engine: Engine

    private enum Engine: Sendable {
        case linear(LinearPattern)
        case backtracking(CompiledPattern)
    }

    /// Longest value (path or header value, in UTF-8 bytes) a pattern is matched against;
    /// a longer one does not match.
    public static let maxMatchedBytes = 8 * 1024

    /// Compiles `pattern`; throws when it is not a valid expression, or an
    /// ``UnsafePatternError`` when `Regex` would have to match it and it could backtrack
    /// catastrophically (see above).
    public init(_ pattern: String) throws {
        self.pattern = pattern
        do {
            // Not also put to `Regex`: it refuses some RE2 patterns (`[]a]`) and reads others
            // differently (`a{,2}` is a literal in RE2).
            engine = .linear(try LinearPattern(pattern))
        } catch where error.tooLarge {
            throw UnsafePatternError(
                message: "the pattern is too large: it compiles to more than \(LinearPattern.maxInstructions) states (unroll fewer counted repetitions)")
        } catch {
            if let problem = Self.backtrackingProblem(pattern) { throw UnsafePatternError(message: problem) }
            engine = .backtracking(CompiledPattern(try Regex(pattern)))
        }
    }

    /// Whether the pattern is matched in linear time.
    var isLinear: Bool {
        if case .linear = engine { true } else { false }
    }

    /// Whether the whole of `value` matches (never when it is longer than ``maxMatchedBytes``).
    public func matchesWhole(_ value: Substring) -> Bool {
        guard value.utf8.count <= Self.maxMatchedBytes else { return false }
        switch engine {
        case .linear(let linear): return linear.matchesWhole(value)
        case .backtracking(let compiled): return (try? compiled.regex.wholeMatch(in: value)) != nil
        }
    }

    /// What makes `pattern` backtrack catastrophically (a backreference, or a repeated group
    /// holding a quantifier or an alternation), or nil. A scan of the syntax, not a parse:
    /// character classes and escapes are skipped, groups are tracked on a stack.
    static let backreferenceProblem = "backreferences are not supported; RE2-style linear-time patterns are required"

    static func backtrackingProblem(_ pattern: String) -> String? {
        let chars = Array(pattern.unicodeScalars)
        // Per open group: whether it holds a quantifier, and an alternation, at any depth.
        var groups: [(quantified: Bool, alternation: Bool)] = [(false, false)]
        var i = 0
        /// Length of the quantifier at `at` (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}` and a lazy or
        /// possessive suffix), 0 when there is none; `repeats` is false for `?` alone.
        func quantifier(at at: Int) -> (length: Int, repeats: Bool) {
            guard at < chars.count else { return (0, false) }
            var end = at
            var repeats = true
            switch chars[at] {
            case "*", "+": end = at + 1
            case "?": end = at + 1; repeats = false
            case "{":
                var j = at + 1
                while j < chars.count, ("0"..."9").contains(chars[j]) || chars[j] == "," { j += 1 }
                guard j > at + 1, j < chars.count, chars[j] == "}", ("0"..."9").contains(chars[at + 1]) else { return (0, false) }
                end = j + 1
            default: return (0, false)
            }
            if end < chars.count, chars[end] == "?" || chars[end] == "+" { end += 1 }
            return (end - at, repeats)
        }
        while i < chars.count {
            let c = chars[i]
            var atomEnd = i + 1
            var closed: (quantified: Bool, alternation: Bool)?
            switch c {
            case "\\":
                guard i + 1 < chars.count else { return nil }  // Regex refuses a trailing backslash
                let next = chars[i + 1]
                if ("1"..."9").contains(next) || next == "k" || next == "g" {
                    return Self.backreferenceProblem
                }
                atomEnd = i + 2
                // `\p{L}`, `\x{41}`, `\u{…}`, `\N{…}`, `\o{…}`: the braces belong to the escape.
                if "pPxuNo".unicodeScalars.contains(next), atomEnd < chars.count, chars[atomEnd] == "{" {
                    while atomEnd < chars.count, chars[atomEnd] != "}" { atomEnd += 1 }
                    atomEnd += 1
                }
            case "[":
                // Skip the class: escapes, a leading `]` (or `^]`), POSIX `[:name:]`, nesting.
                var j = i + 1
                if j < chars.count, chars[j] == "^" { j += 1 }
                if j < chars.count, chars[j] == "]" { j += 1 }
                var depth = 1
                while j < chars.count, depth > 0 {
                    if chars[j] == "\\" { j += 2; continue }
                    if chars[j] == "[" {
                        if j + 1 < chars.count, chars[j + 1] == ":" {
                            j += 2
                            while j + 1 < chars.count, !(chars[j] == ":" && chars[j + 1] == "]") { j += 1 }
                            j += 2
                            continue
                        }
                        depth += 1
                    } else if chars[j] == "]" {
                        depth -= 1
                    }
                    j += 1
                }
                atomEnd = j
            case "(":
                if i + 2 < chars.count, chars[i + 1] == "?", chars[i + 2] == "P", i + 3 < chars.count, chars[i + 3] == "=" {
                    return Self.backreferenceProblem
                }
                groups.append((false, false))
                i += 1
                continue
            case ")":
                guard groups.count > 1 else { return nil }  // unbalanced: Regex refuses it
                closed = groups.removeLast()
            case "|":
                groups[groups.count - 1].alternation = true
                i += 1
                continue
            default:
                break
            }
            let (length, repeats) = quantifier(at: atomEnd)
            if let closed, repeats, closed.quantified || closed.alternation {
                return "a repeated group must not contain a quantifier or an alternation (as in (a+)+ or (a|b)*): "
                    + "they backtrack exponentially; RE2-style linear-time patterns are required"
            }
            let last = groups.count - 1
            if let closed {
                groups[last].quantified = groups[last].quantified || closed.quantified
                groups[last].alternation = groups[last].alternation || closed.alternation
            }
            if length > 0 { groups[last].quantified = true }
            i = atomEnd + length
        }
        return nil
    }

    public static func == (lhs: MatchPattern, rhs: MatchPattern) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }
}

/// A regular expression ``MatchPattern`` refuses because it could backtrack catastrophically.
public struct UnsafePatternError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong and what is expected.
    public var message: String
    public var description: String { message }
}

/// Holds a `Regex`, which is immutable after compilation and safe to share between threads.
private final class CompiledPattern: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
    init(_ regex: Regex<AnyRegexOutput>) { self.regex = regex }
}
