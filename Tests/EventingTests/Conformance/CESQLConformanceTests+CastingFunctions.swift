import Testing
@testable import Eventing

/// cesql_tck/casting_functions.yaml
@Suite("TCK: Casting functions")
struct CastingFunctionsConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Cast '1' to integer", "INT('1')", .integer(1)),
        TCKCase("Cast '-1' to integer", "INT('-1')", .integer(-1)),
        TCKCase("Cast identity 1", "INT(1)", .integer(1)),
        TCKCase("Cast identity -1", "INT(-1)", .integer(-1)),
        TCKCase("Cast from TRUE to int", "INT(TRUE)", .integer(1)),
        TCKCase("Cast from FALSE to int", "INT(FALSE)", .integer(0)),
        TCKCase("Invalid cast from string to int", "INT('ABC')", .integer(0), error: .cast),

        TCKCase("Cast 'TRUE' to boolean", "BOOL('TRUE')", .boolean(true)),
        TCKCase("Cast \"false\" to boolean", "BOOL(\"false\")", .boolean(false)),
        TCKCase("Cast identity TRUE", "BOOL(TRUE)", .boolean(true)),
        TCKCase("Cast identity FALSE", "BOOL(FALSE)", .boolean(false)),
        TCKCase("Invalid cast from string to boolean", "BOOL('ABC')", .boolean(false), error: .cast),
        TCKCase("Cast from 1 to boolean", "BOOL(1)", .boolean(true)),
        TCKCase("Cast from 0 to boolean", "BOOL(0)", .boolean(false)),
        TCKCase("Cast from 100 to boolean", "BOOL(100)", .boolean(true)),
        TCKCase("Cast from -50 to boolean", "BOOL(-50)", .boolean(true)),

        TCKCase("Cast TRUE to string", "STRING(TRUE)", .string("true")),
        TCKCase("Cast FALSE to string", "STRING(FALSE)", .string("false")),
        TCKCase("Cast 1 to string", "STRING(1)", .string("1")),
        TCKCase("Cast -1 to string", "STRING(-1)", .string("-1")),
        TCKCase("Cast identity \"abc\"", "STRING(\"abc\")", .string("abc")),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
