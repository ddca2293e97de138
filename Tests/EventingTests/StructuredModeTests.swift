import Eventing
import Testing

@Suite struct StructuredModeTests {
    @Test func decodesAllCoreAttributes() throws {
        let event = try decodeStructured(#"""
        {"specversion":"1.0","type":"com.github.pull_request.opened","source":"https://github.com/cloudevents/spec/pull",
         "subject":"123","id":"A234-1234-1234","time":"2018-04-05T17:31:00Z","comexampleextension1":"value",
         "comexampleothervalue":5,"flag":true,"datacontenttype":"text/xml","dataschema":"https://example.com/s.json",
         "data":"<much wow=\"xml\"/>"}
        """#)
        #expect(event.type == "com.github.pull_request.opened")
        #expect(event.subject == "123")
        #expect(event.time == "2018-04-05T17:31:00Z")
        #expect(event.dataschema == "https://example.com/s.json")
        #expect(event.extensions == ["comexampleextension1": .string("value"), "comexampleothervalue": .integer(5), "flag": .boolean(true)])
        #expect(text(event.data) == #"<much wow="xml"/>"#)
    }

    @Test func contentTypeIsMatchedCaseInsensitively() throws {
        let events = try CloudEventHTTP.decode(headers: [("CONTENT-TYPE", "Application/CloudEvents+JSON")], body: utf8(structuredJSON()))
        #expect(events.count == 1)
    }

    @Test func jsonDataIsKeptByteExact() throws {
        let payload = #"{ "b" : [1, 2.50, "\u00e9"],"a":null }"#
        let event = try decodeStructured(structuredJSON(#""datacontenttype":"application/json","data":"# + payload))
        #expect(text(event.data) == payload)
    }

    @Test func dataWithoutContentTypeIsJSON() throws {
        let event = try decodeStructured(structuredJSON(#""data":"hi""#))
        #expect(text(event.data) == #""hi""#)
        #expect(event.datacontenttype == nil)
    }

    @Test func plusJSONSuffixIsJSON() throws {
        let event = try decodeStructured(structuredJSON(#""datacontenttype":"application/vnd.x+json; charset=utf-8","data":[1]"#))
        #expect(text(event.data) == "[1]")
    }

    @Test func stringDataForTextTypeIsUnescaped() throws {
        let event = try decodeStructured(structuredJSON(#""datacontenttype":"text/plain","data":"a\nb \ud83d\ude00""#))
        #expect(text(event.data) == "a\nb 😀")
    }

    @Test func nullDataForJSONTypeIsTheBytesNull() throws {
        let event = try decodeStructured(structuredJSON(#""data":null"#))
        #expect(text(event.data) == "null")
    }

    @Test func nullDataForTextTypeIsNoData() throws {
        let event = try decodeStructured(structuredJSON(#""datacontenttype":"text/plain","data":null"#))
        #expect(event.data == nil)
    }

    @Test func dataBase64IsDecoded() throws {
        let event = try decodeStructured(structuredJSON(#""datacontenttype":"application/octet-stream","data_base64":"AAEC/w==""#))
        #expect(event.data == [0, 1, 2, 255])
    }

    @Test func dataBase64WithEscapedSlashIsDecoded() throws {
        let event = try decodeStructured(structuredJSON(#""data_base64":"\/w==""#))
        #expect(event.data == [255])
    }

    @Test func invalidBase64IsRejected() {
        #expect(structuredError(structuredJSON(#""data_base64":"A*==""#))?.attribute == "data_base64")
        #expect(structuredError(structuredJSON(#""data_base64":"QQ=""#))?.attribute == "data_base64")
    }

    @Test func dataAndDataBase64TogetherAreRejected() {
        #expect(structuredError(structuredJSON(#""data":1,"data_base64":"AA==""#))?.attribute == "data")
    }

    @Test func nullOptionalAttributeIsAbsent() throws {
        let event = try decodeStructured(structuredJSON(#""subject":null,"myext":null"#))
        #expect(event.subject == nil)
        #expect(event.extensions.isEmpty)
    }

    @Test func duplicateMemberIsRejected() {
        #expect(structuredError(structuredJSON(#""id":"2""#))?.attribute == "id")
        #expect(structuredError(structuredJSON(#""x":1,"x":null"#))?.attribute == "x")
    }

    @Test func int32OverflowInExtensionIsRejected() {
        #expect(structuredError(structuredJSON(#""big":2147483648"#))?.attribute == "big")
        #expect(structuredError(structuredJSON(#""big":-2147483649"#))?.attribute == "big")
    }

    @Test func int32BoundsAreAccepted() throws {
        let event = try decodeStructured(structuredJSON(#""hi":2147483647,"lo":-2147483648"#))
        #expect(event.extensions["hi"] == .integer(.max))
        #expect(event.extensions["lo"] == .integer(.min))
    }

    @Test func nonIntegerExtensionNumberIsRejected() {
        #expect(structuredError(structuredJSON(#""ratio":1.5"#))?.attribute == "ratio")
        #expect(structuredError(structuredJSON(#""ratio":1e3"#))?.attribute == "ratio")
    }

    @Test func objectExtensionIsRejected() {
        #expect(structuredError(structuredJSON(#""obj":{}"#))?.attribute == "obj")
    }

    @Test func nonStringCoreAttributeIsRejected() {
        #expect(structuredError(#"{"specversion":"1.0","id":1,"source":"/s","type":"t"}"#)?.attribute == "id")
    }

    /// A body cut off right after a member name is malformed JSON, not a bad value of it.
    @Test func truncatedBodyIsASyntaxError() {
        let error = structuredError(#"{"specversion":"#)
        #expect(error != nil && error?.attribute == nil, "\(String(describing: error))")
    }

    @Test func missingSpecversionNamesIt() {
        #expect(structuredError(#"{"id":"1","source":"/s","type":"t"}"#)?.attribute == "specversion")
    }

    @Test func unpairedSurrogatesAreRejected() {
        #expect(structuredError(structuredJSON(#""subject":"\ud800""#))?.attribute == "subject")
        #expect(structuredError(structuredJSON(#""subject":"\udc00x""#))?.attribute == "subject")
        #expect(structuredError(structuredJSON(#""data":"\ud800\u0041""#)) != nil)
    }

    @Test func escapedControlCharacterInAttributeIsRejected() {
        let error = structuredError(structuredJSON(#""subject":"a\u0001""#))
        #expect(error?.attribute == "subject")
    }

    @Test func malformedJSONIsRejected() {
        for body in ["", "{", #"{"id":"1",}"#, "[]", #"{"a":01}"#, structuredJSON() + "x", #"{"a":tru}"#, "{\"a\":\"\u{01}\"}"] {
            #expect(structuredError(body)?.status == 400, "\(body)")
        }
    }

    @Test func invalidUTF8InJSONIsRejected() {
        var body = utf8(structuredJSON(#""subject":"ab""#))
        body[body.count - 3] = 0xC0
        #expect(throws: CloudEventError.self) { _ = try CloudEventHTTP.decode(headers: structuredHeaders(), body: body) }
    }

    @Test func deepNestingInDataIsRefusedWithoutCrashing() {
        let deep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        #expect(structuredError(structuredJSON(#""data":"# + deep))?.attribute == "data")
    }

    @Test func moderateNestingInDataIsAccepted() throws {
        let nested = String(repeating: #"{"a":["#, count: 50) + "1" + String(repeating: "]}", count: 50)
        let event = try decodeStructured(structuredJSON(#""data":"# + nested))
        #expect(text(event.data) == nested)
    }

    @Test func avroIsUnsupportedMediaType() {
        let error = #expect(throws: CloudEventError.self) {
            _ = try CloudEventHTTP.decode(headers: [("Content-Type", "application/cloudevents+avro")], body: [1, 2])
        }
        #expect(error?.status == 415)
    }

    @Test func nonUTF8CharsetIsUnsupportedMediaType() {
        let error = #expect(throws: CloudEventError.self) {
            _ = try CloudEventHTTP.decode(headers: [("Content-Type", "application/cloudevents+json; charset=latin1")], body: utf8(structuredJSON()))
        }
        #expect(error?.status == 415)
    }

    @Test func byteOrderMarkIsTolerated() throws {
        let events = try CloudEventHTTP.decode(headers: structuredHeaders(), body: [0xEF, 0xBB, 0xBF] + utf8(structuredJSON()))
        #expect(events.count == 1)
    }
}

@Suite struct BatchedModeTests {
    let headers: Headers = [("Content-Type", "application/cloudevents-batch+json; charset=UTF-8")]

    @Test func decodesEveryEventInOrder() throws {
        let body = "[" + structuredJSON(#""subject":"a""#) + " , " + structuredJSON(#""subject":"b""#) + "]"
        let events = try CloudEventHTTP.decode(headers: headers, body: utf8(body))
        #expect(events.map(\.subject) == ["a", "b"])
    }

    @Test func emptyBatchIsAllowed() throws {
        #expect(try CloudEventHTTP.decode(headers: headers, body: utf8(" [ ] ")).isEmpty)
    }

    @Test func invalidMemberFailsTheBatch() {
        let body = "[" + structuredJSON() + "," + #"{"specversion":"1.0","id":"","source":"/s","type":"t"}"# + "]"
        let error = #expect(throws: CloudEventError.self) { _ = try CloudEventHTTP.decode(headers: headers, body: utf8(body)) }
        #expect(error?.attribute == "id")
    }

    @Test func nonArrayBatchIsRejected() {
        #expect(throws: CloudEventError.self) { _ = try CloudEventHTTP.decode(headers: headers, body: utf8(structuredJSON())) }
    }

    @Test func unknownBatchFormatIsUnsupported() {
        let error = #expect(throws: CloudEventError.self) {
            _ = try CloudEventHTTP.decode(headers: [("Content-Type", "application/cloudevents-batch+avro")], body: [])
        }
        #expect(error?.status == 415)
    }
}
