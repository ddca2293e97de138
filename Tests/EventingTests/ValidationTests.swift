import Eventing
import Testing

@Suite struct ValidationTests {
    @Test func sampleEventIsValid() throws {
        try sampleEvent().validate()
    }

    @Test(arguments: ["id", "source", "type", "specversion"])
    func emptyRequiredAttributeIsNamed(_ name: String) {
        var event = sampleEvent()
        switch name {
        case "id": event.id = ""
        case "source": event.source = ""
        case "type": event.type = ""
        default: event.specversion = ""
        }
        #expect(validationError(event)?.attribute == name)
    }

    @Test func onlySpecversion10IsAccepted() {
        var event = sampleEvent()
        event.specversion = "0.3"
        #expect(validationError(event)?.attribute == "specversion")
    }

    @Test(arguments: ["1-555-123-4567", "/sensors/tn-1234567/alerts", "urn:uuid:6e8bc430-9c3a-11d9-9669-0800200c9a66", "https://github.com/cloudevents"])
    func specSourceExamplesAreValid(_ source: String) throws {
        var event = sampleEvent()
        event.source = source
        try event.validate()
    }

    @Test func sourceWithSpaceIsRejected() {
        var event = sampleEvent()
        event.source = "/a b"
        #expect(validationError(event)?.attribute == "source")
    }

    @Test(arguments: ["2018-04-05T17:31:00Z", "2018-04-05t17:31:00z", "1985-04-12T23:20:50.52Z", "1996-12-19T16:39:57-08:00", "2024-02-29T00:00:00+05:30", "1990-12-31T23:59:60Z"])
    func validTimestampsAreAccepted(_ time: String) throws {
        var event = sampleEvent()
        event.time = time
        try event.validate()
    }

    @Test(arguments: ["yesterday", "2018-04-05", "2018-04-05T17:31:00", "2018-04-05 17:31:00Z", "2023-02-29T00:00:00Z", "2018-13-01T00:00:00Z", "2018-04-05T24:00:00Z", "2018-04-05T17:31:00.Z", "2018-04-05T17:31:00+0100", "2018-04-05T17:31:00Zx"])
    func invalidTimestampsAreRejected(_ time: String) {
        var event = sampleEvent()
        event.time = time
        #expect(validationError(event)?.attribute == "time")
    }

    @Test func timeErrorDescriptionQuotesTheValue() {
        var event = sampleEvent()
        event.time = "yesterday"
        #expect(validationError(event)?.description == #"attribute "time": not an RFC 3339 timestamp ("yesterday")"#)
    }

    @Test(arguments: ["https://example.com/schema.json", "urn:example:schema", "mailto:a@b.c"])
    func absoluteDataschemaIsAccepted(_ schema: String) throws {
        var event = sampleEvent()
        event.dataschema = schema
        try event.validate()
    }

    @Test(arguments: ["", "/relative/schema", "1http://x", "http ://x", "https://example.com/a b"])
    func nonAbsoluteDataschemaIsRejected(_ schema: String) {
        var event = sampleEvent()
        event.dataschema = schema
        #expect(validationError(event)?.attribute == "dataschema")
    }

    @Test(arguments: ["application/json", "text/plain; charset=utf-8", "application/vnd.api+json;v=\"1; 2\"", "TEXT/XML"])
    func mediaTypesAreAccepted(_ type: String) throws {
        var event = sampleEvent()
        event.datacontenttype = type
        try event.validate()
    }

    @Test(arguments: ["json", "text/", "/plain", "text/plain;", "text/plain; charset", "text /plain", "text/plain; a=\"unterminated"])
    func malformedMediaTypesAreRejected(_ type: String) {
        var event = sampleEvent()
        event.datacontenttype = type
        #expect(validationError(event)?.attribute == "datacontenttype")
    }

    @Test func emptySubjectIsRejected() {
        var event = sampleEvent()
        event.subject = ""
        #expect(validationError(event)?.attribute == "subject")
    }

    @Test(arguments: [0x00, 0x09, 0x1F, 0x7F, 0x85, 0x9F, 0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFF, 0x10FFFE] as [UInt32])
    func disallowedCharactersAreRejected(_ code: UInt32) throws {
        let scalar = try #require(Unicode.Scalar(code))
        var event = sampleEvent()
        event.subject = "a" + String(Character(scalar)) + "b"
        #expect(validationError(event)?.attribute == "subject")
    }

    @Test func disallowedCharacterInExtensionNamesTheExtension() {
        var event = sampleEvent()
        event.extensions["note"] = .string("bell\u{7}")
        #expect(validationError(event)?.attribute == "note")
    }

    @Test func nonASCIIPrintableTextIsAllowed() throws {
        var event = sampleEvent()
        event.subject = "Euro € 😀 ü"
        try event.validate()
    }

    @Test(arguments: ["Upper", "with-dash", "under_score", "", String(repeating: "a", count: 256)])
    func invalidExtensionNamesAreRejected(_ name: String) {
        var event = sampleEvent()
        event.extensions[name] = .boolean(true)
        #expect(validationError(event)?.attribute == name)
    }

    @Test func extensionNamesLongerThanTheSpecsAdviceAreAccepted() throws {
        var event = sampleEvent()
        event.extensions["abcdefghij0123456789"] = .integer(1)
        event.extensions["comexampletenantidentifier"] = .integer(2)
        try event.validate()
    }

    @Test func dataIsReservedAsExtensionName() {
        var event = sampleEvent()
        event.extensions["data"] = .string("x")
        #expect(validationError(event)?.attribute == "data")
    }

    @Test func coreAttributeNameAsExtensionIsRejected() {
        var event = sampleEvent()
        event.extensions["subject"] = .string("x")
        #expect(validationError(event)?.attribute == "subject")
    }

    @Test func coreAttributeUsedAsExtensionInJSONIsImpossibleButUppercaseIsNamed() {
        #expect(structuredError(structuredJSON(#""Subject":"x""#))?.attribute == "Subject")
    }

    @Test func attributeReaderReturnsCoreAndExtensions() {
        var event = sampleEvent()
        event.time = "2018-04-05T17:31:00Z"
        event.extensions["n"] = .integer(3)
        #expect(event.attribute("type") == .string("com.example.reading"))
        #expect(event.attribute("time") == .string("2018-04-05T17:31:00Z"))
        #expect(event.attribute("subject") == nil)
        #expect(event.attribute("n") == .integer(3))
    }

    @Test func errorStatusIs400ForInvalidEvents() {
        #expect(validationError(CloudEvent(id: "", source: "/s", type: "t"))?.status == 400)
    }
}
