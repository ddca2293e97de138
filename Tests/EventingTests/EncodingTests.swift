import Eventing
import Testing

@Suite struct EncodingTests {
    @Test func binaryEncodingPercentEncodesSpecExample() throws {
        var event = sampleEvent()
        event.subject = "Euro € 😀"
        let headers = CloudEventHTTP.encodeBinary(event).headers
        #expect(headers.first { $0.name == "ce-subject" }?.value == "Euro%20%E2%82%AC%20%F0%9F%98%80")
    }

    @Test func binaryEncodingEscapesQuoteAndPercent() {
        var event = sampleEvent()
        event.extensions["note"] = .string(#"50% "off""#)
        let headers = CloudEventHTTP.encodeBinary(event).headers
        #expect(headers.first { $0.name == "ce-note" }?.value == "50%25%20%22off%22")
    }

    @Test func binaryEncodingCarriesContentTypeAndBody() {
        var event = sampleEvent()
        event.datacontenttype = "application/json"
        event.data = utf8("{}")
        event.extensions["n"] = .integer(-7)
        let (headers, body) = CloudEventHTTP.encodeBinary(event)
        #expect(headers.first { $0.name == "Content-Type" }?.value == "application/json")
        #expect(headers.first { $0.name == "ce-n" }?.value == "-7")
        #expect(!headers.contains { $0.name == "ce-datacontenttype" })
        #expect(body == utf8("{}"))
    }

    @Test func binaryRoundTripPreservesEvent() throws {
        var event = sampleEvent()
        event.subject = "Euro € 😀 \"q\" 100%"
        event.time = "2018-04-05T17:31:00.123+02:00"
        event.datacontenttype = "text/plain; charset=utf-8"
        event.extensions["ext"] = .string("ä b")
        event.data = [0, 1, 2]
        let (headers, body) = CloudEventHTTP.encodeBinary(event)
        #expect(try decodeOne(headers, body) == event)
    }

    @Test func structuredEncodingEmbedsJSONData() {
        var event = sampleEvent()
        event.datacontenttype = "application/json"
        event.data = utf8(#"{"a": [1, 2]}"#)
        let json = text(CloudEventHTTP.encodeStructured(event))
        #expect(json == #"{"specversion":"1.0","id":"1","source":"/sensors/x","type":"com.example.reading","datacontenttype":"application/json","data":{"a": [1, 2]}}"#)
    }

    @Test func structuredEncodingUsesStringForText() {
        var event = sampleEvent()
        event.datacontenttype = "text/plain"
        event.data = utf8("line\n\"q\"")
        #expect(text(CloudEventHTTP.encodeStructured(event))?.hasSuffix(#","data":"line\n\"q\""}"#) == true)
    }

    @Test func structuredEncodingUsesBase64ForBinaryPayloads() {
        var event = sampleEvent()
        event.datacontenttype = "image/png"
        event.data = [0x89, 0x50, 0xFF]
        #expect(text(CloudEventHTTP.encodeStructured(event))?.hasSuffix(#""data_base64":"iVD/"}"#) == true)
    }

    @Test func structuredEncodingUsesBase64ForInvalidJSONUnderJSONType() throws {
        var event = sampleEvent()
        event.data = utf8("not json")
        let body = CloudEventHTTP.encodeStructured(event)
        #expect(text(body)?.contains("data_base64") == true)
        #expect(try decodeOne(structuredHeaders(), body) == event)
    }

    @Test func structuredEncodingWritesTypedExtensionsSorted() {
        var event = sampleEvent()
        event.extensions = ["b": .integer(2), "a": .boolean(false), "c": .string("x")]
        #expect(text(CloudEventHTTP.encodeStructured(event))?.hasSuffix(#""a":false,"b":2,"c":"x"}"#) == true)
    }

    @Test(arguments: [
        ("application/json", utf8(#" {"k":"v"} "#)),
        ("text/plain", utf8("plain \u{1} text")),
        ("application/octet-stream", utf8("abc")),
        ("image/png", [0, 255, 128] as [UInt8]),
    ])
    func structuredRoundTripPreservesData(_ contentType: String, _ data: [UInt8]) throws {
        var event = sampleEvent()
        event.datacontenttype = contentType
        event.data = data
        #expect(try decodeOne(structuredHeaders(), CloudEventHTTP.encodeStructured(event)) == event)
    }

    @Test func binaryToStructuredToBinaryRoundTrip() throws {
        let original = binaryHeaders([
            ("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80"), ("ce-time", "2018-04-05T17:31:00Z"),
            ("ce-traceparent", "00-abc-01"), ("Content-Type", "application/json"),
        ])
        let first = try decodeOne(original, utf8(#"{"x": 1}"#))
        let structured = try decodeOne(structuredHeaders(), CloudEventHTTP.encodeStructured(first))
        #expect(structured == first)
        let (headers, body) = CloudEventHTTP.encodeBinary(structured)
        #expect(try decodeOne(headers, body) == first)
        #expect(headers.first { $0.name == "ce-subject" }?.value == "Euro%20%E2%82%AC%20%F0%9F%98%80")
    }

    @Test func batchRoundTrip() throws {
        var second = sampleEvent()
        second.id = "2"
        second.datacontenttype = "text/plain"
        second.data = utf8("two")
        let events = [sampleEvent(), second]
        let body = CloudEventHTTP.encodeBatch(events)
        let decoded = try CloudEventHTTP.decode(headers: [("Content-Type", CloudEventHTTP.batchContentType)], body: body)
        #expect(decoded == events)
    }

    @Test func emptyBatchEncodesAsEmptyArray() {
        #expect(CloudEventHTTP.encodeBatch([]) == utf8("[]"))
    }

    @Test func structuredContentTypeIsSpecValue() {
        #expect(CloudEventHTTP.structuredContentType == "application/cloudevents+json; charset=UTF-8")
    }
}

@Suite struct CrossModeTests {
    @Test func structuredJSONDataBecomesIdenticalBinaryBody() throws {
        let payload = #"{"z": 1.10, "a": "\u00e9"}"#
        let event = try decodeStructured(structuredJSON(#""datacontenttype":"application/json","data":"# + payload))
        #expect(CloudEventHTTP.encodeBinary(event).body == utf8(payload))
    }

    @Test func explicitNullDataSurvivesStructuredRoundTrip() throws {
        let event = try decodeStructured(structuredJSON(#""data":null"#))
        let again = try decodeOne(structuredHeaders(), CloudEventHTTP.encodeStructured(event))
        #expect(again == event)
        #expect(text(CloudEventHTTP.encodeStructured(event))?.hasSuffix(#""data":null}"#) == true)
    }

    @Test func escapedMemberNamesAreUnderstood() throws {
        let event = try decodeStructured(#"{"specversion":"1.0","\u0069d":"x","source":"\/s","type":"t"}"#)
        #expect(event.id == "x")
        #expect(event.source == "/s")
    }

    @Test func bareCloudEventsMediaTypeIsUnsupported() {
        let error = #expect(throws: CloudEventError.self) {
            _ = try CloudEventHTTP.decode(headers: [("Content-Type", "application/cloudevents")], body: utf8(structuredJSON()))
        }
        #expect(error?.status == 415)
    }

    @Test func errorWithoutAttributeDescribesReasonOnly() {
        #expect(CloudEventError(attribute: nil, reason: "bad").description == "bad")
    }

    @Test func quotedHeaderWithSurroundingWhitespaceIsUnquoted() throws {
        let event = try decodeOne(binaryHeaders([("ce-subject", #"  "x y"  "#)]))
        #expect(event.subject == "x y")
    }
}
