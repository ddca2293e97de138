/// A compiled `LIKE` pattern (spec §3.4.3).
///
/// `%` matches any run of characters, `_` exactly one, and `\%`, `\_` and `\\` match the escaped
/// character literally. A backslash before any other character is an ordinary character, so
/// `'ab\c'` matches the four-character string `ab\c`.
///
/// The pattern is analysed once: the shapes Knative-style filters mostly use (exact, prefix,
/// suffix, contains) become direct UTF-8 comparisons; everything else runs a backtracking
/// wildcard matcher over the text's Unicode scalars. Neither path allocates.
struct CESQLLikePattern: Sendable {
    enum Element: Sendable, Equatable {
        case literal(Unicode.Scalar)
        case anyCharacter
        case anyRun
    }

    private enum Strategy: Sendable {
        case exact(String)
        case prefix(String)
        case suffix(String)
        case contains(String)
        case general([Element])
    }

    /// The pattern as written (after string-literal decoding).
    let source: String
    private let strategy: Strategy

    init(_ pattern: String) {
        source = pattern
        strategy = Self.strategy(for: Self.elements(of: pattern))
    }

    func matches(_ text: String) -> Bool {
        switch strategy {
        case .exact(let literal): UTF8Comparison.equal(text, literal)
        case .prefix(let literal): UTF8Comparison.hasPrefix(text, literal)
        case .suffix(let literal): UTF8Comparison.hasSuffix(text, literal)
        case .contains(let literal): UTF8Comparison.contains(text, literal)
        case .general(let elements): Self.wildcardMatch(text.unicodeScalars, elements)
        }
    }

    // MARK: Compilation

    static func elements(of pattern: String) -> [Element] {
        var elements: [Element] = []
        var iterator = pattern.unicodeScalars.makeIterator()
        var pending = iterator.next()
        while let scalar = pending {
            pending = iterator.next()
            switch scalar {
            case "%":
                if elements.last != .anyRun { elements.append(.anyRun) }
            case "_":
                elements.append(.anyCharacter)
            case "\\":
                if let next = pending, next == "%" || next == "_" || next == "\\" {
                    elements.append(.literal(next))
                    pending = iterator.next()
                } else {
                    elements.append(.literal(scalar))
                }
            default:
                elements.append(.literal(scalar))
            }
        }
        return elements
    }

    /// Picks a specialised strategy when the pattern is a literal optionally anchored by `%` on
    /// either end; those reduce to byte comparisons (see `UTF8Comparison`).
    private static func strategy(for elements: [Element]) -> Strategy {
        if elements.contains(.anyCharacter) { return .general(elements) }
        let leadingRun = elements.first == .anyRun
        let trailingRun = elements.count > 1 && elements.last == .anyRun
        let body = elements.dropFirst(leadingRun ? 1 : 0).dropLast(trailingRun ? 1 : 0)
        var literal = String.UnicodeScalarView()
        for element in body {
            guard case .literal(let scalar) = element else { return .general(elements) }
            literal.append(scalar)
        }
        let text = String(literal)
        switch (leadingRun, trailingRun) {
        case (false, false): return .exact(text)
        case (false, true): return .prefix(text)
        case (true, false): return .suffix(text)
        case (true, true): return .contains(text)
        }
    }

    // MARK: Matching

    /// Classic greedy wildcard matching with a single backtrack point: on a mismatch after a
    /// `%`, the `%` absorbs one more character and matching resumes. Linear in practice,
    /// O(text × pattern) in the worst case, and never recursive.
    private static func wildcardMatch(_ text: String.UnicodeScalarView, _ pattern: [Element]) -> Bool {
        var textIndex = text.startIndex
        var patternIndex = 0
        var backtrackPattern: Int?
        var backtrackText = text.startIndex
        while textIndex < text.endIndex {
            if patternIndex < pattern.count {
                switch pattern[patternIndex] {
                case .anyRun:
                    backtrackPattern = patternIndex
                    backtrackText = textIndex
                    patternIndex += 1
                    continue
                case .anyCharacter:
                    patternIndex += 1
                    textIndex = text.index(after: textIndex)
                    continue
                case .literal(let scalar) where scalar == text[textIndex]:
                    patternIndex += 1
                    textIndex = text.index(after: textIndex)
                    continue
                case .literal:
                    break
                }
            }
            guard let runIndex = backtrackPattern else { return false }
            patternIndex = runIndex + 1
            backtrackText = text.index(after: backtrackText)
            textIndex = backtrackText
        }
        while patternIndex < pattern.count, pattern[patternIndex] == .anyRun {
            patternIndex += 1
        }
        return patternIndex == pattern.count
    }
}
