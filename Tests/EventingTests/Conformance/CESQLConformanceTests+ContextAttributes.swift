import Testing
@testable import Eventing

/// cesql_tck/context_attributes_access.yaml
@Suite("TCK: Context attributes")
struct ContextAttributesConformanceTests {
    static let cases: [TCKCase] = [
        TCKCase("Access to required attribute", "id", .string("myId"), overrides: ["id": .string("myId")]),
        TCKCase("Access to optional attribute", "subject", .string("mySubject"), overrides: ["subject": .string("mySubject")]),
        TCKCase(
            "Absent optional attribute", "subject", .boolean(false), error: .missingAttribute,
            event: ["specversion": .string("1.0"), "id": .string("myId"), "source": .string("localhost.localdomain"), "type": .string("myType")]
        ),
        TCKCase("Access to optional boolean extension", "mybool", .boolean(true), overrides: ["mybool": .boolean(true)]),
        TCKCase("Access to optional integer extension", "myint", .integer(10), overrides: ["myint": .integer(10)]),
        TCKCase("Access to optional string extension", "myext", .string("my extension"), overrides: ["myext": .string("my extension")]),
        TCKCase(
            "URL type cohercion to string", "source", .string("http://localhost/source"),
            event: ["specversion": .string("1.0"), "id": .string("myId"), "source": .string("http://localhost/source"), "type": .string("myType")]
        ),
        TCKCase(
            "Timestamp type cohercion to string", "time", .string("2018-04-26T14:48:09+02:00"),
            event: [
                "specversion": .string("1.0"), "id": .string("myId"), "source": .string("http://localhost/source"),
                "type": .string("myType"), "time": .string("2018-04-26T14:48:09+02:00"),
            ]
        ),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
