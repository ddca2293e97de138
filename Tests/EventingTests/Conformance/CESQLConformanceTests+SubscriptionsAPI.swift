import Testing
@testable import Eventing

/// cesql_tck/subscriptions_api_recreations.yaml
@Suite("TCK: SubscriptionsAPI Recreations")
struct SubscriptionsAPIConformanceTests {
    private static let dnf = "(id = 'myId' AND type LIKE '%.success') OR (id = 'notmyId' AND source LIKE 'http://%' AND type LIKE '%.warning')"
    private static let cnf = "(id = 'myId' OR type LIKE '%.success') AND (id = 'notmyId' OR source LIKE 'https://%' OR type LIKE '%.warning')"

    static let cases: [TCKCase] = [
        TCKCase("Prefix filter (1)", "source LIKE 'https://%'", .boolean(true), overrides: ["source": .string("https://example.com")]),
        TCKCase("Prefix filter (2)", "source LIKE 'https://%'", .boolean(false), overrides: ["source": .string("http://example.com")]),
        TCKCase("Prefix filter on string extension", "myext LIKE 'custom%'", .boolean(true), overrides: ["myext": .string("customext")]),
        TCKCase("Prefix filter on missing string extension", "myext LIKE 'custom%'", .boolean(false), error: .missingAttribute),

        TCKCase("Suffix filter (1)", "type like '%.error'", .boolean(true), overrides: ["type": .string("com.github.error")]),
        TCKCase("Suffix filter (2)", "type like '%.error'", .boolean(false), overrides: ["type": .string("com.github.success")]),
        TCKCase("Suffix filter on string extension", "myext LIKE '%ext'", .boolean(true), overrides: ["myext": .string("customext")]),
        TCKCase("Suffix filter on missing string extension", "myext LIKE '%ext'", .boolean(false), error: .missingAttribute),

        TCKCase("Exact filter (1)", "id = 'myId'", .boolean(true), overrides: ["id": .string("myId")]),
        TCKCase("Exact filter  (2)", "id = 'myId'", .boolean(false), overrides: ["id": .string("notmyId")]),
        TCKCase("Exact filter on string extension", "myext = 'customext'", .boolean(true), overrides: ["myext": .string("customext")]),
        TCKCase("Exact filter on missing string extension", "myext = 'customext'", .boolean(false), error: .missingAttribute),

        TCKCase(
            "Prefix filter AND Suffix filter (1)", "id LIKE 'my%' AND source LIKE '%.ca'", .boolean(true),
            overrides: ["id": .string("myId"), "source": .string("http://www.some-website.ca")]
        ),
        TCKCase(
            "Prefix filter AND Suffix filter (2)", "id LIKE 'my%' AND source LIKE '%.ca'", .boolean(false),
            overrides: ["id": .string("myId"), "source": .string("http://www.some-website.com")]
        ),
        TCKCase(
            "Prefix filter AND Suffix filter (3)", "myext LIKE 'custom%' AND type LIKE '%.error'", .boolean(true),
            overrides: ["myext": .string("customext"), "type": .string("com.github.error")]
        ),
        TCKCase(
            "Prefix AND Suffix filter (4)", "type LIKE 'example.%' AND myext LIKE 'custom%'", .boolean(false), error: .missingAttribute,
            overrides: ["type": .string("example.event.type")]
        ),

        TCKCase(
            "Prefix OR Suffix filter (1)", "id LIKE 'my%' OR source LIKE '%.ca'", .boolean(true),
            overrides: ["id": .string("myId"), "source": .string("http://www.some-website.ca")]
        ),
        TCKCase(
            "Prefix OR Suffix filter (2)", "id LIKE 'my%' OR source LIKE '%.ca'", .boolean(true),
            overrides: ["id": .string("myId"), "source": .string("http://www.some-website.com")]
        ),
        TCKCase(
            "Prefix OR Suffix filter (3)", "id LIKE 'my%' OR source LIKE '%.ca'", .boolean(true),
            overrides: ["id": .string("notmyId"), "source": .string("http://www.some-website.ca")]
        ),
        TCKCase(
            "Prefix OR Suffix filter (4)", "id LIKE 'my%' OR source LIKE '%.ca'", .boolean(false),
            overrides: ["id": .string("notmyId"), "source": .string("http://www.some-website.com")]
        ),

        TCKCase("Disjunctive Normal Form (1)", dnf, .boolean(true), overrides: ["id": .string("myId"), "type": .string("example.event.success")]),
        TCKCase(
            "Disjunctive Normal Form (2)", dnf, .boolean(true),
            overrides: ["id": .string("notmyId"), "type": .string("example.event.warning"), "source": .string("http://localhost.localdomain")]
        ),
        TCKCase(
            "Disjunctive Normal Form (3)", dnf, .boolean(false),
            overrides: ["id": .string("notmyId"), "type": .string("example.event.warning"), "source": .string("https://localhost.localdomain")]
        ),

        TCKCase(
            "Conjunctive Normal Form (1)", cnf, .boolean(true),
            overrides: ["id": .string("myId"), "type": .string("example.event.warning"), "source": .string("http://localhost.localdomain")]
        ),
        TCKCase(
            "Conjunctive Normal Form (2)", cnf, .boolean(true),
            overrides: ["id": .string("notmyId"), "type": .string("example.event.success"), "source": .string("http://localhost.localdomain")]
        ),
        TCKCase(
            "Conjunctive Normal Form (3)", cnf, .boolean(false),
            overrides: ["id": .string("notmyId"), "type": .string("example.event.warning"), "source": .string("http://localhost.localdomain")]
        ),
        TCKCase(
            "Conjunctive Normal Form (4)", cnf, .boolean(false),
            overrides: ["id": .string("myId"), "type": .string("example.event.success"), "source": .string("http://localhost.localdomain")]
        ),
        TCKCase(
            "Conjunctive Normal Form (5)", cnf + " AND (myext = 'customext')", .boolean(false), error: .missingAttribute,
            overrides: ["id": .string("myId"), "type": .string("example.event.warning"), "source": .string("http://localhost.localdomain")]
        ),
    ]

    @Test(arguments: cases)
    func conformance(_ testCase: TCKCase) {
        TCK.run(testCase)
    }
}
