import Testing
@testable import Eventing

/// cesql_tck/integer_builtin_functions.yaml
@Suite("TCK: Integer builtin functions")
struct IntegerFunctionsConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("ABS (1)", "ABS(10)", .integer(10)),
        TCKCase("ABS (2)", "ABS(-10)", .integer(10)),
        TCKCase("ABS (3)", "ABS(0)", .integer(0)),
        TCKCase("ABS overflow", "ABS(-2147483648)", .integer(2_147_483_647), error: .math),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
