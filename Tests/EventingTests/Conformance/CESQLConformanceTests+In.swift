import Testing
@testable import Eventing

/// cesql_tck/in_expression.yaml
@Suite("TCK: In expression")
struct InConformanceTests {
    private static let withExtension: [String: CloudEventValue] = [
        "specversion": .string("1.0"), "id": .string("myId"), "source": .string("http://localhost/source"),
        "type": .string("myType"), "myext": .string("http://localhost/source"),
    ]
    private static let withoutExtension: [String: CloudEventValue] = [
        "specversion": .string("1.0"), "id": .string("myId"), "source": .string("http://localhost/source"),
        "type": .string("myType"),
    ]

    static let cases: [TCKCase] = [
        TCKCase("int in int set", "123 IN (1, 2, 3, 12, 13, 23, 123)", .boolean(true)),
        TCKCase("int not in int set", "123 NOT IN (1, 2, 3, 12, 13, 23, 123)", .boolean(false)),

        TCKCase("string in string set", "'abc' IN ('abc', \"bcd\")", .boolean(true)),
        TCKCase("string not in string set", "'aaa' IN ('abc', \"bcd\")", .boolean(false)),

        TCKCase("bool in bool set", "TRUE IN (TRUE, FALSE)", .boolean(true)),
        TCKCase("bool not in bool set", "TRUE IN (FALSE)", .boolean(false)),

        TCKCase("mix literals and identifiers (1)", "source IN (myext, 'abc')", .boolean(true), event: withExtension),
        TCKCase("mix literals and identifiers (2)", "source IN (source)", .boolean(true), event: withExtension),
        TCKCase("mix literals and identifiers (3)", "source IN (id, \"http://localhost/source\")", .boolean(true), event: withExtension),
        TCKCase("mix literals and identifiers (4)", "source IN (id, 'xyz')", .boolean(false), event: withoutExtension),

        TCKCase("type coercion with booleans (1)", "'true' IN (TRUE, 'false')", .boolean(true)),
        TCKCase("type coercion with booleans (2)", "'true' IN ('TRUE', 'false')", .boolean(false)),
        TCKCase("type coercion with booleans (3)", "TRUE IN ('true', 'false')", .boolean(true)),
        TCKCase("type coercion with booleans (4)", "'TRUE' IN (TRUE, 'false')", .boolean(false)),

        TCKCase("type coercion with int (1)", "1 IN ('1', '2')", .boolean(true)),
        TCKCase("type coercion with int (2)", "'1' IN (1, 2)", .boolean(true)),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
