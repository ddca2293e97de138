import Testing
@testable import Eventing

/// cesql_tck/string_builtin_functions.yaml
@Suite("TCK: String builtin functions")
struct StringFunctionsConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("LENGTH (1)", "LENGTH('abc')", .integer(3)),
        TCKCase("LENGTH (2)", "LENGTH('')", .integer(0)),
        TCKCase("LENGTH (3)", "LENGTH('2')", .integer(1)),
        TCKCase("LENGTH (4)", "LENGTH(TRUE)", .integer(4)),

        TCKCase("CONCAT (1)", "CONCAT('a', 'b', 'c')", .string("abc")),
        TCKCase("CONCAT (2)", "CONCAT()", .string("")),
        TCKCase("CONCAT (3)", "CONCAT('a')", .string("a")),

        TCKCase("CONCAT_WS (1)", "CONCAT_WS(',', 'a', 'b', 'c')", .string("a,b,c")),
        TCKCase("CONCAT_WS (2)", "CONCAT_WS(',')", .string("")),
        TCKCase("CONCAT_WS (3)", "CONCAT_WS(',', 'a')", .string("a")),
        TCKCase("CONCAT_WS without arguments doesn't exist", "CONCAT_WS()", .boolean(false), error: .missingFunction),

        TCKCase("LOWER (1)", "LOWER('ABC')", .string("abc")),
        TCKCase("LOWER (2)", "LOWER('AbC')", .string("abc")),
        TCKCase("LOWER (3)", "LOWER('abc')", .string("abc")),

        TCKCase("UPPER (1)", "UPPER('ABC')", .string("ABC")),
        TCKCase("UPPER (2)", "UPPER('AbC')", .string("ABC")),
        TCKCase("UPPER (3)", "UPPER('abc')", .string("ABC")),

        TCKCase("TRIM (1)", "TRIM('   a b c   ')", .string("a b c")),
        TCKCase("TRIM (2)", "TRIM('   a b c')", .string("a b c")),
        TCKCase("TRIM (3)", "TRIM('a b c   ')", .string("a b c")),
        TCKCase("TRIM (4)", "TRIM('a b c')", .string("a b c")),

        TCKCase("LEFT (1)", "LEFT('abc', 2)", .string("ab")),
        TCKCase("LEFT (2)", "LEFT('abc', 10)", .string("abc")),
        TCKCase("LEFT (3)", "LEFT('', 0)", .string("")),
        TCKCase("LEFT (4)", "LEFT('abc', -2)", .string("abc"), error: .functionEvaluation),

        TCKCase("RIGHT (1)", "RIGHT('abc', 2)", .string("bc")),
        TCKCase("RIGHT (2)", "RIGHT('abc', 10)", .string("abc")),
        TCKCase("RIGHT (3)", "RIGHT('', 0)", .string("")),
        TCKCase("RIGHT (4)", "RIGHT('abc', -2)", .string("abc"), error: .functionEvaluation),

        TCKCase("SUBSTRING (1)", "SUBSTRING('abcdef', 1)", .string("abcdef")),
        TCKCase("SUBSTRING (2)", "SUBSTRING('abcdef', 2)", .string("bcdef")),
        TCKCase("SUBSTRING (3)", "SUBSTRING('Quadratically', 5)", .string("ratically")),
        TCKCase("SUBSTRING (4)", "SUBSTRING('Sakila', -3)", .string("ila")),
        TCKCase("SUBSTRING (5)", "SUBSTRING('abcdef', 1, 6)", .string("abcdef")),
        TCKCase("SUBSTRING (6)", "SUBSTRING('abcdef', 2, 4)", .string("bcde")),
        TCKCase("SUBSTRING (7)", "SUBSTRING('Sakila', -5, 3)", .string("aki")),
        TCKCase("SUBSTRING (8)", "SUBSTRING('Quadratically', 0)", .string("")),
        TCKCase("SUBSTRING (9)", "SUBSTRING('Quadratically', 0, 1)", .string("")),
        TCKCase("SUBSTRING (10)", "SUBSTRING('abcdef', 10)", .string(""), error: .functionEvaluation),
        TCKCase("SUBSTRING (11)", "SUBSTRING('abcdef', -10)", .string(""), error: .functionEvaluation),
        TCKCase("SUBSTRING (12)", "SUBSTRING('abcdef', 10, 10)", .string(""), error: .functionEvaluation),
        TCKCase("SUBSTRING (13)", "SUBSTRING('abcdef', -10, 10)", .string(""), error: .functionEvaluation),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
