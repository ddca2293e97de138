/// Strict UTF-8 validation per Unicode Table 3-7.
///
/// Used wherever untrusted bytes become a `String`: `String(decoding:)` would silently replace
/// bad sequences with U+FFFD, and the HTTP binding requires invalid UTF-8 (including overlong
/// forms such as `C0 A0` and encoded surrogates) to be rejected rather than repaired.
enum UTF8Validation {
    /// The length of the well-formed sequence starting at `i`, or nil if it is ill-formed.
    @inline(__always)
    static func sequenceLength(_ bytes: UnsafeBufferPointer<UInt8>, at i: Int) -> Int? {
        let lead = bytes[i]
        if lead < 0x80 { return 1 }
        let (length, secondRange): (Int, ClosedRange<UInt8>)
        switch lead {
        case 0xC2...0xDF: (length, secondRange) = (2, 0x80...0xBF)
        case 0xE0: (length, secondRange) = (3, 0xA0...0xBF)
        case 0xE1...0xEC, 0xEE...0xEF: (length, secondRange) = (3, 0x80...0xBF)
        case 0xED: (length, secondRange) = (3, 0x80...0x9F)
        case 0xF0: (length, secondRange) = (4, 0x90...0xBF)
        case 0xF1...0xF3: (length, secondRange) = (4, 0x80...0xBF)
        case 0xF4: (length, secondRange) = (4, 0x80...0x8F)
        default: return nil
        }
        guard bytes.count - i >= length, secondRange.contains(bytes[i + 1]) else { return nil }
        for k in 2..<length where bytes[i + k] & 0xC0 != 0x80 {
            return nil
        }
        return length
    }

    static func isValid(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var i = 0
        while i < bytes.count {
            guard let length = sequenceLength(bytes, at: i) else { return false }
            i += length
        }
        return true
    }

