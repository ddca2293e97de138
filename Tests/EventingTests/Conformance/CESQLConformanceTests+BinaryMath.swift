import Testing
@testable import Eventing

/// cesql_tck/binary_math_operators.yaml
@Suite("TCK: Binary math operations")
struct BinaryMathConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Operator precedence without parenthesis", "4 * 2 + 4 / 2", .integer(10)),
        TCKCase("Operator precedence with parenthesis", "4 * (2 + 4) / 2", .integer(12)),

        TCKCase("Truncated division", "5 / 3", .integer(1)),
        TCKCase("Division by zero returns 0 and fail", "5 / 0", .integer(0), error: .math),
        TCKCase("Module", "5 % 2", .integer(1)),
        TCKCase("Module by zero returns 0 and fail", "5 % 0", .integer(0), error: .math),
        TCKCase("Missing attribute in division results in missing attribute error, not divide by 0 error", "missing / 0", .integer(0), error: .missingAttribute),
        TCKCase("Missing attribute in modulo results in missing attribute error, not divide by 0 error", "missing % 0", .integer(0), error: .missingAttribute),

        TCKCase("Positive plus positive number", "4 + 1", .integer(5)),
        TCKCase("Negative plus positive number", "-4 + 1", .integer(-3)),
        TCKCase("Negative plus Negative number", "-4 + -1", .integer(-5)),
        TCKCase("Positive plus negative number", "4 + -1", .integer(3)),
        TCKCase("Positive minus positive number", "4 - 1", .integer(3)),
        TCKCase("Negative minus positive number", "-4 - 1", .integer(-5)),

        TCKCase("Implicit casting, with left value string", "'5' + 3", .integer(8)),
        TCKCase("Implicit casting, with right value string", "5 + '3'", .integer(8)),
        TCKCase("Implicit casting, with both values string", "'5' + '3'", .integer(8)),
        TCKCase("Implicit casting, with boolean value", "5 + TRUE", .integer(6)),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
