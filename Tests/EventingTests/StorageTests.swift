import Eventing
import Testing

@Suite struct StorageTests {
    func fullEvent() -> CloudEvent {
        CloudEvent(
            id: "id-€", source: "/s", type: "t", datacontenttype: "application/json",
            dataschema: "https://example.com/s", subject: "sub", time: "2018-04-05T17:31:00Z",
            extensions: ["s": .string("v"), "i": .integer(.min), "b": .boolean(true), "e": .string("")],
            data: utf8(#"{"a":1}"#)
        )
    }

    @Test func fullEventRoundTrips() throws {
        let event = fullEvent()
        #expect(try CloudEvent(storageBytes: event.storageBytes()) == event)
    }

    @Test func minimalEventRoundTrips() throws {
        let event = sampleEvent()
        #expect(try CloudEvent(storageBytes: event.storageBytes()) == event)
    }

    @Test func emptyDataIsDistinctFromNoData() throws {
        var event = sampleEvent()
        event.data = []
        #expect(try CloudEvent(storageBytes: event.storageBytes()).data == [])
    }

    @Test func largePayloadRoundTrips() throws {
        var event = sampleEvent()
        event.data = (0..<70_000).map { UInt8(truncatingIfNeeded: $0) }
        #expect(try CloudEvent(storageBytes: event.storageBytes()) == event)
    }

    @Test func encodingIsDeterministic() {
        #expect(fullEvent().storageBytes() == fullEvent().storageBytes())
    }

    @Test func versionByteComesFirst() {
        #expect(sampleEvent().storageBytes().first == 1)
    }

    @Test func unknownVersionIsRejected() {
        var bytes = sampleEvent().storageBytes()
        bytes[0] = 99
        #expect(throws: CloudEventError.self) { _ = try CloudEvent(storageBytes: bytes) }
    }

    @Test func everyTruncationIsRejected() {
        let bytes = fullEvent().storageBytes()
        for length in 0..<bytes.count {
            #expect(throws: CloudEventError.self) { _ = try CloudEvent(storageBytes: Array(bytes[..<length])) }
        }
    }

    @Test func trailingBytesAreRejected() {
        #expect(throws: CloudEventError.self) { _ = try CloudEvent(storageBytes: sampleEvent().storageBytes() + [0]) }
    }
}
