import Testing
@testable import Eventing

/// cesql_tck/sub_expression.yaml
@Suite("TCK: Sub expressions")
struct SubExpressionConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Sub expression with literal", "(TRUE)", .boolean(true)),

        TCKCase("Math (1)", "4 * (2 + 3)", .integer(20)),
        TCKCase("Math (2)", "(2 + 3) * 4", .integer(20)),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
