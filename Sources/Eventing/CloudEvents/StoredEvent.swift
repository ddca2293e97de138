/// The durable log's record format for an event.
///
/// Layout (version 1), all lengths as unsigned LEB128 varints:
///
///     version:u8  presence:u8
///     specversion id source type           (length + UTF-8 each)
///     [datacontenttype] [dataschema] [subject] [time]   (present per presence bits 0-3)
///     extensionCount, then per extension (sorted by name):
///         name, tag:u8 (0 string, 1 integer, 2 boolean), value
///             string: length + UTF-8; integer: 4 bytes little-endian; boolean: 1 byte
///     [data]                                (length + bytes, present per presence bit 4)
///
/// It is a private format, not JSON, because the log is written and replayed far more often
/// than events cross the wire: length prefixes make decoding a sequence of bounded copies with
/// no escaping or number parsing. The leading version byte lets the format evolve without
/// rewriting old segments. Restoring does not re-run `validate()`: events are validated before
/// they are stored, so the record only needs to be checked for structural integrity.
extension CloudEvent {
    static let storageFormatVersion: UInt8 = 1

    private enum Presence {
        static let datacontenttype: UInt8 = 1 << 0
        static let dataschema: UInt8 = 1 << 1
        static let subject: UInt8 = 1 << 2
        static let time: UInt8 = 1 << 3
        static let data: UInt8 = 1 << 4
        static let all: UInt8 = 0b1_1111
    }

    private enum ExtensionTag {
        static let string: UInt8 = 0
        static let integer: UInt8 = 1
        static let boolean: UInt8 = 2
    }

    /// The event as a self-contained log record; `init(storageBytes:)` restores it exactly.
    public func storageBytes() -> [UInt8] {
        var writer = StorageWriter(capacity: storageSizeEstimate)
        writer.bytes.append(Self.storageFormatVersion)
        writer.bytes.append(presenceFlags)
        writer.appendString(specversion)
        writer.appendString(id)
        writer.appendString(source)
        writer.appendString(type)
        if let datacontenttype { writer.appendString(datacontenttype) }
        if let dataschema { writer.appendString(dataschema) }
        if let subject { writer.appendString(subject) }
        if let time { writer.appendString(time) }
        writer.appendVarint(UInt64(extensions.count))
        for name in extensions.keys.sorted() {
            guard let value = extensions[name] else { continue }
            writer.appendString(name)
            writer.append(value)
        }
        if let data {
            writer.appendVarint(UInt64(data.count))
            writer.bytes.append(contentsOf: data)
        }
        return writer.bytes
    }

    /// Restores an event from `storageBytes()`. Throws (status 500: the log, not a client, is at
    /// fault) for an unknown version or a truncated or corrupt record.
    public init(storageBytes: [UInt8]) throws(CloudEventError) {
        self = try storageBytes.withUnsafeBufferPointer { buffer throws(CloudEventError) -> CloudEvent in
            var reader = StorageReader(bytes: buffer)
            return try reader.readEvent()
        }
    }

    private var presenceFlags: UInt8 {
        (datacontenttype == nil ? 0 : Presence.datacontenttype)
            | (dataschema == nil ? 0 : Presence.dataschema)
            | (subject == nil ? 0 : Presence.subject)
            | (time == nil ? 0 : Presence.time)
            | (data == nil ? 0 : Presence.data)
    }

    private var storageSizeEstimate: Int {
        let required = specversion.utf8.count + id.utf8.count + source.utf8.count + type.utf8.count
        let optional = (datacontenttype?.utf8.count ?? 0) + (dataschema?.utf8.count ?? 0)
            + (subject?.utf8.count ?? 0) + (time?.utf8.count ?? 0)
        return 32 + required + optional + extensions.count * 24 + (data?.count ?? 0)
    }

    private struct StorageWriter {
        var bytes: [UInt8] = []

        init(capacity: Int) { bytes.reserveCapacity(capacity) }

        mutating func appendVarint(_ value: UInt64) {
            var rest = value
            while rest >= 0x80 {
                bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
                rest >>= 7
            }
            bytes.append(UInt8(rest))
        }

