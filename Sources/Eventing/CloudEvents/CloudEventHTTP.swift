/// The CloudEvents HTTP protocol binding: binary, structured and batched content modes.
///
/// Headers are plain `(name, value)` pairs rather than a server framework's type so the codec
/// can sit under any HTTP stack and be tested without one.
public enum CloudEventHTTP {
    /// `Content-Type` for a structured-mode message.
    public static let structuredContentType = "application/cloudevents+json; charset=UTF-8"
    /// `Content-Type` for a batched-mode message.
    public static let batchContentType = "application/cloudevents-batch+json; charset=UTF-8"

    // MARK: Decoding

    /// Decodes and validates the events in an HTTP message.
    ///
    /// The content mode follows the binding: a `Content-Type` starting (case-insensitively) with
    /// `application/cloudevents-batch` is batched, one starting with `application/cloudevents` is
    /// structured, anything else is binary. Of the structured formats only JSON is implemented;
    /// others fail with status 415 so the sender learns the format, not the event, is the problem.
    public static func decode(
        headers: [(name: String, value: String)],
        body: [UInt8]
    ) throws(CloudEventError) -> [CloudEvent] {
        try decode(headers: headers.map { NamedValue(name: $0.name, value: $0.value) }, body: body)
    }

    /// Decodes and validates the events in an HTTP message whose headers are kept in another
    /// shape (the broker ingress passes the gateway's fields as they are, without a copy).
    public static func decode<Headers: Collection>(
        headers: Headers,
        body: [UInt8]
    ) throws(CloudEventError) -> [CloudEvent] where Headers.Element: CloudEventHeader {
        let contentType = try contentType(in: headers)
        switch try ContentMode(contentType: contentType) {
        case .binary: return [try decodeBinary(headers: headers, contentType: contentType, body: body)]
        case .structured: return [try StructuredEventDecoder.decodeEvent(body)]
        case .batched: return try StructuredEventDecoder.decodeBatch(body)
        }
    }

