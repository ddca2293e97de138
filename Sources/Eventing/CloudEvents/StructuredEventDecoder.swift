/// Decodes the CloudEvents JSON event format (one event or a batch) from raw bytes.
enum StructuredEventDecoder {
    static func decodeEvent(_ body: [UInt8]) throws(CloudEventError) -> CloudEvent {
        try body.withUnsafeBufferPointer { buffer throws(CloudEventError) -> CloudEvent in
            var reader = JSONReader(buffer)
            reader.skipByteOrderMark()
            let event = try reader.readEvent()
            try reader.expectEnd()
            return event
        }
    }

    static func decodeBatch(_ body: [UInt8]) throws(CloudEventError) -> [CloudEvent] {
        try body.withUnsafeBufferPointer { buffer throws(CloudEventError) -> [CloudEvent] in
            var reader = JSONReader(buffer)
            reader.skipByteOrderMark()
            let events = try reader.readBatch()
            try reader.expectEnd()
            return events
        }
    }
}

/// Where the `data` member sits in the input, and what kind of value it is. The interpretation
/// depends on `datacontenttype`, which may appear after `data`, so it is resolved at the end.
private struct DataMember {
    enum Kind {
        case string(JSONStringToken)
        case null
        case other
    }

    var raw: Range<Int>
    var kind: Kind
}

/// The members of one event object as they are read.
private struct StructuredFields {
    var specversion: String?
    var id: String?
    var source: String?
    var type: String?
    var datacontenttype: String?
    var dataschema: String?
    var subject: String?
    var time: String?
    var extensions: [String: CloudEventValue] = [:]
    /// Extensions given as `null`: absent from the event, but still counted for duplicate detection.
    var nullExtensions: [String] = []
    var data: DataMember?
    var dataBase64: JSONStringToken?
    /// Bits for the fixed members already seen, to reject duplicates without hashing.
    var seen: UInt16 = 0

    mutating func markSeen(_ bit: UInt16, _ name: String) throws(CloudEventError) {
        guard seen & bit == 0 else { throw .invalid(name, "member appears more than once") }
        seen |= bit
    }

    mutating func markSeenExtension(_ name: String) throws(CloudEventError) {
        guard extensions[name] == nil, !nullExtensions.contains(name) else {
            throw .invalid(name, "member appears more than once")
        }
    }
}

