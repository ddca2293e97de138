import Testing
@testable import Eventing

/// cesql_tck/literals.yaml
@Suite("TCK: Literals")
struct LiteralsConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("TRUE literal", "TRUE", .boolean(true)),
        TCKCase("FALSE literal", "FALSE", .boolean(false)),

        TCKCase("0 literal", "0", .integer(0)),
        TCKCase("1 literal", "1", .integer(1)),

        TCKCase("String literal single quoted", "'abc'", .string("abc")),
        TCKCase("String literal double quoted", "\"abc\"", .string("abc")),

        TCKCase("String literal single quoted with case", "'aBc'", .string("aBc")),
        TCKCase("String literal double quoted with case", "\"AbC\"", .string("AbC")),

        TCKCase("Escaped string literal (1)", #"'a"b\'c'"#, .string(#"a"b'c"#)),
        TCKCase("Escaped string literal (2)", #""a'b\"c""#, .string(#"a'b"c"#)),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
