/// Grammar checks for attribute values (RFC 3339, RFC 2046, RFC 3986 and the CloudEvents
/// naming and String rules).
///
/// They are hand-written byte scanners rather than regular expressions or Foundation formatters:
/// they run for every ingested event, must not allocate, and must accept exactly the grammar
/// (a date formatter would silently accept or normalise things RFC 3339 does not allow).
enum AttributeSyntax {
    // MARK: Strings and names

    /// The first scalar the CloudEvents String type forbids: C0/C1 controls, DEL and Unicode
    /// noncharacters. Unpaired surrogates cannot occur in a Swift `String`.
    static func firstDisallowedScalar(in value: String) -> Unicode.Scalar? {
        // Nearly every attribute is printable ASCII, so only fall back to scalar decoding when a
        // byte outside that range shows up.
        var copy = value
        let isPrintableASCII = copy.withUTF8 { bytes in !bytes.contains { $0 < 0x20 || $0 >= 0x7F } }
        guard !isPrintableASCII else { return nil }
        return value.unicodeScalars.first(where: isDisallowed)
    }

    private static func isDisallowed(_ scalar: Unicode.Scalar) -> Bool {
        let v = scalar.value
        return v < 0x20
            || (0x7F...0x9F).contains(v)
            || (0xFDD0...0xFDEF).contains(v)
            || v & 0xFFFE == 0xFFFE
    }

    /// `[a-z0-9]{1,255}`: the spec's naming rule. Its advice that names not exceed 20 characters
    /// binds producers; a receiver that refused longer names would lose events that Knative's
    /// brokers accept. The cap only keeps a name within any header limit.
    static let maxAttributeNameLength = 255

    static func isAttributeName(_ name: String) -> Bool {
        let utf8 = name.utf8
        guard (1...maxAttributeNameLength).contains(utf8.count) else { return false }
        return utf8.allSatisfy { isLowerAlpha($0) || isDigit($0) }
    }

    // MARK: URIs

    /// A deliberately lenient URI-reference check: the spec's own examples include values such as
    /// `1-555-123-4567`, so only what can never appear in a URI-reference (spaces; controls are
    /// already rejected by the String rule) is refused.
    static func isURIReference(_ value: String) -> Bool {
        !value.isEmpty && !value.utf8.contains(0x20)
    }

    /// An RFC 3986 absolute URI: a scheme, a colon, and no whitespace.
    static func isAbsoluteURI(_ value: String) -> Bool {
        guard isURIReference(value) else { return false }
        var sawScheme = false
        for (offset, byte) in value.utf8.enumerated() {
            if byte == UInt8(ascii: ":") { return sawScheme }
            let allowed = offset == 0
                ? isAlpha(byte)
                : isAlpha(byte) || isDigit(byte) || byte == UInt8(ascii: "+")
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
            guard allowed else { return false }
            sawScheme = true
        }
        return false
    }

    // MARK: RFC 3339

    /// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, with calendar-aware day
    /// ranges. `T` and `Z` may be lower case, as RFC 3339 §5.6 allows.
    static func isRFC3339Timestamp(_ value: String) -> Bool {
        var copy = value
        return copy.withUTF8 { bytes in
            var scanner = ByteScanner(bytes)
            return scanner.scanDateTime() && scanner.isAtEnd
        }
    }

    // MARK: Media types

    /// RFC 2046 / RFC 7231 `type "/" subtype *( OWS ";" OWS token "=" ( token / quoted-string ) )`.
    static func isMediaType(_ value: String) -> Bool {
        var copy = value
        return copy.withUTF8 { bytes in
            var scanner = ByteScanner(bytes)
            return scanner.scanMediaType() && scanner.isAtEnd
        }
    }

    /// Whether a payload of this type is JSON (`*/json` or `*/*+json`). An absent content type
    /// counts as JSON because the JSON event format implies `application/json` for it.
    static func isJSONMediaType(_ contentType: String?) -> Bool {
        guard let contentType else { return true }
        var copy = contentType
        return copy.withUTF8 { bytes in
            guard let subtype = subtypeRange(in: bytes) else { return false }
            let sub = UnsafeBufferPointer(rebasing: bytes[subtype])
            return asciiCaseInsensitiveEquals(sub, "json") || asciiCaseInsensitiveHasSuffix(sub, "+json")
        }
    }

    /// Whether the type is `application/octet-stream`, which structured mode should never turn
    /// into a JSON string even when the bytes happen to be valid UTF-8.
    static func isOctetStream(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        var copy = contentType
        return copy.withUTF8 { bytes in
            let end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
            let essence = trimmingOWS(bytes, 0..<end)
            return asciiCaseInsensitiveEquals(UnsafeBufferPointer(rebasing: bytes[essence]), "application/octet-stream")
        }
    }

    /// The subtype of `type/subtype; params`, without parameters or surrounding whitespace.
    private static func subtypeRange(in bytes: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        let end = bytes.firstIndex(of: UInt8(ascii: ";")) ?? bytes.count
        guard let slash = bytes[0..<end].firstIndex(of: UInt8(ascii: "/")) else { return nil }
        return trimmingOWS(bytes, (slash + 1)..<end)
    }

    static func trimmingOWS(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
        var lower = range.lowerBound
        var upper = range.upperBound
        while lower < upper, isOWS(bytes[lower]) { lower += 1 }
        while upper > lower, isOWS(bytes[upper - 1]) { upper -= 1 }
        return lower..<upper
    }

