import Testing
@testable import Eventing

/// cesql_tck/binary_comparison_operators.yaml
@Suite("TCK: Binary comparison operations")
struct BinaryComparisonConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("True is equal to false", "TRUE = FALSE", .boolean(false)),
        TCKCase("False is equal to false", "FALSE = FALSE", .boolean(true)),
        TCKCase("1 is equal to 2", "1 = 2", .boolean(false)),
        TCKCase("2 is equal to 2", "2 = 2", .boolean(true)),
        TCKCase("abc is equal to 123", "'abc' = '123'", .boolean(false)),
        TCKCase("abc is equal to abc", "'abc' = 'abc'", .boolean(true)),
        TCKCase("Equals operator returns false when encountering a missing attribute", "missing = 2", .boolean(false), error: .missingAttribute),

        TCKCase("True is not equal to false", "TRUE != FALSE", .boolean(true)),
        TCKCase("False is not equal to false", "FALSE != FALSE", .boolean(false)),
        TCKCase("1 is not equal to 2", "1 != 2", .boolean(true)),
        TCKCase("2 is not equal to 2", "2 != 2", .boolean(false)),
        TCKCase("abc is not equal to 123", "'abc' != '123'", .boolean(true)),
        TCKCase("abc is not equal to abc", "'abc' != 'abc'", .boolean(false)),
        TCKCase("Not equal operator returns false when encountering a missing attribute", "missing != 2", .boolean(false), error: .missingAttribute),

        TCKCase("True is not equal to false (diamond operator)", "TRUE <> FALSE", .boolean(true)),
        TCKCase("False is not equal to false (diamond operator)", "FALSE <> FALSE", .boolean(false)),
        TCKCase("1 is not equal to 2 (diamond operator)", "1 <> 2", .boolean(true)),
        TCKCase("2 is not equal to 2 (diamond operator)", "2 <> 2", .boolean(false)),
        TCKCase("abc is not equal to 123 (diamond operator)", "'abc' <> '123'", .boolean(true)),
        TCKCase("abc is not equal to abc (diamond operator)", "'abc' <> 'abc'", .boolean(false)),
        TCKCase("Diamond operator returns false when encountering a missing attribute", "missing <> 2", .boolean(false), error: .missingAttribute),

        TCKCase("1 is less or equal than 2", "2 <= 2", .boolean(true)),
        TCKCase("3 is less or equal than 2", "3 <= 2", .boolean(false)),
        TCKCase("1 is less than 2", "1 < 2", .boolean(true)),
        TCKCase("2 is less than 2", "2 < 2", .boolean(false)),
        TCKCase("2 is greater or equal than 2", "2 >= 2", .boolean(true)),
        TCKCase("2 is greater or equal than 3", "2 >= 3", .boolean(false)),
        TCKCase("2 is greater than 1", "2 > 1", .boolean(true)),
        TCKCase("2 is greater than 2", "2 > 2", .boolean(false)),
        TCKCase("Less than or equal operator returns false when encountering a missing attribute", "missing <= 2", .boolean(false), error: .missingAttribute),

        TCKCase("implicit casting with string as right type", "true = 'TRUE'", .boolean(false)),
        TCKCase("implicit casting with boolean as right type", "'TRUE' = true", .boolean(true)),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
