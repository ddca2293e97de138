import Testing
@testable import Eventing

/// cesql_tck/parse_errors.yaml
@Suite("TCK: Parsing errors")
struct ParseErrorsConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("No closed parenthesis", "ABC(", error: .parse),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
