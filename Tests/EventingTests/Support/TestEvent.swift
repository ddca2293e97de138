@testable import Eventing

/// A dictionary-backed event for tests.
struct TestEvent: EventAttributeReader, Sendable {
    var attributes: [String: CloudEventValue]

    init(_ attributes: [String: CloudEventValue] = [:]) {
        self.attributes = attributes
    }

    func attribute(_ name: String) -> CloudEventValue? {
        attributes[name]
    }

    /// A minimal valid CloudEvent: the four required attributes and nothing else.
    static let minimal = TestEvent([
        "specversion": .string("1.0"),
        "id": .string("test-id"),
        "source": .string("test/source"),
        "type": .string("com.example.test"),
    ])

    func with(_ overrides: [String: CloudEventValue]) -> TestEvent {
        TestEvent(attributes.merging(overrides) { _, override in override })
    }
}
