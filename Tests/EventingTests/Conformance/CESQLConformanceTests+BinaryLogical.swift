import Testing
@testable import Eventing

/// cesql_tck/binary_logical_operators.yaml
@Suite("TCK: Binary logical operations")
struct BinaryLogicalConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("False and false", "FALSE AND FALSE", .boolean(false)),
        TCKCase("False and true", "FALSE AND TRUE", .boolean(false)),
        TCKCase("True and false", "TRUE AND FALSE", .boolean(false)),
        TCKCase("True and true", "TRUE AND TRUE", .boolean(true)),
        TCKCase("AND operator is short circuit evaluated", "false and (1 != 1 / 0)", .boolean(false)),
        TCKCase("AND operator is NOT short circuit evaluated when the first operand evaluates to true", "true and (1 != 1 / 0)", .boolean(false), error: .math),

        TCKCase("False or false", "FALSE OR FALSE", .boolean(false)),
        TCKCase("False or true", "FALSE OR TRUE", .boolean(true)),
        TCKCase("True or false", "TRUE OR FALSE", .boolean(true)),
        TCKCase("True or true", "TRUE OR TRUE", .boolean(true)),
        TCKCase("OR operator is short circuit evaluated", "true or (1 != 1 / 0)", .boolean(true)),
        TCKCase("OR operator is NOT short circuit evaluated when the first operand evaluates to false", "false or (1 != 1 / 0)", .boolean(false), error: .math),

        TCKCase("False xor false", "FALSE XOR FALSE", .boolean(false)),
        TCKCase("False xor true", "FALSE XOR TRUE", .boolean(true)),
        TCKCase("True xor false", "TRUE XOR FALSE", .boolean(true)),
        TCKCase("True xor true", "TRUE XOR TRUE", .boolean(false)),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
