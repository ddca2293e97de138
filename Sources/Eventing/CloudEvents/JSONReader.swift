/// A string token: where its contents lie in the input and whether they need unescaping.
///
/// Strings are validated when scanned but only materialised on demand, so most (escape-free)
/// strings become a `String` straight from the input bytes with no intermediate copy.
struct JSONStringToken {
    var content: Range<Int>
    var hasEscapes: Bool
}

/// A strict RFC 8259 tokenizer over a byte buffer.
///
/// This exists instead of `JSONSerialization`/`Codable` because it runs for every ingested event
/// and because the event codec needs what those APIs hide: the exact byte range of a value (so
/// a JSON `data` payload is stored as received), and strict rejection of unpaired surrogates,
/// invalid UTF-8 and malformed numbers. It never recurses, so hostile nesting cannot overflow the
/// stack; nesting deeper than `maxDepth` is refused instead.
struct JSONReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var index = 0

    static let maxDepth = 512

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var isAtEnd: Bool { index >= bytes.count }

    @inline(__always)
    var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    func syntaxError(_ message: String) -> CloudEventError {
        .invalid(nil, "malformed JSON at byte \(index): \(message)")
    }

    @inline(__always)
    mutating func skipWhitespace() {
        while index < bytes.count {
            guard Self.isWhitespace(bytes[index]) else { return }
            index += 1
        }
    }

    /// A UTF-8 byte order mark is tolerated at the very start, as RFC 8259 §8.1 permits.
    mutating func skipByteOrderMark() {
        if index == 0, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF {
            index = 3
        }
    }

    mutating func expect(_ byte: UInt8, _ what: String) throws(CloudEventError) {
        guard current == byte else { throw syntaxError("expected \(what)") }
        index += 1
    }

    /// Only whitespace may follow the top-level value.
    mutating func expectEnd() throws(CloudEventError) {
        skipWhitespace()
        guard isAtEnd else { throw syntaxError("unexpected data after the JSON value") }
    }

    // MARK: Strings

    /// Scans a string whose opening quote is at `index`, validating escapes and UTF-8.
    mutating func scanString() throws(CloudEventError) -> JSONStringToken {
        try expect(0x22, "'\"'")
        let start = index
        var hasEscapes = false
        while index < bytes.count {
            let b = bytes[index]
            if b == 0x22 {
                let token = JSONStringToken(content: start..<index, hasEscapes: hasEscapes)
                index += 1
                return token
            }
            if b == 0x5C {
                hasEscapes = true
                try scanEscape()
            } else if b < 0x20 {
                throw syntaxError("unescaped control character in string")
            } else if b < 0x80 {
                index += 1
            } else {
                guard let length = UTF8Validation.sequenceLength(bytes, at: index) else {
                    throw syntaxError("invalid UTF-8 in string")
                }
                index += length
            }
        }
        throw syntaxError("unterminated string")
    }

    /// Validates one escape at `index`; a high surrogate must be followed by an escaped low one.
    private mutating func scanEscape() throws(CloudEventError) {
        guard index + 1 < bytes.count else { throw syntaxError("unterminated escape") }
        let kind = bytes[index + 1]
        index += 2
        switch kind {
        case 0x22, 0x5C, 0x2F, UInt8(ascii: "b"), UInt8(ascii: "f"), UInt8(ascii: "n"),
             UInt8(ascii: "r"), UInt8(ascii: "t"):
            return
        case UInt8(ascii: "u"):
            let unit = try scanHex4()
            if (0xDC00...0xDFFF).contains(unit) { throw syntaxError("unpaired low surrogate") }
            guard (0xD800...0xDBFF).contains(unit) else { return }
            guard index + 1 < bytes.count, bytes[index] == 0x5C, bytes[index + 1] == UInt8(ascii: "u") else {
                throw syntaxError("unpaired high surrogate")
            }
            index += 2
            guard (0xDC00...0xDFFF).contains(try scanHex4()) else { throw syntaxError("unpaired high surrogate") }
        default:
            throw syntaxError("invalid escape sequence")
        }
    }

    private mutating func scanHex4() throws(CloudEventError) -> UInt32 {
        guard bytes.count - index >= 4 else { throw syntaxError("truncated \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard let digit = ASCIIHex.value(bytes[index]) else { throw syntaxError("invalid \\u escape") }
            value = value << 4 | UInt32(digit)
            index += 1
        }
        return value
    }


    /// The UTF-8 contents of a scanned string token, escapes resolved.
    func stringBytes(_ token: JSONStringToken) -> [UInt8] {
        let raw = UnsafeBufferPointer(rebasing: bytes[token.content])
        guard token.hasEscapes else { return Array(raw) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = 0
        while i < raw.count {
            // Copy the run up to the next backslash in one go.
            var runEnd = i
            while runEnd < raw.count, raw[runEnd] != 0x5C { runEnd += 1 }
            if runEnd > i { out.append(contentsOf: UnsafeBufferPointer(rebasing: raw[i..<runEnd])) }
            guard runEnd < raw.count else { break }
            i = Self.appendEscape(raw, at: runEnd, to: &out)
        }
        return out
    }

    /// Resolves the (already validated) escape at `i`; returns the index after it.
    private static func appendEscape(_ raw: UnsafeBufferPointer<UInt8>, at i: Int, to out: inout [UInt8]) -> Int {
        switch raw[i + 1] {
        case UInt8(ascii: "b"): out.append(0x08)
        case UInt8(ascii: "f"): out.append(0x0C)
        case UInt8(ascii: "n"): out.append(0x0A)
        case UInt8(ascii: "r"): out.append(0x0D)
        case UInt8(ascii: "t"): out.append(0x09)
        case UInt8(ascii: "u"):
            let unit = hex4(raw, at: i + 2)
            guard (0xD800...0xDBFF).contains(unit) else {
                UTF8Validation.append(unit, to: &out)
                return i + 6
            }
            let low = hex4(raw, at: i + 8)
            UTF8Validation.append(0x10000 + (unit - 0xD800) << 10 + (low - 0xDC00), to: &out)
            return i + 12
        default: out.append(raw[i + 1]) // ", \ and /
        }
        return i + 2
    }

    private static func hex4(_ raw: UnsafeBufferPointer<UInt8>, at i: Int) -> UInt32 {
        var value: UInt32 = 0
        for k in i..<(i + 4) { value = value << 4 | UInt32(ASCIIHex.value(raw[k]) ?? 0) }
        return value
    }

    func string(_ token: JSONStringToken) -> String {
        guard token.hasEscapes else {
            return String(decoding: UnsafeBufferPointer(rebasing: bytes[token.content]), as: UTF8.self)
        }
        return String(decoding: stringBytes(token), as: UTF8.self)
    }

    // MARK: Numbers and literals

    /// Scans an RFC 8259 number; `isInteger` is false when it has a fraction or exponent.
    mutating func scanNumber() throws(CloudEventError) -> (range: Range<Int>, isInteger: Bool) {
        let start = index
        if current == UInt8(ascii: "-") { index += 1 }
        if current == UInt8(ascii: "0") {
            index += 1
        } else {
            guard scanDigits() else { throw syntaxError("invalid number") }
        }
        var isInteger = true
        if current == UInt8(ascii: ".") {
            isInteger = false
            index += 1
            guard scanDigits() else { throw syntaxError("invalid number fraction") }
        }
        if let e = current, e | 0x20 == UInt8(ascii: "e") {
            isInteger = false
            index += 1
            if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { index += 1 }
            guard scanDigits() else { throw syntaxError("invalid number exponent") }
        }
        return (start..<index, isInteger)
    }

    /// One or more digits; false if there were none.
    private mutating func scanDigits() -> Bool {
        let start = index
        while let b = current, AttributeSyntax.isDigit(b) { index += 1 }
        return index > start
    }

    /// The value of an integer token if it fits the CloudEvents Integer type (signed 32-bit).
    func int32(_ range: Range<Int>) -> Int32? {
        var i = range.lowerBound
        let negative = bytes[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        guard range.upperBound - i <= 10 else { return nil } // avoids Int64 overflow too
        var magnitude: Int64 = 0
        while i < range.upperBound {
            magnitude = magnitude * 10 + Int64(bytes[i] - 0x30)
            i += 1
        }
        return Int32(exactly: negative ? -magnitude : magnitude)
    }

    mutating func scanLiteral(_ literal: StaticString) throws(CloudEventError) {
        let count = literal.utf8CodeUnitCount
        guard bytes.count - index >= count else { throw syntaxError("invalid literal") }
        let expected = literal.utf8Start
        for k in 0..<count where bytes[index + k] != expected[k] {
            throw syntaxError("invalid literal")
        }
        index += count
    }

    // MARK: Whole values

    /// Skips one complete value of any kind, validating it, without recursion.
    mutating func skipValue() throws(CloudEventError) {
        var containers: [Bool] = [] // true for an object, false for an array
        while true {
            skipWhitespace()
            guard let b = current else { throw syntaxError("unexpected end of input") }
            switch b {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                let isObject = b == UInt8(ascii: "{")
                index += 1
                skipWhitespace()
                if current == (isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")) {
                    index += 1
                } else {
                    guard containers.count < Self.maxDepth else { throw syntaxError("nesting too deep") }
                    containers.append(isObject)
                    if isObject { try scanMemberName() }
                    continue
                }
            case 0x22: _ = try scanString()
            case UInt8(ascii: "t"): try scanLiteral("true")
            case UInt8(ascii: "f"): try scanLiteral("false")
            case UInt8(ascii: "n"): try scanLiteral("null")
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): _ = try scanNumber()
            default: throw syntaxError("unexpected character")
            }
            if try closeFinishedContainers(&containers) { return }
        }
    }

    /// After a value: consumes closing brackets, and returns false (ready for the next value) at
    /// a comma, or true once the outermost value is complete.
    private mutating func closeFinishedContainers(_ containers: inout [Bool]) throws(CloudEventError) -> Bool {
        while let isObject = containers.last {
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","):
                index += 1
                if isObject { try scanMemberName() }
                return false
            case UInt8(ascii: "}") where isObject, UInt8(ascii: "]") where !isObject:
                index += 1
                containers.removeLast()
            default:
                throw syntaxError(isObject ? "expected ',' or '}'" : "expected ',' or ']'")
            }
        }
        return true
    }

    /// `"name" :` inside an object.
    mutating func scanMemberName() throws(CloudEventError) {
        skipWhitespace()
        _ = try scanString()
        skipWhitespace()
        try expect(UInt8(ascii: ":"), "':'")
    }

    /// Whether `bytes` are exactly one JSON value with no surrounding whitespace.
    ///
    /// Whitespace around the value is refused because the decoder keeps only the value's own
    /// bytes: embedding a padded payload in structured mode would silently drop the padding.
    static func isExactlyOneValue(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        var reader = JSONReader(bytes)
        guard let first = reader.current, !isWhitespace(first),
              let last = bytes.last, !isWhitespace(last) else { return false }
        do {
            try reader.skipValue()
            return reader.isAtEnd
        } catch {
            return false
        }
    }

    @inline(__always)
    private static func isWhitespace(_ b: UInt8) -> Bool {
        b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09
    }
}
