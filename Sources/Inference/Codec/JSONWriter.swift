/// Appends JSON to a byte buffer without intermediate strings for numbers where it can.
struct JSONWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        for c in s.utf8 {
            switch c {
            case UInt8(ascii: "\""): raw("\\\"")
            case UInt8(ascii: "\\"): raw("\\\\")
            case 0x0A: raw("\\n")
            case 0x0D: raw("\\r")
            case 0x09: raw("\\t")
            case 0..<0x20:
                raw("\\u00")
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                bytes.append(hex[Int(c >> 4)]); bytes.append(hex[Int(c & 15)])
            default: bytes.append(c)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func key(_ k: String) {
        string(k)
        bytes.append(UInt8(ascii: ":"))
    }

    mutating func int<T: BinaryInteger>(_ v: T) {
        bytes.append(contentsOf: String(v).utf8)
    }

    /// Shortest round-trip decimal; NaN and infinities as Python's json module writes them.
    mutating func double(_ v: Double) {
        if v.isNaN { raw("NaN") } else if v.isInfinite { v > 0 ? raw("Infinity") : raw("-Infinity") }
        else if v == v.rounded(), abs(v) < 1e15 { int(Int64(v)); bytes.append(contentsOf: [0x2E, 0x30]) }
        else { bytes.append(contentsOf: v.description.utf8) }
    }

    mutating func float(_ v: Float) {
        if v.isNaN { raw("NaN") } else if v.isInfinite { v > 0 ? raw("Infinity") : raw("-Infinity") }
        else if v == v.rounded(), abs(v) < 1e7 { int(Int64(v)); bytes.append(contentsOf: [0x2E, 0x30]) }
        else { bytes.append(contentsOf: v.description.utf8) }
    }

    mutating func bool(_ v: Bool) { v ? raw("true") : raw("false") }

    mutating func comma() { bytes.append(UInt8(ascii: ",")) }

    /// Writes a parameters object.
    mutating func parameters(_ p: [String: InferenceParameter]) {
        bytes.append(UInt8(ascii: "{"))
        for (i, (k, v)) in p.sorted(by: { $0.key < $1.key }).enumerated() {
            if i > 0 { comma() }
            key(k)
            switch v {
            case .bool(let b): bool(b)
            case .int(let n): int(n)
            case .double(let d): double(d)
            case .string(let s): string(s)
            }
        }
        bytes.append(UInt8(ascii: "}"))
    }
}