    /// The single `Content-Type` value, trimmed; an empty header counts as absent.
    private static func contentType<Headers: Collection>(
        in headers: Headers
    ) throws(CloudEventError) -> String? where Headers.Element: CloudEventHeader {
        var found: String?
        for header in headers where HeaderName.isContentType(header.name) {
            guard found == nil else { throw .invalid("datacontenttype", "more than one Content-Type header") }
            found = trimmedOWS(header.value)
        }
        return found.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Binary mode: attributes from `ce-*` headers, `datacontenttype` from `Content-Type`, and
    /// the body as data.
    ///
    /// A `ce-datacontenttype` header is rejected: the binding forbids it, and silently preferring
    /// either header would hide a sender bug that changes how the payload is interpreted. An empty
    /// body means no data, because binary mode cannot tell an empty payload from an absent one.
    private static func decodeBinary<Headers: Collection>(
        headers: Headers,
        contentType: String?,
        body: [UInt8]
    ) throws(CloudEventError) -> CloudEvent where Headers.Element: CloudEventHeader {
        var event = CloudEvent(id: "", source: "", type: "", specversion: "")
        var seenCore: UInt8 = 0
        for header in headers {
            guard let name = HeaderName.attributeName(header.name) else { continue }
            let value = try HeaderValueCoding.decode(header.value, attribute: name)
            try assign(value, to: name, in: &event, seenCore: &seenCore)
        }
        event.datacontenttype = contentType
        event.data = body.isEmpty ? nil : body
        try event.validate()
        return event
    }

    private static func assign(
        _ value: String,
        to name: String,
        in event: inout CloudEvent,
        seenCore: inout UInt8
    ) throws(CloudEventError) {
        let bit: UInt8
        switch name {
        case "specversion": bit = 1 << 0; event.specversion = value
        case "id": bit = 1 << 1; event.id = value
        case "source": bit = 1 << 2; event.source = value
        case "type": bit = 1 << 3; event.type = value
        case "dataschema": bit = 1 << 4; event.dataschema = value
        case "subject": bit = 1 << 5; event.subject = value
        case "time": bit = 1 << 6; event.time = value
        case "datacontenttype":
            throw .invalid(name, "must be sent as Content-Type, not as a ce-datacontenttype header")
        default:
            guard event.extensions[name] == nil else { throw .invalid(name, "header appears more than once") }
            event.extensions[name] = .string(value)
            return
        }
        guard seenCore & bit == 0 else { throw .invalid(name, "header appears more than once") }
        seenCore |= bit
    }

    // MARK: Encoding

    /// Binary mode: every attribute except `datacontenttype` as a percent-encoded `ce-*` header,
    /// `datacontenttype` as `Content-Type`, and the data as the body (empty when there is none).
    public static func encodeBinary(_ event: CloudEvent) -> (headers: [(name: String, value: String)], body: [UInt8]) {
        var headers: [(name: String, value: String)] = []
        headers.reserveCapacity(8 + event.extensions.count)
        headers.append(("ce-specversion", HeaderValueCoding.encode(event.specversion)))
        headers.append(("ce-id", HeaderValueCoding.encode(event.id)))
        headers.append(("ce-source", HeaderValueCoding.encode(event.source)))
        headers.append(("ce-type", HeaderValueCoding.encode(event.type)))
        if let value = event.dataschema { headers.append(("ce-dataschema", HeaderValueCoding.encode(value))) }
        if let value = event.subject { headers.append(("ce-subject", HeaderValueCoding.encode(value))) }
        if let value = event.time { headers.append(("ce-time", HeaderValueCoding.encode(value))) }
        for name in event.extensions.keys.sorted() {
            guard let value = event.extensions[name] else { continue }
            headers.append(("ce-" + name, HeaderValueCoding.encode(value.canonicalString)))
        }
        if let contentType = event.datacontenttype { headers.append(("Content-Type", contentType)) }
        return (headers, event.data ?? [])
    }

    /// Structured mode body; send it with ``structuredContentType``.
    public static func encodeStructured(_ event: CloudEvent) -> [UInt8] {
        var encoder = StructuredEventEncoder(capacity: StructuredEventEncoder.estimatedSize(of: event))
        encoder.write(event)
        return encoder.output
    }

    /// Batched mode body; send it with ``batchContentType``.
    public static func encodeBatch(_ events: [CloudEvent]) -> [UInt8] {
        let capacity = events.reduce(2) { $0 + StructuredEventEncoder.estimatedSize(of: $1) }
        var encoder = StructuredEventEncoder(capacity: capacity)
        encoder.writeBatch(events)
        return encoder.output
    }
}

/// One HTTP header as the binding reads it.
public protocol CloudEventHeader {
    /// The name as received (compared without case).
    var name: String { get }
    /// The value as received.
    var value: String { get }
}

/// A header given as a `(name, value)` pair.
private struct NamedValue: CloudEventHeader {
    var name: String
    var value: String
}

/// How a message carries its event(s), decided from `Content-Type`.
///
/// Classification scans the header's bytes in place: it runs on every request, and splitting
/// and lower-casing strings here once cost more than parsing the event itself.
private enum ContentMode {
    case binary
    case structured
    case batched

    private enum Classification {
        case mode(ContentMode)
        case unsupportedFormat
        case unsupportedCharset
    }

    init(contentType: String?) throws(CloudEventError) {
        guard var copy = contentType else {
            self = .binary
            return
        }
        switch copy.withUTF8(Self.classify) {
        case .mode(let mode):
            self = mode
        case .unsupportedFormat:
            throw .unsupportedMediaType("unsupported event format (\(quotedForError(copy)))")
        case .unsupportedCharset:
            throw .unsupportedMediaType("unsupported charset in Content-Type (\(quotedForError(copy)))")
        }
    }

