#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A parsed JSON value. Object members keep their order (the V2 protocol's binary framing
/// follows the order of `inputs`).
enum JSON: Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case number(Double)
    case string(String)
    case array([JSON])
    /// An array whose elements are all numbers, kept unboxed (tensor `data`, shapes). `integral`
    /// is true when every element was written as an integer literal of at most 2^53 in magnitude.
    case numbers([Double], integral: Bool)
    case object([(String, JSON)])

    /// The elements of an array, whichever way it is stored.
    var items: [JSON]? {
        switch self {
        case .array(let items): items
        case .numbers(let values, let integral): values.map { integral ? .int(Int64($0)) : .number($0) }
        default: nil
        }
    }

    static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case (.bool(let x), .bool(let y)): x == y
        case (.number(let x), .number(let y)): x == y
        case (.int(let x), .int(let y)): x == y
        case (.string(let x), .string(let y)): x == y
        case (.array, .array), (.array, .numbers), (.numbers, .array), (.numbers, .numbers): a.items! == b.items!
        case (.object(let x), .object(let y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    subscript(key: String) -> JSON? {
        if case .object(let members) = self { return members.first { $0.0 == key }?.1 }
        return nil
    }

    var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number, .int: "a number"
        case .string: "a string"
        case .array, .numbers: "an array"
        case .object: "an object"
        }
    }
}

