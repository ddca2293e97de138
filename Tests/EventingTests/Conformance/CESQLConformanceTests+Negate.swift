import Testing
@testable import Eventing

/// cesql_tck/negate_operator.yaml
@Suite("TCK: Negate operator")
struct NegateConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Minus 10", "-10", .integer(-10)),
        TCKCase("Minus minus 10", "--10", .integer(10)),

        TCKCase("Minus 10 with casting", "-'10'", .integer(-10)),
        TCKCase("Minus minus 10 with casting", "--'10'", .integer(10)),

        TCKCase("Minus with boolean cast", "-TRUE", .integer(-1)),

        TCKCase("Minus with missing attribute", "-missing", .integer(0), error: .missingAttribute),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
