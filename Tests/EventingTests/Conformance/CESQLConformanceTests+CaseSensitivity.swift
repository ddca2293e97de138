import Testing
@testable import Eventing

/// cesql_tck/case_sensitivity.yaml
@Suite("TCK: Case sensitivity")
struct CaseSensitivityConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("TRUE", "TRUE", .boolean(true)),
        TCKCase("true", "true", .boolean(true)),
        TCKCase("tRuE", "tRuE", .boolean(true)),

        TCKCase("FALSE", "FALSE", .boolean(false)),
        TCKCase("false", "false", .boolean(false)),
        TCKCase("FaLsE", "FaLsE", .boolean(false)),

        TCKCase("String literals casing preserved", "'aBcD'", .string("aBcD")),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
