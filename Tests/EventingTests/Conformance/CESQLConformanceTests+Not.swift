import Testing
@testable import Eventing

/// cesql_tck/not_operator.yaml
@Suite("TCK: Not operator")
struct NotConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Not true", "NOT TRUE", .boolean(false)),
        TCKCase("Not false", "NOT FALSE", .boolean(true)),

        TCKCase("Not true with casting", "NOT 'TRUE'", .boolean(false)),
        TCKCase("Not false 10 with casting", "NOT 'FALSE'", .boolean(true)),

        // The upstream file reuses the name "Not true with casting" for this case.
        TCKCase("Not true with casting (integer)", "NOT 10", .boolean(false)),

        TCKCase("Not missing attribute", "NOT missing", .boolean(false), error: .missingAttribute),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
