@testable import Gateway
import Testing

/// The linear-time matcher against Swift's `Regex` on ASCII values (where RE2's code-point
/// semantics and `Regex`'s character semantics agree), and on values that make a backtracking
/// engine take exponential or high polynomial time.
@Suite("Linear patterns")
struct LinearPatternTests {
    static let patterns = [
        "/users/[0-9]+", "/(en|fr|de)/.*", "/v[12]/items(/[a-z]+)?", "(a+)?", "[(a+)+]*", "\\(a+\\)+",
        "(abc)+", "(?i)/api/.*", "a{2,3}b*", "/(a+)+", "(a*)*", "(a|a)*", "/x/(\\d+)*", "(\\.[a-z]+)*",
        "a{0}", "a{2}", "a{2,}", "(ab|a)(bc|c)?", "[^/]+/[^/]+", "\\w+\\s\\W?\\S*", "[[:alpha:]]+[[:digit:]]*",
        "(?i)[a-c]+X", "(?i:ab)c", "a(?i)b|c", "x*?y+?z??", "^abc$", "a^b", "a$b", "\\Aabc\\z", "[\\d\\-]+",
        "[a\\]]+", "\\x41\\x{42}", "a.c", "(?s)a.c", "", "|a", "(|b)c", "[-a]+", "[a-]+",
        "(?P<year>[0-9]{4})-(?<month>[0-9]{2})", "\\.\\*\\?\\+", "[a-c]{1,3}[x-z]{0,2}", "((a|b)*c)+",
        "(?i)[^a-b]+", "a{x}", "a{1,x}",
    ]
    static let values = [
        "", "a", "aa", "aaa", "ab", "abc", "ABC", "abcabc", "b", "c", "bc", "abbb", "/users/42", "/users/", "/users/4x",
        "/en/x", "/it/x", "/v1/items", "/v2/items/abc", "/v3/items", "(aaa)", "/x/", "/x/123", ".com.org", ".com.",
        "a/b", "a/b/c", "hello there", "hello  ", "Hello9", "abcX", "ABX", "aBc", "AbC", "xyz", "yy", "xyyz", "z",
        "a^b", "a$b", "a\nc", "axc", "12-34", "a]", "]a", "]]", "AB", "2024-11", "20245-1", ".*?+", "abz", "bbbc",
        "abcbc", "cc", "-a-", "ac", "a{x}", "a{1,x}", "aax", "ABc",
    ]

    @Test("agrees with Regex on every pattern × value pair", arguments: patterns)
    func agreesWithRegex(pattern: String) throws {
        let linear = try LinearPattern(pattern)
        let regex = try Regex(pattern)
        for value in Self.values {
            let expected = (try? regex.wholeMatch(in: value)) != nil
            #expect(linear.matchesWhole(value[...]) == expected, "\(pattern.debugDescription) on \(value.debugDescription)")
        }
    }

    @Test("values that make backtracking explode are answered", arguments: [
        ("(a+)+b", String(repeating: "a", count: 8_000) + "!"),
        ("(a|a)*b", String(repeating: "a", count: 8_000)),
        (".*.*.*.*.*x", String(repeating: "y", count: 8_000)),
        ("(x+x+)+y", String(repeating: "x", count: 8_000)),
    ])
    func noBacktracking(pattern: String, value: String) throws {
        #expect(try !MatchPattern(pattern).matchesWhole(value[...]))
    }

    @Test("RE2 semantics where Regex differs: a code point per dot; $ only at the end; ASCII word boundaries", arguments: [
        (".", "e\u{301}", false), ("..", "e\u{301}", true), ("a$", "a\n", false), (".*\\bé\\b.*", "x é y", false),
    ])
    func codePointSemantics(pattern: String, value: String, matches: Bool) throws {
        #expect(try LinearPattern(pattern).matchesWhole(value[...]) == matches)
    }

