/// Writes events in the CloudEvents JSON format.
///
/// Members are written in a fixed order (core attributes, then extensions sorted by name, then
/// data) so the same event always produces the same bytes, which keeps stored copies, hashes and
/// test fixtures stable.
struct StructuredEventEncoder {
    private(set) var output: [UInt8] = []

    init(capacity: Int) {
        output.reserveCapacity(capacity)
    }

    /// A size guess that avoids most reallocations: attribute text plus payload plus overhead.
    static func estimatedSize(of event: CloudEvent) -> Int {
        let attributes = event.id.utf8.count + event.source.utf8.count + event.type.utf8.count
            + (event.subject?.utf8.count ?? 0) + (event.dataschema?.utf8.count ?? 0)
        let payload = (event.data?.count ?? 0) * 4 / 3
        return 160 + attributes + payload + event.extensions.count * 32
    }

    /// `[event,event,...]` for batched mode.
    mutating func writeBatch(_ events: [CloudEvent]) {
        output.append(UInt8(ascii: "["))
        for (position, event) in events.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            write(event)
        }
        output.append(UInt8(ascii: "]"))
    }

    mutating func write(_ event: CloudEvent) {
        output.append(UInt8(ascii: "{"))
        writeMember("specversion", event.specversion, first: true)
        writeMember("id", event.id)
        writeMember("source", event.source)
        writeMember("type", event.type)
        if let value = event.datacontenttype { writeMember("datacontenttype", value) }
        if let value = event.dataschema { writeMember("dataschema", value) }
        if let value = event.subject { writeMember("subject", value) }
        if let value = event.time { writeMember("time", value) }
        for name in event.extensions.keys.sorted() {
            guard let value = event.extensions[name] else { continue }
            writeName(name)
            writeValue(value)
        }
        if let data = event.data {
            writeData(data, contentType: event.datacontenttype)
        }
        output.append(UInt8(ascii: "}"))
    }

    /// Chooses the `data` representation that decodes back to the same bytes: embedded JSON when
    /// the type says JSON and the bytes are exactly one JSON value; a string for other textual
    /// payloads; `data_base64` for everything else. That includes invalid JSON under a JSON type
    /// (a string would read back as a JSON string value) and JSON with surrounding whitespace
    /// (which the decoder would not keep), so the payload bytes always survive the trip.
    private mutating func writeData(_ data: [UInt8], contentType: String?) {
        let representation = data.withUnsafeBufferPointer { bytes in
            if AttributeSyntax.isJSONMediaType(contentType) {
                return JSONReader.isExactlyOneValue(bytes) ? DataRepresentation.json : .base64
            }
            if AttributeSyntax.isOctetStream(contentType) { return .base64 }
            return UTF8Validation.isValid(bytes) ? .string : .base64
        }
        switch representation {
        case .json:
            writeName("data")
            output.append(contentsOf: data)
        case .string:
            writeName("data")
            data.withUnsafeBufferPointer { writeEscaped($0) }
        case .base64:
            writeName("data_base64")
            output.append(0x22)
            Base64.encode(data, into: &output)
            output.append(0x22)
        }
    }

    private enum DataRepresentation { case json, string, base64 }

    private mutating func writeMember(_ name: StaticString, _ value: String, first: Bool = false) {
        if !first { output.append(UInt8(ascii: ",")) }
        output.append(0x22)
        output.append(contentsOf: UnsafeBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
        output.append(0x22)
        output.append(UInt8(ascii: ":"))
        writeString(value)
    }

    /// A member name that is not the first in the object.
    private mutating func writeName(_ name: String) {
        output.append(UInt8(ascii: ","))
        writeString(name)
        output.append(UInt8(ascii: ":"))
    }

    private mutating func writeValue(_ value: CloudEventValue) {
        switch value {
        case .string(let text): writeString(text)
        case .integer(let number): output.append(contentsOf: String(number).utf8)
        case .boolean(let flag): output.append(contentsOf: (flag ? "true" : "false").utf8)
        }
    }

    private mutating func writeString(_ value: String) {
        var copy = value
        copy.withUTF8 { writeEscaped($0) }
    }

    /// A JSON string literal. Unescaped runs are copied in bulk; only `"`, `\` and C0 controls
    /// are escaped, everything else (already valid UTF-8) is written as is.
    private mutating func writeEscaped(_ bytes: UnsafeBufferPointer<UInt8>) {
        output.append(0x22)
        var runStart = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            guard b < 0x20 || b == 0x22 || b == 0x5C else { continue }
            if i > runStart { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i])) }
            appendEscape(for: b)
            runStart = i + 1
        }
        if bytes.count > runStart { output.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart...])) }
        output.append(0x22)
    }

    private mutating func appendEscape(for byte: UInt8) {
        let hex: StaticString = "0123456789abcdef"
        output.append(0x5C)
        switch byte {
        case 0x22: output.append(0x22)
        case 0x5C: output.append(0x5C)
        case 0x0A: output.append(UInt8(ascii: "n"))
        case 0x0D: output.append(UInt8(ascii: "r"))
        case 0x09: output.append(UInt8(ascii: "t"))
        case 0x08: output.append(UInt8(ascii: "b"))
        case 0x0C: output.append(UInt8(ascii: "f"))
        default:
            output.append(contentsOf: "u00".utf8)
            output.append(hex.utf8Start[Int(byte >> 4)])
            output.append(hex.utf8Start[Int(byte & 0x0F)])
        }
    }
}