/// A small strict JSON parser (RFC 8259) over bytes, with a nesting limit; errors name the offset.
struct JSONParser {
    private let b: UnsafeBufferPointer<UInt8>
    private var p = 0
    private var depth = 0
    static let maxDepth = 64

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>) throws -> JSON {
        var parser = JSONParser(b: bytes)
        parser.skipSpace()
        let v = try parser.value()
        parser.skipSpace()
        guard parser.p == bytes.count else { throw parser.error("unexpected data after the JSON value") }
        return v
    }

    static func parse(_ bytes: [UInt8]) throws -> JSON {
        try bytes.withUnsafeBufferPointer { try parse($0) }
    }

    private init(b: UnsafeBufferPointer<UInt8>) { self.b = b }

    private func error(_ what: String) -> InferenceError {
        InferenceError(.invalidRequest, "invalid JSON at byte \(p): \(what)")
    }

    private mutating func skipSpace() {
        while p < b.count, b[p] == 0x20 || b[p] == 0x0A || b[p] == 0x0D || b[p] == 0x09 { p += 1 }
    }

    private mutating func value() throws -> JSON {
        guard p < b.count else { throw error("unexpected end of input") }
        switch b[p] {
        case UInt8(ascii: "{"): return try object()
        case UInt8(ascii: "["): return try array()
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "N"): try literal("NaN"); return .number(.nan)
        case UInt8(ascii: "I"): try literal("Infinity"); return .number(.infinity)
        default: return try number()
        }
    }

    private mutating func literal(_ word: String) throws {
        for c in word.utf8 {
            guard p < b.count, b[p] == c else { throw error("expected '\(word)'") }
            p += 1
        }
    }

    private mutating func nest() throws {
        depth += 1
        if depth > Self.maxDepth { throw error("nesting deeper than \(Self.maxDepth)") }
    }

    private mutating func object() throws -> JSON {
        try nest(); defer { depth -= 1 }
        p += 1
        var members: [(String, JSON)] = []
        skipSpace()
        if p < b.count, b[p] == UInt8(ascii: "}") { p += 1; return .object(members) }
        while true {
            skipSpace()
            guard p < b.count, b[p] == UInt8(ascii: "\"") else { throw error("expected a member name") }
            let key = try string()
            skipSpace()
            guard p < b.count, b[p] == UInt8(ascii: ":") else { throw error("expected ':'") }
            p += 1
            skipSpace()
            members.append((key, try value()))
            skipSpace()
            guard p < b.count else { throw error("unterminated object") }
            if b[p] == UInt8(ascii: ",") { p += 1; continue }
            if b[p] == UInt8(ascii: "}") { p += 1; return .object(members) }
            throw error("expected ',' or '}'")
        }
    }

    private mutating func array() throws -> JSON {
        try nest(); defer { depth -= 1 }
        p += 1
        var items: [JSON] = []
        skipSpace()
        if p < b.count, b[p] == UInt8(ascii: "]") { p += 1; return .array(items) }
        // Numeric arrays (tensor data) stay unboxed while every element is a number.
        var values: [Double] = []
        var integral = true
        var needSeparator = false
        numeric: while p < b.count, b[p] == UInt8(ascii: "-") || (b[p] >= 0x30 && b[p] <= 0x39) {
            let element = try number()
            switch element {
            case .int(let i) where i.magnitude <= 1 << 53: values.append(Double(i))
            case .number(let d): values.append(d); integral = false
            default:
                items = Self.boxed(values, integral: integral) + [element]
                values = []
                needSeparator = true
                break numeric
            }
            skipSpace()
            guard p < b.count else { throw error("unterminated array") }
            if b[p] == UInt8(ascii: "]") { p += 1; return .numbers(values, integral: integral) }
            guard b[p] == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            p += 1
            skipSpace()
        }
        // Something else follows: go on as a general array.
        if !values.isEmpty { items = Self.boxed(values, integral: integral) }
        if needSeparator {
            skipSpace()
            guard p < b.count else { throw error("unterminated array") }
            if b[p] == UInt8(ascii: "]") { p += 1; return .array(items) }
            guard b[p] == UInt8(ascii: ",") else { throw error("expected ',' or ']'") }
            p += 1
        }
        while true {
            skipSpace()
            items.append(try value())
            skipSpace()
            guard p < b.count else { throw error("unterminated array") }
            if b[p] == UInt8(ascii: ",") { p += 1; continue }
            if b[p] == UInt8(ascii: "]") { p += 1; return .array(items) }
            throw error("expected ',' or ']'")
        }
    }

    private static func boxed(_ values: [Double], integral: Bool) -> [JSON] {
        values.map { integral ? .int(Int64($0)) : .number($0) }
    }

    private mutating func string() throws -> String {
        p += 1
        let start = p
        // Fast path: no escapes.
        while p < b.count, b[p] != UInt8(ascii: "\""), b[p] != UInt8(ascii: "\\"), b[p] >= 0x20 { p += 1 }
        guard p < b.count else { throw error("unterminated string") }
        if b[p] == UInt8(ascii: "\"") {
            defer { p += 1 }
            return try validUTF8(UnsafeBufferPointer(rebasing: b[start..<p]))
        }
        var out = Array(b[start..<p])
        while true {
            guard p < b.count else { throw error("unterminated string") }
            let c = b[p]
            if c == UInt8(ascii: "\"") { p += 1; return try out.withUnsafeBufferPointer { try validUTF8($0) } }
            if c < 0x20 { throw error("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); p += 1; continue }
            p += 1
            guard p < b.count else { throw error("unterminated escape") }
            let e = b[p]; p += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4()
                if (0xD800..<0xDC00).contains(scalar) {
                    guard p + 1 < b.count, b[p] == UInt8(ascii: "\\"), b[p + 1] == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
                    p += 2
                    let low = try hex4()
                    guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw error("unpaired surrogate")
                }
                out.append(contentsOf: Array(String(Character(Unicode.Scalar(scalar)!)).utf8))
            default: throw error("invalid escape")
            }
        }
    }

    private mutating func hex4() throws -> UInt32 {
        guard p + 4 <= b.count else { throw error("short \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[p]; p += 1
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw error("bad hex digit in \\u escape")
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    private func validUTF8(_ bytes: UnsafeBufferPointer<UInt8>) throws -> String {
        guard let s = String(validating: bytes, as: UTF8.self) else { throw error("string is not valid UTF-8") }
        return s
    }

    private mutating func number() throws -> JSON {
        let start = p
        var negative = false
        if p < b.count, b[p] == UInt8(ascii: "-") {
            negative = true
            p += 1
            if p < b.count, b[p] == UInt8(ascii: "I") { try literal("Infinity"); return .number(-.infinity) }
        }
        // The significant digits go into `mantissa` while they fit (19 digits always do), so
        // that short decimals skip strtod (Clinger's fast path below).
        var mantissa: UInt64 = 0
        var significant = 0
        var fractionDigits = 0
        let digits = p
        while p < b.count, b[p] >= 0x30 && b[p] <= 0x39 {
            if significant < 19 { mantissa = mantissa &* 10 &+ UInt64(b[p] &- 0x30) }
            if mantissa != 0 { significant += 1 }
            p += 1
        }
        guard p > digits else { throw error("unexpected character") }
        if p - digits > 1 && b[digits] == 0x30 { throw error("leading zero in number") }
        let integerEnd = p
        var isInteger = true
        if p < b.count, b[p] == UInt8(ascii: ".") {
            isInteger = false; p += 1
            let f = p
            while p < b.count, b[p] >= 0x30 && b[p] <= 0x39 {
                if significant < 19 {
                    mantissa = mantissa &* 10 &+ UInt64(b[p] &- 0x30)
                    fractionDigits += 1
                    if mantissa != 0 { significant += 1 }
                } else {
                    significant += 1  // too many digits for the fast path
                }
                p += 1
            }
            guard p > f else { throw error("digit expected after '.'") }
        }
        var exponent = 0
        var exponentOverflow = false
        if p < b.count, b[p] == UInt8(ascii: "e") || b[p] == UInt8(ascii: "E") {
            isInteger = false; p += 1
            var exponentNegative = false
            if p < b.count, b[p] == UInt8(ascii: "+") || b[p] == UInt8(ascii: "-") { exponentNegative = b[p] == UInt8(ascii: "-"); p += 1 }
            let e = p
            while p < b.count, b[p] >= 0x30 && b[p] <= 0x39 {
                if exponent < 100_000 { exponent = exponent * 10 + Int(b[p] &- 0x30) } else { exponentOverflow = true }
                p += 1
            }
            guard p > e else { throw error("digit expected in exponent") }
            if exponentNegative { exponent = -exponent }
        }
        if isInteger, integerEnd - digits <= 18 {
            let magnitude = Int64(mantissa)
            return .int(negative ? -magnitude : magnitude)
        }
        let len = p - start
        if isInteger, len <= 20, let i = Int64(String(decoding: UnsafeBufferPointer(rebasing: b[start..<p]), as: UTF8.self)) {
            return .int(i)
        }
        // Clinger: a mantissa below 2^53 and a power of ten up to 22 are exact doubles, so one
        // multiplication or division rounds correctly.
        let power = exponent - fractionDigits
        if !exponentOverflow, significant <= 19, mantissa <= 1 << 53, (-22...22).contains(power) {
            let value = power >= 0 ? Double(mantissa) * Self.powersOfTen[power] : Double(mantissa) / Self.powersOfTen[-power]
            return .number(negative ? -value : value)
        }
        let v: Double = withUnsafeTemporaryAllocation(of: CChar.self, capacity: len + 1) { buf in
            for i in 0..<len { buf[i] = CChar(bitPattern: b[start + i]) }
            buf[len] = 0
            return strtod(buf.baseAddress!, nil)
        }
        return .number(v)
    }

    /// 1e0 … 1e22, every one exact as a Double.
    private static let powersOfTen: [Double] = (0...22).map { exponent in
        var value = 1.0
        for _ in 0..<exponent { value *= 10 }
        return value
    }
}
