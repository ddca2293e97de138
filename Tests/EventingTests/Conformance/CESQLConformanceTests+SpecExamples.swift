import Testing
@testable import Eventing

/// cesql_tck/spec_examples.yaml
@Suite("TCK: Specification examples")
struct SpecExamplesConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Case insensitive hops (1)", "int(hop) < int(ttl) and int(hop) < 1000", .boolean(true), overrides: ["hop": .string("5"), "ttl": .string("10")]),
        TCKCase("Case insensitive hops (2)", "INT(hop) < INT(ttl) AND INT(hop) < 1000", .boolean(true), overrides: ["hop": .string("5"), "ttl": .string("10")]),
        TCKCase("Case insensitive hops (3)", "hop < ttl", .boolean(true), overrides: ["hop": .string("5"), "ttl": .string("10")]),

        TCKCase("Equals with casting (1)", "sequence = 5", .boolean(true), overrides: ["sequence": .string("5")]),
        TCKCase("Equals with casting (2)", "sequence = 5", .boolean(false), overrides: ["sequence": .string("6")]),

        TCKCase(
            "Logic expression (1)", "firstname = 'Francesco' OR subject = 'Francesco'", .boolean(true),
            overrides: ["subject": .string("Francesco"), "firstname": .string("Doug")]
        ),
        TCKCase(
            "Logic expression (2)", "firstname = 'Francesco' OR subject = 'Francesco'", .boolean(true),
            overrides: ["firstname": .string("Francesco"), "subject": .string("Doug")]
        ),
        TCKCase(
            "Logic expression (3)", "(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'", .boolean(true),
            overrides: ["subject": .string("Doug"), "firstname": .string("Francesco"), "lastname": .string("Guardiani")]
        ),
        TCKCase(
            "Logic expression (4)", "(firstname = 'Francesco' AND lastname = 'Guardiani') OR subject = 'Francesco Guardiani'", .boolean(true),
            overrides: ["subject": .string("Francesco Guardiani"), "firstname": .string("Doug"), "lastname": .string("Davis")]
        ),

        TCKCase("Subject exists", "EXISTS subject", .boolean(true), overrides: ["subject": .string("Francesco Guardiani")]),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