    private static func classify(_ bytes: UnsafeBufferPointer<UInt8>) -> Classification {
        let essenceEnd = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
        let essence = UnsafeBufferPointer(rebasing: bytes[AttributeSyntax.trimmingOWS(bytes, 0..<essenceEnd)])
        let mode: ContentMode
        if AttributeSyntax.asciiCaseInsensitiveHasPrefix(bytes, "application/cloudevents-batch") {
            guard AttributeSyntax.asciiCaseInsensitiveEquals(essence, "application/cloudevents-batch+json") else {
                return .unsupportedFormat
            }
            mode = .batched
        } else if AttributeSyntax.asciiCaseInsensitiveHasPrefix(bytes, "application/cloudevents") {
            guard AttributeSyntax.asciiCaseInsensitiveEquals(essence, "application/cloudevents+json") else {
                return .unsupportedFormat
            }
            mode = .structured
        } else {
            return .mode(.binary)
        }
        let parameters = UnsafeBufferPointer(rebasing: bytes[essenceEnd...])
        return declaresOnlyUTF8(parameters) ? .mode(mode) : .unsupportedCharset
    }

    /// JSON is UTF-8 by definition; a sender declaring another charset is not speaking it.
    private static func declaresOnlyUTF8(_ parameters: UnsafeBufferPointer<UInt8>) -> Bool {
        var start = 0
        while start < parameters.count {
            let end = parameters[start...].firstIndex(of: UInt8(ascii: ";")) ?? parameters.count
            if !isAcceptableParameter(UnsafeBufferPointer(rebasing: parameters[start..<end])) { return false }
            start = end + 1
        }
        return true
    }

    /// Any parameter other than `charset`, or `charset` naming UTF-8 (optionally quoted).
    private static func isAcceptableParameter(_ parameter: UnsafeBufferPointer<UInt8>) -> Bool {
        guard let equals = parameter.firstIndex(of: UInt8(ascii: "=")) else { return true }
        let name = UnsafeBufferPointer(rebasing: parameter[AttributeSyntax.trimmingOWS(parameter, 0..<equals)])
        guard AttributeSyntax.asciiCaseInsensitiveEquals(name, "charset") else { return true }
        var valueRange = AttributeSyntax.trimmingOWS(parameter, (equals + 1)..<parameter.count)
        if valueRange.count >= 2, parameter[valueRange.lowerBound] == 0x22, parameter[valueRange.upperBound - 1] == 0x22 {
            valueRange = (valueRange.lowerBound + 1)..<(valueRange.upperBound - 1)
        }
        let value = UnsafeBufferPointer(rebasing: parameter[valueRange])
        return AttributeSyntax.asciiCaseInsensitiveEquals(value, "utf-8")
            || AttributeSyntax.asciiCaseInsensitiveEquals(value, "utf8")
    }
}

/// Case-insensitive header-name checks, without lower-casing whole strings.
private enum HeaderName {
    static func isContentType(_ name: String) -> Bool {
        guard name.utf8.count == 12 else { return false }
        var name = name
        return name.withUTF8 { bytes in
            zip(bytes, "content-type".utf8).allSatisfy { asciiLower($0) == $1 }
        }
    }

    /// The CloudEvents attribute name for a `ce-*` header, lower-cased; nil for other headers.
    static func attributeName(_ name: String) -> String? {
        // On the contiguous bytes: this runs for every header of every event.
        var name = name
        return name.withUTF8 { bytes -> String? in
            guard bytes.count >= 3, asciiLower(bytes[0]) == UInt8(ascii: "c"), asciiLower(bytes[1]) == UInt8(ascii: "e"),
                  bytes[2] == UInt8(ascii: "-") else { return nil }
            let suffix = UnsafeBufferPointer(rebasing: bytes[3...])
            // Senders usually spell the names in lower case already; only fold when they do not.
            guard suffix.contains(where: isUpper) else { return String(decoding: suffix, as: UTF8.self) }
            return String(decoding: suffix.map(asciiLower), as: UTF8.self)
        }
    }

    @inline(__always)
    private static func isUpper(_ b: UInt8) -> Bool { b &- 0x41 < 26 }

    @inline(__always)
    private static func asciiLower(_ b: UInt8) -> UInt8 {
        isUpper(b) ? b | 0x20 : b
    }
}

/// Strips HTTP optional whitespace (space, tab) from both ends.
private func trimmedOWS(_ value: String) -> String {
    var copy = value
    return copy.withUTF8 { bytes in
        let range = AttributeSyntax.trimmingOWS(bytes, 0..<bytes.count)
        if range.count == bytes.count { return value }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self)
    }
}