        mutating func appendString(_ value: String) {
            appendVarint(UInt64(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }

        mutating func append(_ value: CloudEventValue) {
            switch value {
            case .string(let text):
                bytes.append(ExtensionTag.string)
                appendString(text)
            case .integer(let number):
                bytes.append(ExtensionTag.integer)
                withUnsafeBytes(of: number.littleEndian) { bytes.append(contentsOf: $0) }
            case .boolean(let flag):
                bytes.append(ExtensionTag.boolean)
                bytes.append(flag ? 1 : 0)
            }
        }
    }

    private struct StorageReader {
        let bytes: UnsafeBufferPointer<UInt8>
        var index = 0

        func corrupt(_ why: String) -> CloudEventError {
            CloudEventError(attribute: nil, reason: "corrupt stored event: \(why)", status: 500)
        }

        mutating func readEvent() throws(CloudEventError) -> CloudEvent {
            let version = try readByte()
            guard version == CloudEvent.storageFormatVersion else { throw corrupt("unknown format version \(version)") }
            let presence = try readByte()
            guard presence & ~Presence.all == 0 else { throw corrupt("unknown presence flags") }
            var event = CloudEvent(
                id: "", source: "", type: "",
                specversion: try readString()
            )
            event.id = try readString()
            event.source = try readString()
            event.type = try readString()
            event.datacontenttype = try readString(if: presence & Presence.datacontenttype != 0)
            event.dataschema = try readString(if: presence & Presence.dataschema != 0)
            event.subject = try readString(if: presence & Presence.subject != 0)
            event.time = try readString(if: presence & Presence.time != 0)
            event.extensions = try readExtensions()
            if presence & Presence.data != 0 {
                event.data = Array(try readSlice(length: try readLength()))
            }
            guard index == bytes.count else { throw corrupt("trailing bytes") }
            return event
        }

        private mutating func readExtensions() throws(CloudEventError) -> [String: CloudEventValue] {
            let count = try readLength()
            // Every extension takes at least three bytes, which bounds a corrupt count.
            guard count <= (bytes.count - index) / 3 else { throw corrupt("extension count exceeds record") }
            var extensions: [String: CloudEventValue] = [:]
            extensions.reserveCapacity(count)
            for _ in 0..<count {
                let name = try readString()
                guard extensions.updateValue(try readValue(), forKey: name) == nil else {
                    throw corrupt("duplicate extension (\(quotedForError(name)))")
                }
            }
            return extensions
        }

        private mutating func readValue() throws(CloudEventError) -> CloudEventValue {
            switch try readByte() {
            case ExtensionTag.string:
                return .string(try readString())
            case ExtensionTag.integer:
                let raw = try readSlice(length: 4)
                let bits = raw.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                return .integer(Int32(bitPattern: bits))
            case ExtensionTag.boolean:
                switch try readByte() {
                case 0: return .boolean(false)
                case 1: return .boolean(true)
                default: throw corrupt("invalid boolean")
                }
            default:
                throw corrupt("unknown extension tag")
            }
        }

        private mutating func readByte() throws(CloudEventError) -> UInt8 {
            guard index < bytes.count else { throw corrupt("truncated record") }
            defer { index += 1 }
            return bytes[index]
        }

        private mutating func readLength() throws(CloudEventError) -> Int {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let byte = try readByte()
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { break }
                shift += 7
                guard shift < 35 else { throw corrupt("length too large") }
            }
            guard value <= UInt64(bytes.count) else { throw corrupt("length exceeds record") }
            return Int(value)
        }

        private mutating func readSlice(length: Int) throws(CloudEventError) -> UnsafeBufferPointer<UInt8> {
            guard bytes.count - index >= length else { throw corrupt("truncated record") }
            defer { index += length }
            return UnsafeBufferPointer(rebasing: bytes[index..<(index + length)])
        }

        private mutating func readString() throws(CloudEventError) -> String {
            let slice = try readSlice(length: try readLength())
            guard let text = UTF8Validation.string(slice) else { throw corrupt("invalid UTF-8") }
            return text
        }

        private mutating func readString(if present: Bool) throws(CloudEventError) -> String? {
            present ? try readString() : nil
        }
    }
}
