import Eventing
import Testing

typealias Headers = [(name: String, value: String)]

func utf8(_ text: String) -> [UInt8] { Array(text.utf8) }

func text(_ bytes: [UInt8]?) -> String? { bytes.map { String(decoding: $0, as: UTF8.self) } }

/// The minimal binary-mode headers for a valid event, plus any extras.
func binaryHeaders(_ extra: Headers = []) -> Headers {
    [("ce-specversion", "1.0"), ("ce-id", "A234-1234-1234"), ("ce-source", "/mycontext"), ("ce-type", "com.example.someevent")] + extra
}

func structuredHeaders() -> Headers { [("Content-Type", "application/cloudevents+json; charset=UTF-8")] }

func decodeOne(_ headers: Headers, _ body: [UInt8] = []) throws -> CloudEvent {
    let events = try CloudEventHTTP.decode(headers: headers, body: body)
    try #require(events.count == 1)
    return events[0]
}

func decodeStructured(_ json: String) throws -> CloudEvent {
    try decodeOne(structuredHeaders(), utf8(json))
}

/// The error decoding a structured event fails with.
func structuredError(_ json: String) -> CloudEventError? {
    #expect(throws: CloudEventError.self) { _ = try decodeStructured(json) }
}

func binaryError(_ headers: Headers, _ body: [UInt8] = []) -> CloudEventError? {
    #expect(throws: CloudEventError.self) { _ = try CloudEventHTTP.decode(headers: headers, body: body) }
}

func sampleEvent() -> CloudEvent {
    CloudEvent(id: "1", source: "/sensors/x", type: "com.example.reading")
}

func validationError(_ event: CloudEvent) -> CloudEventError? {
    #expect(throws: CloudEventError.self) { try event.validate() }
}

/// A structured event body with the given extra members spliced in.
func structuredJSON(_ members: String = "") -> String {
    let base = #""specversion":"1.0","id":"1","source":"/s","type":"t""#
    return "{" + base + (members.isEmpty ? "" : "," + members) + "}"
}