    /// User-agent style matches: `\\b` and `\\B` between ASCII word characters and the rest.
    @Test("word boundaries", arguments: [
        (".*\\bMobile\\b.*", "Mozilla/5.0 (iPhone; Mobile) Safari", true),
        (".*\\bMobile\\b.*", "Mozilla/5.0 AutomobileX", false),
        (".*\\bMobile\\b.*", "Mobile", true),
        (".*\\BMobile.*", "Mozilla AutoMobile", true),
        (".*\\BMobile.*", "Mozilla Mobile", false),
        ("\\b", "", false), ("\\B", "", true), ("a\\b", "a", true), ("a\\B", "a", false),
        ("a\\b-b", "a-b", true), ("a\\bb", "ab", false), ("_\\b_", "__", false),
    ])
    func wordBoundaries(pattern: String, value: String, matches: Bool) throws {
        let linear = try LinearPattern(pattern)
        #expect(linear.matchesWhole(value[...]) == matches)
        // Swift's `Regex` agrees on these ASCII values, except on the empty one, where it finds
        // a boundary and RE2 (no word character on either side) does not.
        if !value.isEmpty { #expect(((try? Regex(pattern).wholeMatch(in: value)) != nil) == matches) }
    }

    @Test("RE2 readings Regex does not share: a brace that starts no count, ] first in a class, (?i) on POSIX classes", arguments: [
        ("a{,2}", "a{,2}", true), ("a{,2}", "aa", false), ("{", "{", true), ("[]a]+", "]a]", true), ("[^]a]+", "bc", true),
        ("[^]a]+", "b]", false), ("(?i)[[:upper:]]+", "abC", true), ("(?i)[[:lower:]]+", "ABC", true),
        ("(?i)[^[:lower:]]+", "B", false),
    ])
    func re2Readings(pattern: String, value: String, matches: Bool) throws {
        #expect(try MatchPattern(pattern).matchesWhole(value[...]) == matches)
    }

    /// Patterns that cost nothing to write and much to compile, match or parse.
    @Test("nested empty repetitions compile at once; deep nesting and huge classes stay cheap")
    func costlyPatterns() throws {
        // Unrolled naively: 10^15 turns of empty loops.
        let empties = try LinearPattern("(?:(?:(?:(?:(?:){1000}){1000}){1000}){1000}){1000}x")
        #expect(empties.matchesWhole("x"))
        let zeros = try LinearPattern("(?:(?:(?:(?:a{0}){1000}){1000}){1000}){1000}x")
        #expect(zeros.matchesWhole("x"))
        // The parser and compiler recurse per group: too deep is refused.
        let deep = String(repeating: "(", count: 50_000) + "a" + String(repeating: ")", count: 50_000)
        #expect(throws: LinearPattern.SyntaxError.self) { try LinearPattern(deep) }
        #expect(throws: PatternError.self) { try MatchPattern(deep) }
        // A class written with 50,000 members is one bit test per character.
        let wide = try LinearPattern("/(?:[" + String(repeating: "b", count: 50_000) + "a]*){50}")
        #expect(wide.matchesWhole(Substring("/" + String(repeating: "a", count: 8_000))))
        #expect(!wide.matchesWhole(Substring("/" + String(repeating: "a", count: 8_000) + "c")))
    }

    @Test("the rest of RE2's syntax: \\p classes, \\Q…\\E, (?m), flags off, octal, negated classes in classes", arguments: [
        ("\\p{L}+", "héllo", true), ("\\p{L}+", "h3", false), ("\\pL\\pN", "ä٣", true), ("\\p{Lu}\\p{Ll}+", "Éa", true),
        ("\\p{Lu}\\p{Ll}+", "éa", false), ("\\PL+", "12 !", true), ("\\PL+", "1a", false), ("\\p{^N}+", "ab", true),
        ("[\\p{N}x]+", "x1٣x", true), ("[^\\p{L}]+", "1-2", true), ("[^\\p{L}]+", "1é", false), ("\\p{Any}+", "é\n", true),
        ("\\Qa.b\\E", "a.b", true), ("\\Qa.b\\E", "axb", false), ("\\Qab\\E+", "abbb", true), ("\\Qa(b", "a(b", true),
        ("(?m)a$\\n^b", "a\nb", true), ("a$\\n^b", "a\nb", false), ("(?m)^a$", "a", true),
        ("(?i)a(?-i)b", "Ab", true), ("(?i)a(?-i)b", "AB", false), ("(?i:a)b", "AB", false), ("(?U)a+b", "aab", true),
        ("\\101\\102", "AB", true), ("\\0102", "\u{08}2", true), ("\\a", "\u{07}", true), ("[^\\D]+", "123", true), ("[^\\D]+", "1a", false),
        ("[\\S]+", "ab", true), ("[[:^alpha:]]+", "12", true), ("[[:^alpha:]]+", "a", false), ("[[a]]", "a]", true),
        ("[[:blank:][:cntrl:]]+", " \t\u{01}", true), ("[[:print:]]+", "a b", true), ("[[:graph:]]+", "a b", false),
    ])
    func re2Syntax(pattern: String, value: String, matches: Bool) throws {
        #expect(try LinearPattern(pattern).matchesWhole(value[...]) == matches, "\(pattern.debugDescription) on \(value.debugDescription)")
    }

    @Test("(?i) matches every scalar of a case orbit, as RE2 does", arguments: [
        ("(?i)é", "É", true), ("(?i)[é]", "É", true), ("(?i)k", "\u{212A}", true), ("(?i)\\x{212A}", "K", true),
        ("(?i)σ+", "Σς", true), ("(?i)straẞe", "STRAßE", true), ("(?i)[à-ä]+", "ÀÄ", true), ("(?i)\\p{Lu}+", "aB", true),
        ("(?i)[^é]", "É", false), ("é", "É", false), ("(?i)a", "b", false),
    ])
    func caseFolding(pattern: String, value: String, matches: Bool) throws {
        #expect(try LinearPattern(pattern).matchesWhole(value[...]) == matches, "\(pattern.debugDescription) on \(value.debugDescription)")
    }

    @Test("errors say what is wrong and where", arguments: [
        ("a(?=b)", "lookahead (?=…) is not RE2 syntax", 2), ("ab\\1", "backreferences (\\1)", 3), ("a++", "possessive", 3),
        ("(?x)a", "unknown flag x", 3), ("[a", "missing ]", 1), ("a{2,1}", "maximum is below its minimum", 2),
        ("(a", "missing )", 1), ("a)", "unmatched )", 2), ("\\p{Greek}", "script classes", 1), ("ab\\q", "invalid escape sequence \\q", 3),
        ("[z-a]", "end is below its start", 3), ("x\\Z", "\\z is the end", 2), ("*a", "missing argument", 1), ("{2}", "missing argument", 1),
    ])
    func errorMessages(pattern: String, says: String, at: Int) {
        #expect {
            try LinearPattern(pattern)
        } throws: { error in
            guard let message = (error as? LinearPattern.SyntaxError)?.message else { return false }
            return message.contains(says) && message.hasSuffix("(at character \(at))")
        }
    }

    @Test("malformed patterns are not taken", arguments: [
        "(a", "a)", "[a", "a{2,1}", "*a", "a**", "\\x{110000}", "[z-a]", "a{1001}", "\\x+F", "\\x-0", "(?)", "(?i-)", "\\8", "[\\b]",
    ])
    func malformed(pattern: String) {
        #expect(throws: LinearPattern.SyntaxError.self) { try LinearPattern(pattern) }
    }
}
