import Testing
@testable import Eventing

/// cesql_tck/like_expression.yaml (YAML `\\` escapes already resolved: the expressions below are
/// exactly what the engine receives).
@Suite("TCK: Like expression")
struct LikeConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Exact match (1)", "'abc' LIKE 'abc'", .boolean(true)),
        TCKCase("Exact match (2)", #"'ab\c' LIKE 'ab\c'"#, .boolean(true)),
        TCKCase("Exact match (negate)", "'abc' NOT LIKE 'abc'", .boolean(false)),

        TCKCase("Percentage operator (1)", "'abc' LIKE 'a%b%c'", .boolean(true)),
        TCKCase("Percentage operator (2)", "'azbc' LIKE 'a%b%c'", .boolean(true)),
        TCKCase("Percentage operator (3)", "'azzzbzzzc' LIKE 'a%b%c'", .boolean(true)),
        TCKCase("Percentage operator (4)", "'a%b%c' LIKE 'a%b%c'", .boolean(true)),
        TCKCase("Percentage operator (5)", "'ac' LIKE 'abc'", .boolean(false)),
        TCKCase("Percentage operator (6)", "'' LIKE 'abc'", .boolean(false)),
        TCKCase("Percentage operator (7)", "'.ab.cde.' LIKE '.%.%.'", .boolean(true)),
        TCKCase("Percentage operator (8)", "'ab.cde' LIKE '.%.%.'", .boolean(false)),

        TCKCase("Underscore operator (1)", "'abc' LIKE 'a_b_c'", .boolean(false)),
        TCKCase("Underscore operator (2)", "'a_b_c' LIKE 'a_b_c'", .boolean(true)),
        TCKCase("Underscore operator (3)", "'abzc' LIKE 'a_b_c'", .boolean(false)),
        TCKCase("Underscore operator (4)", "'azbc' LIKE 'a_b_c'", .boolean(false)),
        TCKCase("Underscore operator (5)", "'azbzc' LIKE 'a_b_c'", .boolean(true)),
        TCKCase("Underscore operator (6)", "'.a.b.' LIKE '._._.'", .boolean(true)),
        TCKCase("Underscore operator (7)", "'abcd.' LIKE '._._.'", .boolean(false)),

        TCKCase("Escaped underscore wildcards (1)", #"'a_b_c' LIKE 'a\_b\_c'"#, .boolean(true)),
        TCKCase("Escaped underscore wildcards (2)", #"'a_b_c' NOT LIKE 'a\_b\_c'"#, .boolean(false)),
        TCKCase("Escaped underscore wildcards (3)", #"'azbzc' LIKE 'a\_b\_c'"#, .boolean(false)),
        TCKCase("Escaped underscore wildcards (4)", #"'abc' LIKE 'a\_b\_c'"#, .boolean(false)),

        TCKCase("Escaped percentage wildcards (1)", #"'abc' LIKE 'a\%b\%c'"#, .boolean(false)),
        TCKCase("Escaped percentage wildcards (2)", #"'a%b%c' LIKE 'a\%b\%c'"#, .boolean(true)),
        TCKCase("Escaped percentage wildcards (3)", #"'azbzc' LIKE 'a\%b\%c'"#, .boolean(false)),
        TCKCase("Escaped percentage wildcards (4)", #"'abc' LIKE 'a\%b\%c'"#, .boolean(false)),

        TCKCase("With access to event attributes", #"myext LIKE 'abc%123\%456\_d_f'"#, .boolean(true), overrides: ["myext": .string("abc123123%456_dzf")]),
        TCKCase("With access to event attributes (negated)", #"myext NOT LIKE 'abc%123\%456\_d_f'"#, .boolean(false), overrides: ["myext": .string("abc123123%456_dzf")]),

        TCKCase("With type coercion from int (1)", "234 LIKE '23_'", .boolean(true)),
        TCKCase("With type coercion from int (2)", "2344 LIKE '23%'", .boolean(true)),
        TCKCase("With type coercion from int (3)", "2344 LIKE '23_'", .boolean(false)),

        TCKCase("With type coercion from bool (1)", "TRUE LIKE 'tr%'", .boolean(true)),
        TCKCase("With type coercion from bool (2)", "TRUE LIKE '%ue'", .boolean(true)),
        TCKCase("With type coercion from bool (3)", "FALSE LIKE 'tr%'", .boolean(false)),
        TCKCase("With type coercion from bool (4)", "FALSE LIKE 'fal%'", .boolean(true)),

        TCKCase("Invalid string literal in comparison causes parse error", "x LIKE 123", .boolean(false), error: .parse, overrides: ["x": .string("123")]),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
