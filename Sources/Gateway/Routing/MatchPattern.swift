/// A compiled regular expression, compared by its source text.
///
/// Istio specifies RE2, which matches in linear time, and so does every pattern here: it is a
/// ``LinearPattern`` (RE2's syntax; one pass over the value, whatever the pattern), so no policy
/// can make a request hold an event loop by backtracking. What RE2 refuses (backreferences,
/// lookaround, possessive quantifiers) is refused when the policy is written, with the reason.
/// Values longer than ``maxMatchedBytes`` never match, which bounds a match's cost to about
/// 8 million steps.
public struct MatchPattern: Sendable, Hashable {
    /// The expression as written.
    public let pattern: String
    private let compiled: LinearPattern

    /// Longest value (path or header value, in UTF-8 bytes) a pattern is matched against;
    /// a longer one does not match.
    public static let maxMatchedBytes = 8 * 1024

    /// Compiles `pattern`; throws a ``PatternError`` saying what is wrong and where.
    public init(_ pattern: String) throws(PatternError) {
        self.pattern = pattern
        compiled = try LinearPattern(pattern)
    }

    /// Whether the whole of `value` matches (never when it is longer than ``maxMatchedBytes``).
    public func matchesWhole(_ value: Substring) -> Bool {
        guard value.utf8.count <= Self.maxMatchedBytes else { return false }
        return compiled.matchesWhole(value)
    }

    public static func == (lhs: MatchPattern, rhs: MatchPattern) -> Bool { lhs.pattern == rhs.pattern }
    public func hash(into hasher: inout Hasher) { hasher.combine(pattern) }
}

/// A regular expression ``MatchPattern`` refuses: not RE2 syntax, or too large.
public struct PatternError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong and where.
    public var message: String
    public var description: String { message }
}