    static func isValid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { isValid($0) }
    }

    /// A `String` from bytes, or nil if they are not valid UTF-8.
    static func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        isValid(bytes) ? String(decoding: bytes, as: UTF8.self) : nil
    }

    /// Appends the UTF-8 encoding of a scalar known to be valid (not a surrogate).
    static func append(_ scalar: UInt32, to out: inout [UInt8]) {
        switch scalar {
        case ..<0x80:
            out.append(UInt8(scalar))
        case ..<0x800:
            out.append(UInt8(0xC0 | scalar >> 6))
            out.append(UInt8(0x80 | scalar & 0x3F))
        case ..<0x10000:
            out.append(UInt8(0xE0 | scalar >> 12))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        default:
            out.append(UInt8(0xF0 | scalar >> 18))
            out.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            out.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            out.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}

/// RFC 4648 base64 (standard alphabet) for the JSON format's `data_base64` member.
enum Base64 {
    private static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    static func encode(_ input: [UInt8], into out: inout [UInt8]) {
        let table = alphabet.utf8Start
        out.reserveCapacity(out.count + (input.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= input.count {
            let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
            out.append(table[Int(n >> 18 & 63)])
            out.append(table[Int(n >> 12 & 63)])
            out.append(table[Int(n >> 6 & 63)])
            out.append(table[Int(n & 63)])
            i += 3
        }
        let rest = input.count - i
        guard rest > 0 else { return }
        let n = UInt32(input[i]) << 16 | (rest == 2 ? UInt32(input[i + 1]) << 8 : 0)
        out.append(table[Int(n >> 18 & 63)])
        out.append(table[Int(n >> 12 & 63)])
        out.append(rest == 2 ? table[Int(n >> 6 & 63)] : UInt8(ascii: "="))
        out.append(UInt8(ascii: "="))
    }

    /// Decodes padded or unpadded base64; nil on any character outside the alphabet, misplaced
    /// padding, or an impossible length. Whitespace is not tolerated: JSON producers emit none.
    static func decode(_ input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var end = input.count
        while end > 0, input.count - end < 2, input[end - 1] == UInt8(ascii: "=") { end -= 1 }
        if end != input.count, input.count % 4 != 0 { return nil }
        if end % 4 == 1 { return nil }

        var out: [UInt8] = []
        out.reserveCapacity(end / 4 * 3 + 2)
        var accumulator: UInt32 = 0
        var bits = 0
        for i in 0..<end {
            guard let sextet = value(of: input[i]) else { return nil }
            accumulator = accumulator << 6 | UInt32(sextet)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }

    @inline(__always)
    private static func value(of c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): c - UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): c - UInt8(ascii: "a") + 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0") + 52
        case UInt8(ascii: "+"): 62
        case UInt8(ascii: "/"): 63
        default: nil
        }
    }
}

/// The HTTP binding's header-value encoding for `ce-*` headers.
enum HeaderValueCoding {
    private static let hexDigits: StaticString = "0123456789ABCDEF"

    /// Percent-encodes space, `"`, `%` and everything outside U+0021–U+007E, byte by byte of the
    /// UTF-8 form. Most values need no encoding, so the original string is returned untouched.
    static func encode(_ value: String) -> String {
        guard value.utf8.contains(where: needsEncoding) else { return value }
        let hex = hexDigits.utf8Start
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count * 3)
        for byte in value.utf8 {
            if needsEncoding(byte) {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            } else {
                out.append(byte)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    @inline(__always)
    private static func needsEncoding(_ byte: UInt8) -> Bool {
        byte <= 0x20 || byte >= 0x7F || byte == 0x22 || byte == 0x25
    }

    /// Undoes an RFC 7230 quoted-string (older senders wrap values in quotes), then one round of
    /// percent-decoding, and insists the result is valid UTF-8. The error names the attribute.
    static func decode(_ value: String, attribute: String) throws(CloudEventError) -> String {
        // A Swift string is already valid Unicode, so a value with nothing to unquote, trim or
        // decode (the common case) is returned without copying.
        guard needsDecoding(value) else { return value }
        var bytes = trimmedOWS(Array(value.utf8))
        if bytes.count >= 2, bytes.first == 0x22, bytes.last == 0x22 {
            bytes = try unquote(bytes, attribute: attribute)
        }
        if bytes.contains(UInt8(ascii: "%")) {
            bytes = try percentDecode(bytes, attribute: attribute)
        }
        guard let text = bytes.withUnsafeBufferPointer({ UTF8Validation.string($0) }) else {
            throw .invalid(attribute, "header value is not valid UTF-8")
        }
        return text
    }

    private static func needsDecoding(_ value: String) -> Bool {
        var copy = value
        return copy.withUTF8 { bytes in
            if let first = bytes.first, AttributeSyntax.isOWS(first) { return true }
            if let last = bytes.last, AttributeSyntax.isOWS(last) { return true }
            return bytes.contains { $0 == UInt8(ascii: "%") || $0 == 0x22 }
        }
    }

    private static func trimmedOWS(_ bytes: [UInt8]) -> [UInt8] {
        guard let first = bytes.first, let last = bytes.last,
              AttributeSyntax.isOWS(first) || AttributeSyntax.isOWS(last) else { return bytes }
        let range = bytes.withUnsafeBufferPointer { AttributeSyntax.trimmingOWS($0, 0..<$0.count) }
        return Array(bytes[range])
    }

    private static func unquote(_ quoted: [UInt8], attribute: String) throws(CloudEventError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(quoted.count - 2)
        var i = 1
        let end = quoted.count - 1
        while i < end {
            var b = quoted[i]
            if b == 0x5C {
                i += 1
                guard i < end else { throw .invalid(attribute, "dangling escape in quoted header value") }
                b = quoted[i]
            } else if b == 0x22 {
                throw .invalid(attribute, "unescaped quote inside quoted header value")
            }
            out.append(b)
            i += 1
        }
        return out
    }

    private static func percentDecode(_ bytes: [UInt8], attribute: String) throws(CloudEventError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            guard b == UInt8(ascii: "%") else {
                out.append(b)
                i += 1
                continue
            }
            guard i + 2 < bytes.count, let high = ASCIIHex.value(bytes[i + 1]), let low = ASCIIHex.value(bytes[i + 2]) else {
                throw .invalid(attribute, "malformed percent-encoding in header value")
            }
            out.append(high << 4 | low)
            i += 3
        }
        return out
    }

}

/// Hex digits, for percent-encoding and JSON `\u` escapes.
enum ASCIIHex {
    /// The value of one hex digit (either case), or nil.
    @inline(__always)
    static func value(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
