import Eventing
import Testing

@Suite struct BinaryModeTests {
    @Test func decodesRequiredAttributes() throws {
        let event = try decodeOne(binaryHeaders())
        #expect(event.id == "A234-1234-1234")
        #expect(event.source == "/mycontext")
        #expect(event.type == "com.example.someevent")
        #expect(event.specversion == "1.0")
    }

    @Test func contentTypeBecomesDatacontenttypeAndBodyBecomesData() throws {
        let event = try decodeOne(binaryHeaders([("Content-Type", "text/plain")]), utf8("hello"))
        #expect(event.datacontenttype == "text/plain")
        #expect(text(event.data) == "hello")
    }

    @Test func emptyBodyWithoutContentTypeHasNoData() throws {
        let event = try decodeOne(binaryHeaders())
        #expect(event.data == nil)
        #expect(event.datacontenttype == nil)
    }

    @Test func headerNamesAreCaseInsensitive() throws {
        let event = try decodeOne([("CE-SpecVersion", "1.0"), ("Ce-Id", "x"), ("ce-SOURCE", "/s"), ("CE-TYPE", "t"), ("CE-MyExt", "v")])
        #expect(event.id == "x")
        #expect(event.extensions["myext"] == .string("v"))
    }

    @Test func optionalAttributesAndExtensionsAreMapped() throws {
        let event = try decodeOne(binaryHeaders([
            ("ce-subject", "123"), ("ce-time", "2018-04-05T17:31:00Z"),
            ("ce-dataschema", "https://example.com/schema"), ("ce-comexampleext", "42"),
        ]))
        #expect(event.subject == "123")
        #expect(event.time == "2018-04-05T17:31:00Z")
        #expect(event.dataschema == "https://example.com/schema")
        #expect(event.extensions["comexampleext"] == .string("42"))
        #expect(event.attribute("comexampleext") == .string("42"))
    }

    @Test func nonCloudEventHeadersAreIgnored() throws {
        let event = try decodeOne(binaryHeaders([("Host", "x"), ("cex", "y"), ("c", "z")]))
        #expect(event.extensions.isEmpty)
    }

    @Test func specPercentEncodingExampleDecodes() throws {
        let event = try decodeOne(binaryHeaders([("ce-subject", "Euro%20%E2%82%AC%20%F0%9F%98%80")]))
        #expect(event.subject == "Euro € 😀")
    }

    @Test func lowerCaseAndUnnecessaryPercentEncodingIsAccepted() throws {
        let event = try decodeOne(binaryHeaders([("ce-subject", "%41b%e2%82%ac")]))
        #expect(event.subject == "Ab€")
    }

    @Test func overlongUTF8IsRejected() {
        let error = binaryError(binaryHeaders([("ce-subject", "a%C0%A0b")]))
        #expect(error?.attribute == "subject")
        #expect(error?.status == 400)
    }

    @Test func encodedSurrogateIsRejected() {
        #expect(binaryError(binaryHeaders([("ce-myext", "%ED%A0%80")]))?.attribute == "myext")
    }

    @Test func malformedPercentEscapeIsRejected() {
        #expect(binaryError(binaryHeaders([("ce-subject", "50%")]))?.attribute == "subject")
        #expect(binaryError(binaryHeaders([("ce-subject", "%zz")]))?.attribute == "subject")
    }

    @Test func quotedStringHeaderIsUnescapedBeforePercentDecoding() throws {
        let event = try decodeOne(binaryHeaders([("ce-subject", #""a\"b%20c""#)]))
        #expect(event.subject == #"a"b c"#)
    }

    @Test func danglingEscapeInQuotedStringIsRejected() {
        #expect(binaryError(binaryHeaders([("ce-subject", #""abc\""#)]))?.attribute == "subject")
    }

    @Test func missingSpecversionNamesIt() {
        let headers = binaryHeaders().filter { $0.name != "ce-specversion" }
        #expect(binaryError(headers)?.attribute == "specversion")
    }

    @Test func missingIdNamesIt() {
        #expect(binaryError(binaryHeaders().filter { $0.name != "ce-id" })?.attribute == "id")
    }

    @Test func ceDatacontenttypeHeaderIsRejected() {
        #expect(binaryError(binaryHeaders([("ce-datacontenttype", "text/plain")]))?.attribute == "datacontenttype")
    }

    @Test func duplicateHeaderIsRejected() {
        #expect(binaryError(binaryHeaders([("ce-ID", "again")]))?.attribute == "id")
        #expect(binaryError(binaryHeaders([("ce-x", "1"), ("CE-X", "2")]))?.attribute == "x")
    }

    @Test func invalidExtensionNameFromHeaderIsRejected() {
        #expect(binaryError(binaryHeaders([("ce-my_ext", "1")]))?.attribute == "my_ext")
    }

    @Test func unknownContentTypeIsBinary() throws {
        let event = try decodeOne(binaryHeaders([("content-type", "application/json")]), utf8(#"{"a":1}"#))
        #expect(event.datacontenttype == "application/json")
        #expect(text(event.data) == #"{"a":1}"#)
    }
}