    // MARK: Byte classes

    @inline(__always) static func isDigit(_ b: UInt8) -> Bool { b &- 0x30 < 10 }
    @inline(__always) static func isLowerAlpha(_ b: UInt8) -> Bool { b &- 0x61 < 26 }
    @inline(__always) static func isAlpha(_ b: UInt8) -> Bool { (b | 0x20) &- 0x61 < 26 }
    @inline(__always) static func isOWS(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 }

    /// RFC 7230 `tchar`.
    static func isTokenChar(_ b: UInt8) -> Bool {
        if isAlpha(b) || isDigit(b) { return true }
        switch b {
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"),
             UInt8(ascii: "&"), UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func asciiCaseInsensitiveEquals(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        guard bytes.count == lowercase.utf8CodeUnitCount else { return false }
        return asciiCaseInsensitiveHasSuffix(bytes, lowercase)
    }

    static func asciiCaseInsensitiveHasPrefix(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        return asciiCaseInsensitiveHasSuffix(UnsafeBufferPointer(rebasing: bytes[0..<count]), lowercase)
    }

    /// `lowercase` must be lower-case ASCII; folding only letters keeps `+` and digits exact.
    static func asciiCaseInsensitiveHasSuffix(_ bytes: UnsafeBufferPointer<UInt8>, _ lowercase: StaticString) -> Bool {
        let count = lowercase.utf8CodeUnitCount
        guard bytes.count >= count else { return false }
        let start = lowercase.utf8Start
        let offset = bytes.count - count
        for i in 0..<count {
            let b = bytes[offset + i]
            let folded = isAlpha(b) ? b | 0x20 : b
            guard folded == start[i] else { return false }
        }
        return true
    }
}

/// A cursor over a byte buffer for the small grammars above.
private struct ByteScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var isAtEnd: Bool { index == bytes.count }

    mutating func take(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Case-insensitive single letter (for RFC 3339's `T` and `Z`).
    mutating func takeLetter(_ upper: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] | 0x20 == upper | 0x20 else { return false }
        index += 1
        return true
    }

    /// Exactly `count` decimal digits as a number.
    mutating func digits(_ count: Int) -> Int? {
        guard bytes.count - index >= count else { return nil }
        var value = 0
        for _ in 0..<count {
            let b = bytes[index]
            guard AttributeSyntax.isDigit(b) else { return nil }
            value = value * 10 + Int(b - 0x30)
            index += 1
        }
        return value
    }

    mutating func skipOWS() {
        while index < bytes.count, AttributeSyntax.isOWS(bytes[index]) { index += 1 }
    }

    // MARK: RFC 3339

    mutating func scanDateTime() -> Bool {
        guard let year = digits(4), take(UInt8(ascii: "-")),
              let month = digits(2), take(UInt8(ascii: "-")),
              let day = digits(2), (1...12).contains(month),
              (1...Self.daysIn(month: month, year: year)).contains(day),
              takeLetter(UInt8(ascii: "T")),
              let hour = digits(2), hour < 24, take(UInt8(ascii: ":")),
              let minute = digits(2), minute < 60, take(UInt8(ascii: ":")),
              let second = digits(2), second <= 60 // 60 is a leap second
        else { return false }
        if take(UInt8(ascii: ".")) {
            let start = index
            while index < bytes.count, AttributeSyntax.isDigit(bytes[index]) { index += 1 }
            guard index > start else { return false }
        }
        return scanOffset()
    }

    private mutating func scanOffset() -> Bool {
        if takeLetter(UInt8(ascii: "Z")) { return true }
        guard take(UInt8(ascii: "+")) || take(UInt8(ascii: "-")),
              let hour = digits(2), hour < 24, take(UInt8(ascii: ":")),
              let minute = digits(2), minute < 60
        else { return false }
        return true
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // MARK: Media types

    mutating func scanMediaType() -> Bool {
        guard scanToken(), take(UInt8(ascii: "/")), scanToken() else { return false }
        while true {
            skipOWS()
            if isAtEnd { return true }
            guard take(UInt8(ascii: ";")) else { return false }
            skipOWS()
            guard scanToken(), take(UInt8(ascii: "=")) else { return false }
            guard scanQuotedString() || scanToken() else { return false }
        }
    }

    private mutating func scanToken() -> Bool {
        let start = index
        while index < bytes.count, AttributeSyntax.isTokenChar(bytes[index]) { index += 1 }
        return index > start
    }

    /// RFC 7230 `quoted-string`, including `obs-text`.
    private mutating func scanQuotedString() -> Bool {
        guard take(0x22) else { return false }
        while index < bytes.count {
            let b = bytes[index]
            index += 1
            switch b {
            case 0x22:
                return true
            case 0x5C:
                guard index < bytes.count, Self.isQuotedPairChar(bytes[index]) else { return false }
                index += 1
            case 0x09, 0x20, 0x21, 0x23...0x5B, 0x5D...0x7E, 0x80...0xFF:
                continue
            default:
                return false
            }
        }
        return false
    }

    private static func isQuotedPairChar(_ b: UInt8) -> Bool {
        b == 0x09 || b == 0x20 || (0x21...0x7E).contains(b) || b >= 0x80
    }
}
