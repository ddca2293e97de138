/// A value of one of the three CESQL primitive types (spec §3.1).
public enum CESQLValue: Sendable, Equatable {
    case boolean(Bool)
    case integer(Int32)
    case string(String)

    /// Converts an event attribute. URI, timestamp and binary attributes already arrive as their
    /// canonical strings, which is exactly how CESQL represents them (spec §3.2).
    public init(_ attribute: CloudEventValue) {
        switch attribute {
        case .string(let value): self = .string(value)
        case .integer(let value): self = .integer(value)
        case .boolean(let value): self = .boolean(value)
        }
    }
}

extension CESQLValue: CustomStringConvertible {
    public var description: String {
        switch self {
        case .boolean(let value): value ? "true" : "false"
        case .integer(let value): String(value)
        case .string(let value): "'\(value)'"
        }
    }
}

/// The static type of a CESQL value. Every operator and function has a fixed return type, whose
/// zero value is what it yields when one of its operands fails (spec §3.1, §3.3).
enum CESQLType: Sendable {
    case boolean
    case integer
    case string

    var zero: CESQLValue {
        switch self {
        case .boolean: .boolean(false)
        case .integer: .integer(0)
        case .string: .string("")
        }
    }

    /// The type name as the spec spells it, for error messages.
    var name: String {
        switch self {
        case .boolean: "Boolean"
        case .integer: "Integer"
        case .string: "String"
        }
    }
}

// MARK: - Casting (spec §3.7)

extension CESQLValue {
    var type: CESQLType {
        switch self {
        case .boolean: .boolean
        case .integer: .integer
        case .string: .string
        }
    }

    /// Every value converts to a string: integers in base 10, booleans as `true` / `false`.
    var castToString: String {
        switch self {
        case .string(let value): value
        case .integer(let value): String(value)
        case .boolean(let value): value ? "true" : "false"
        }
    }

    /// The integer this value converts to, or nil when a string is not a base-10 32-bit integer
    /// with an optional leading sign (the caller reports the cast error).
    var castToInteger: Int32? {
        switch self {
        case .integer(let value): value
        case .boolean(let value): value ? 1 : 0
        case .string(let value): Int32(value, radix: 10)
        }
    }

    /// The boolean this value converts to, or nil when a string is neither `true` nor `false`
    /// ignoring case (the caller reports the cast error).
    var castToBoolean: Bool? {
        switch self {
        case .boolean(let value): value
        case .integer(let value): value != 0
        case .string(let value): Self.parseBoolean(value)
        }
    }

    /// Case-insensitive match against `true` / `false` without allocating a lowered copy. Only
    /// ASCII needs folding: no non-ASCII scalar lower-cases to one of the letters involved.
    private static func parseBoolean(_ text: String) -> Bool? {
        let bytes = text.utf8
        if bytes.count == 4, asciiCaseInsensitiveEquals(bytes, "true".utf8) { return true }
        if bytes.count == 5, asciiCaseInsensitiveEquals(bytes, "false".utf8) { return false }
        return nil
    }

    private static func asciiCaseInsensitiveEquals(_ text: String.UTF8View, _ lowercase: String.UTF8View) -> Bool {
        text.elementsEqual(lowercase) { byte, expected in
            let folded = (byte >= 0x41 && byte <= 0x5A) ? byte | 0x20 : byte
            return folded == expected
        }
    }
}