extension JSONReader {
    /// `[ event, ... ]`; an empty batch is valid and yields no events.
    mutating func readBatch() throws(CloudEventError) -> [CloudEvent] {
        skipWhitespace()
        guard current == UInt8(ascii: "[") else { throw syntaxError("a batch must be a JSON array") }
        index += 1
        var events: [CloudEvent] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            index += 1
            return events
        }
        while true {
            events.append(try readEvent())
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"): index += 1; return events
            default: throw syntaxError("expected ',' or ']'")
            }
        }
    }

    /// One event object, validated.
    mutating func readEvent() throws(CloudEventError) -> CloudEvent {
        skipWhitespace()
        guard current == UInt8(ascii: "{") else { throw syntaxError("an event must be a JSON object") }
        index += 1
        var fields = StructuredFields()
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            index += 1
        } else {
            try readMembers(into: &fields)
        }
        let event = try makeEvent(from: fields)
        try event.validate()
        return event
    }

    private mutating func readMembers(into fields: inout StructuredFields) throws(CloudEventError) {
        while true {
            skipWhitespace()
            guard current == 0x22 else { throw syntaxError("expected a member name") }
            let name = string(try scanString())
            skipWhitespace()
            try expect(UInt8(ascii: ":"), "':'")
            skipWhitespace()
            // A body cut off after the name is a syntax error, not a bad value of that member.
            if isAtEnd { throw syntaxError("unexpected end of the JSON body") }
            do {
                try readMember(name, into: &fields)
            } catch {
                throw error.attributed(to: name)
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"): index += 1; return
            default: throw syntaxError("expected ',' or '}'")
            }
        }
    }

    private mutating func readMember(_ name: String, into fields: inout StructuredFields) throws(CloudEventError) {
        switch name {
        case "specversion": try fields.markSeen(1 << 0, name); fields.specversion = try readStringOrNull(name)
        case "id": try fields.markSeen(1 << 1, name); fields.id = try readStringOrNull(name)
        case "source": try fields.markSeen(1 << 2, name); fields.source = try readStringOrNull(name)
        case "type": try fields.markSeen(1 << 3, name); fields.type = try readStringOrNull(name)
        case "datacontenttype": try fields.markSeen(1 << 4, name); fields.datacontenttype = try readStringOrNull(name)
        case "dataschema": try fields.markSeen(1 << 5, name); fields.dataschema = try readStringOrNull(name)
        case "subject": try fields.markSeen(1 << 6, name); fields.subject = try readStringOrNull(name)
        case "time": try fields.markSeen(1 << 7, name); fields.time = try readStringOrNull(name)
        case "data": try fields.markSeen(1 << 8, name); fields.data = try readDataMember()
        case "data_base64": try fields.markSeen(1 << 9, name); fields.dataBase64 = try readBase64Member()
        default: try readExtension(name, into: &fields)
        }
    }

    /// A String-typed attribute; `null` means absent, as the JSON format allows.
    private mutating func readStringOrNull(_ name: String) throws(CloudEventError) -> String? {
        switch current {
        case 0x22: return string(try scanString())
        case UInt8(ascii: "n"): try scanLiteral("null"); return nil
        default: throw .invalid(name, "must be a JSON string")
        }
    }

    private mutating func readDataMember() throws(CloudEventError) -> DataMember {
        let start = index
        let kind: DataMember.Kind
        switch current {
        case 0x22: kind = .string(try scanString())
        case UInt8(ascii: "n"): try scanLiteral("null"); kind = .null
        default: try skipValue(); kind = .other
        }
        return DataMember(raw: start..<index, kind: kind)
    }

    private mutating func readBase64Member() throws(CloudEventError) -> JSONStringToken? {
        switch current {
        case 0x22: return try scanString()
        case UInt8(ascii: "n"): try scanLiteral("null"); return nil
        default: throw .invalid("data_base64", "must be a JSON string")
        }
    }

    /// Extension values keep their JSON type: strings, booleans and 32-bit integers. Anything
    /// else has no CloudEvents type and is rejected rather than coerced.
    private mutating func readExtension(_ name: String, into fields: inout StructuredFields) throws(CloudEventError) {
        try fields.markSeenExtension(name)
        let value: CloudEventValue
        switch current ?? 0 {
        case 0x22:
            value = .string(string(try scanString()))
        case UInt8(ascii: "t"):
            try scanLiteral("true"); value = .boolean(true)
        case UInt8(ascii: "f"):
            try scanLiteral("false"); value = .boolean(false)
        case UInt8(ascii: "n"):
            try scanLiteral("null"); fields.nullExtensions.append(name); return
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            let number = try scanNumber()
            guard number.isInteger else { throw .invalid(name, "Integer attributes must be whole numbers") }
            guard let integer = int32(number.range) else {
                throw .invalid(name, "integer does not fit in 32 bits")
            }
            value = .integer(integer)
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            throw .invalid(name, "attribute values cannot be objects or arrays")
        default:
            throw syntaxError("unexpected character")
        }
        fields.extensions[name] = value
    }

    private func makeEvent(from fields: StructuredFields) throws(CloudEventError) -> CloudEvent {
        var data: [UInt8]?
        if let member = fields.data {
            guard fields.dataBase64 == nil else {
                throw .invalid("data", "\"data\" and \"data_base64\" are mutually exclusive")
            }
            data = payload(of: member, contentType: fields.datacontenttype)
        } else if let token = fields.dataBase64 {
            data = try decodeBase64(token)
        }
        return CloudEvent(
            id: fields.id ?? "",
            source: fields.source ?? "",
            type: fields.type ?? "",
            specversion: fields.specversion ?? "",
            datacontenttype: fields.datacontenttype,
            dataschema: fields.dataschema,
            subject: fields.subject,
            time: fields.time,
            extensions: fields.extensions,
            data: data
        )
    }

    /// The binary-mode bytes of a `data` member.
    ///
    /// For JSON content types the value's own text is the payload, copied byte-for-byte so a
    /// consumer sees exactly what the producer sent (including `null`, which is an explicit null
    /// payload). For other types the spec carries the payload as a string, whose UTF-8 bytes are
    /// the payload; `null` then has no byte form and means no data. A non-string value under a
    /// non-JSON type is tolerated and kept as its JSON text, since that is the only faithful
    /// rendering of what was sent.
    private func payload(of member: DataMember, contentType: String?) -> [UInt8]? {
        if AttributeSyntax.isJSONMediaType(contentType) {
            return Array(UnsafeBufferPointer(rebasing: bytes[member.raw]))
        }
        switch member.kind {
        case .string(let token): return stringBytes(token)
        case .null: return nil
        case .other: return Array(UnsafeBufferPointer(rebasing: bytes[member.raw]))
        }
    }

    private func decodeBase64(_ token: JSONStringToken) throws(CloudEventError) -> [UInt8] {
        // Some encoders escape "/" as "\/", so escaped strings are unescaped first.
        let decoded = token.hasEscapes
            ? stringBytes(token).withUnsafeBufferPointer { Base64.decode($0) }
            : Base64.decode(UnsafeBufferPointer(rebasing: bytes[token.content]))
        guard let decoded else { throw .invalid("data_base64", "not valid base64") }
        return decoded
    }
}
