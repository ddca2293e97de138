import Testing
@testable import Eventing

/// cesql_tck/exists_expression.yaml
@Suite("TCK: Exists expression")
struct ExistsConformanceTests {
    private static let base: [String: CloudEventValue] = [
        "specversion": .string("1.0"), "id": .string("myId"),
        "source": .string("http://localhost/source"), "type": .string("myType"),
    ]

    static let cases: [TCKCase] = [
        TCKCase("required attributes always exist", "EXISTS specversion AND EXISTS id AND EXISTS type AND EXISTS SOURCE", .boolean(true)),

        TCKCase("optional attribute available", "EXISTS time", .boolean(true), event: base.merging(["time": .string("2018-04-26T14:48:09+02:00")]) { $1 }),
        TCKCase("optional attribute absent", "EXISTS time", .boolean(false), event: base),
        TCKCase("optional attribute absent (negated)", "NOT EXISTS time", .boolean(true), event: base),

        TCKCase("optional extension available", "EXISTS myext", .boolean(true), event: base.merging(["myext": .string("my value")]) { $1 }),
        TCKCase("optional extension absent", "EXISTS myext", .boolean(false), event: base),
        TCKCase("optional extension absent (negated)", "NOT EXISTS myext", .boolean(true), event: base),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
