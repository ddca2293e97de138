/// Converts tensors to and from the V2 JSON `data` field and the binary tensor layout
/// (little-endian, row-major; `BYTES` elements as a 4-byte length then the bytes).
enum TensorCoding {
    // MARK: JSON

    /// Decodes `data` (nested or flat) for `shape` and `datatype`; `what` names the tensor in errors.
    static func fromJSON(_ data: JSON, shape: [Int], datatype: TensorDataType, what: String) throws -> Tensor {
        let expected = try checkedCount(shape, what: "input '\(what)'")
        try checkNesting(data, shape: shape, what: what)
        // Counted before anything is built: a small gzip body can inflate to millions of elements.
        let count = elementCount(data)
        guard count == expected else {
            throw InferenceError(.invalidInput, "unable to parse 'data' of input '\(what)': shape \(shape) needs \(expected) elements, got \(count)")
        }
        if let tensor = try fromNumbers(data, expected: expected, shape: shape, datatype: datatype, what: what) {
            return tensor
        }
        var flat: [JSON] = []
        flat.reserveCapacity(expected)
        flatten(data, into: &flat)
        return try fromElements(flat, shape: shape, datatype: datatype, what: what)
    }

    /// Converts `count`-checked elements to a tensor of `datatype`.
    private static func fromElements<C: Collection<JSON>>(_ flat: C, shape: [Int], datatype: TensorDataType, what: String) throws -> Tensor {
        func bad(_ v: JSON) -> InferenceError {
            InferenceError(.invalidInput, "unable to parse 'data' of input '\(what)': \(v.typeName) is not a valid \(datatype.rawValue) value")
        }
        func double(_ v: JSON) throws -> Double {
            switch v { case .number(let d): return d; case .int(let i): return Double(i); default: throw bad(v) }
        }
        func float(_ v: JSON) throws -> Float {
            let d = try double(v)
            let f = Float(d)
            guard f.isFinite || !d.isFinite else { throw outOfRange(d, datatype: datatype, what: what) }
            return f
        }
        func integer(_ v: JSON, _ range: ClosedRange<Int64>) throws -> Int64 {
            guard case .int(let i) = v, range.contains(i) else { throw bad(v) }
            return i
        }
        let storage: TensorStorage
        switch datatype {
        case .float32: storage = .float32(try flat.map(float))
        case .float64: storage = .float64(try flat.map(double))
        case .int64: storage = .int64(try flat.map { try integer($0, Int64.min...Int64.max) })
        case .int32: storage = .int32(try flat.map { Int32(try integer($0, Int64(Int32.min)...Int64(Int32.max))) })
        case .bool: storage = .bool(try flat.map { v in guard case .bool(let b) = v else { throw bad(v) }; return b })
        case .bytes: storage = .bytes(try flat.map { v in guard case .string(let s) = v else { throw bad(v) }; return Array(s.utf8) })
        case .uint8, .int8, .uint16, .int16, .uint32, .uint64:
            var raw: [UInt8] = []
            let size = datatype.byteSize!
            raw.reserveCapacity(flat.count * size)
            for v in flat {
                let bits: UInt64
                switch datatype {
                case .uint8: bits = UInt64(try integer(v, 0...255))
                case .int8: bits = UInt64(bitPattern: try integer(v, -128...127))
                case .uint16: bits = UInt64(try integer(v, 0...65535))
                case .int16: bits = UInt64(bitPattern: try integer(v, -32768...32767))
                case .uint32: bits = UInt64(try integer(v, 0...Int64(UInt32.max)))
                default:
                    guard case .int(let i) = v, i >= 0 else { throw bad(v) }
                    bits = UInt64(i)
                }
                for k in 0..<size { raw.append(UInt8(truncatingIfNeeded: bits >> (8 * UInt64(k)))) }
            }
            storage = .raw(raw)
        case .float16, .bfloat16:
            var raw: [UInt8] = []
            raw.reserveCapacity(flat.count * 2)
            for v in flat {
                let d = try double(v)
                let half = datatype == .float16 ? halfBits(Float(d)) : bfloatBits(Float(d))
                // All-ones exponent: infinity (or NaN) that a finite source number must not become.
                let maxExponent: UInt16 = datatype == .float16 ? 0x7C00 : 0x7F80
                if d.isFinite, half & maxExponent == maxExponent { throw outOfRange(d, datatype: datatype, what: what) }
                raw.append(UInt8(half & 0xFF)); raw.append(UInt8(half >> 8))
            }
            storage = .raw(raw)
        }
        return try Tensor(shape: shape, datatype: datatype, storage: storage)
    }

    /// A finite number that the datatype can only hold as an infinity.
    private static func outOfRange(_ d: Double, datatype: TensorDataType, what: String) -> InferenceError {
        InferenceError(.invalidInput, "unable to parse 'data' of input '\(what)': \(d) is out of range for \(datatype.rawValue)")
    }

    /// `data` is flat (one list of elements) or nested in the tensor's natural shape: a list at
    /// depth `d` holds `shape[d]` items, and elements sit at depth `shape.count`. Ragged rows or
    /// another nesting would otherwise be read as the right number of elements in the wrong places.
    private static func checkNesting(_ data: JSON, shape: [Int], what: String) throws {
        func isList(_ v: JSON) -> Bool {
            switch v { case .array, .numbers: return true; default: return false }
        }
        // A scalar, or flat (`.numbers` is a list of plain numbers).
        guard case .array(let top) = data, top.contains(where: isList) else { return }
        func check(_ v: JSON, depth: Int) -> Bool {
            guard depth < shape.count else { return !isList(v) }
            switch v {
            case .numbers(let values, _): return depth == shape.count - 1 && values.count == shape[depth]
            case .array(let items): return items.count == shape[depth] && items.allSatisfy { check($0, depth: depth + 1) }
            default: return false
            }
        }
        guard check(.array(top), depth: 0) else {
            throw InferenceError(
                .invalidInput,
                "unable to parse 'data' of input '\(what)': nested data must follow the shape \(shape) (or be one flat list)")
        }
    }

    /// The number of elements in `data`, without boxing any.
    private static func elementCount(_ v: JSON) -> Int {
        switch v {
        case .array(let items): items.reduce(0) { $0 + elementCount($1) }
        case .numbers(let values, _): values.count
        default: 1
        }
    }

    private static func flatten(_ v: JSON, into out: inout [JSON]) {
        switch v {
        case .array(let items): for i in items { flatten(i, into: &out) }
        case .numbers(let values, let integral): for d in values { out.append(integral ? .int(Int64(d)) : .number(d)) }
        default: out.append(v)
        }
    }

    /// The fast path for numeric data that the parser kept unboxed (`.numbers`, flat or as rows):
    /// nil when `data` has another shape, so the general path decides. FP32/FP64 convert directly;
    /// other types check each number as the general path would, without building a `[JSON]`.
    private static func fromNumbers(_ data: JSON, expected: Int, shape: [Int], datatype: TensorDataType, what: String) throws -> Tensor? {
        var values: [Double] = []
        var integral = true
        func collect(_ v: JSON) -> Bool {
            switch v {
            case .numbers(let row, let rowIntegral):
                if values.isEmpty { values.reserveCapacity(min(expected, 1 << 24)) }
                values += row
                integral = integral && rowIntegral
                return true
            case .array(let rows): return rows.allSatisfy(collect)
            default: return false
            }
        }
        guard collect(data) else { return nil }
        let storage: TensorStorage
        switch datatype {
        case .float32:
            let floats = values.map { Float($0) }
            if let k = floats.indices.first(where: { floats[$0].isInfinite && values[$0].isFinite }) {
                throw outOfRange(values[k], datatype: datatype, what: what)
            }
            storage = .float32(floats)
        case .float64: storage = .float64(values)
        default:
            // `.numbers` holds integers only up to 2^53 in magnitude, so `Int64(d)` is exact.
            return try fromElements(values.lazy.map { integral ? JSON.int(Int64($0)) : JSON.number($0) },
                                    shape: shape, datatype: datatype, what: what)
        }
        return try Tensor(shape: shape, datatype: datatype, storage: storage)
    }

    /// IEEE binary16 bits of `f` (round to nearest even).
    static func halfBits(_ f: Float) -> UInt16 {
        let x = f.bitPattern
        let sign = UInt16((x >> 16) & 0x8000)
        let exp = Int((x >> 23) & 0xFF), mant = x & 0x7F_FFFF
        if exp == 0xFF { return sign | 0x7C00 | (mant != 0 ? 0x200 : 0) }
        let e = exp - 127 + 15
        if e >= 0x1F { return sign | 0x7C00 }
        if e <= 0 {
            if e < -10 { return sign }
            let m = mant | 0x80_0000
            let shift = UInt32(14 - e)
            var h = m >> shift
            let rem = m & ((1 << shift) - 1), halfway = UInt32(1) << (shift - 1)
            if rem > halfway || (rem == halfway && (h & 1) == 1) { h += 1 }
            return sign | UInt16(h)
        }
        var h = UInt32(e) << 10 | (mant >> 13)
        let rem = mant & 0x1FFF
        if rem > 0x1000 || (rem == 0x1000 && (h & 1) == 1) { h += 1 }
        return sign | UInt16(truncatingIfNeeded: h)
    }

    /// bfloat16 bits of `f` (round to nearest even).
    static func bfloatBits(_ f: Float) -> UInt16 {
        if f.isNaN { return 0x7FC0 }
        let x = f.bitPattern
        return UInt16((x + 0x7FFF + ((x >> 16) & 1)) >> 16)
    }

    /// Writes a tensor's elements as a flat JSON array.
    static func writeJSON(_ t: Tensor, to w: inout JSONWriter) {
        w.bytes.append(UInt8(ascii: "["))
        func each<C: Collection>(_ c: C, _ body: (inout JSONWriter, C.Element) -> Void) {
            var first = true
            for v in c { if !first { w.comma() }; first = false; body(&w, v) }
        }
        switch t.storage {
        case .float32(let a): each(a) { $0.float($1) }
        case .float64(let a): each(a) { $0.double($1) }
        case .int64(let a): each(a) { $0.int($1) }
        case .int32(let a): each(a) { $0.int($1) }
        case .bool(let a): each(a) { $0.bool($1) }
        case .bytes(let a): each(a) { $0.string(String(decoding: $1, as: UTF8.self)) }
        case .raw(let r):
            let bits = rawBits(r, t.datatype)
            switch t.datatype {
            case .float16, .bfloat16: each(bits) { $0.double(halfValue($1, t.datatype)) }
            case .int8: each(bits) { $0.int(Int8(truncatingIfNeeded: $1)) }
            case .int16: each(bits) { $0.int(Int16(truncatingIfNeeded: $1)) }
            case .int32: each(bits) { $0.int(Int32(truncatingIfNeeded: $1)) }
            case .int64: each(bits) { $0.int(Int64(bitPattern: $1)) }
            default: each(bits) { $0.int($1) }  // UINT8 … UINT64 (and BOOL as 0/1)
            }
        }
        w.bytes.append(UInt8(ascii: "]"))
    }

    /// The little-endian elements of `r`, zero-extended to 64 bits.
    private static func rawBits(_ r: [UInt8], _ type: TensorDataType) -> [UInt64] {
        let size = type.byteSize ?? 1
        return stride(from: 0, to: r.count - size + 1, by: size).map { o in
            var bits: UInt64 = 0
            for k in 0..<size { bits |= UInt64(r[o + k]) << (8 * UInt64(k)) }
            return bits
        }
    }

    /// The value of FP16 or BF16 `bits`.
    private static func halfValue(_ bits: UInt64, _ type: TensorDataType) -> Double {
        if type == .bfloat16 { return Double(Float(bitPattern: UInt32(truncatingIfNeeded: bits) << 16)) }
        let h = UInt16(truncatingIfNeeded: bits), e = Int((h >> 10) & 0x1F), m = Double(h & 0x3FF)
        let s: Double = h & 0x8000 != 0 ? -1 : 1
        if e == 0 { return s * m * 0x1p-24 }
        if e == 31 { return m == 0 ? s * .infinity : .nan }
        return s * (1 + m / 1024) * Double(sign: .plus, exponent: e - 15, significand: 1)
    }

    // MARK: Binary

    /// Decodes one binary tensor blob.
    static func fromBinary(_ bytes: ArraySlice<UInt8>, shape: [Int], datatype: TensorDataType, what: String) throws -> Tensor {
        let count = try checkedCount(shape, what: "input '\(what)'")
        guard let size = datatype.byteSize else {
            var items: [[UInt8]] = []
            var p = bytes.startIndex
            while p < bytes.endIndex {
                guard bytes.endIndex - p >= 4 else {
                    throw InferenceError(.invalidInput, "binary data of input '\(what)' ends inside a BYTES length prefix")
                }
                let n = Int(bytes[p]) | Int(bytes[p + 1]) << 8 | Int(bytes[p + 2]) << 16 | Int(bytes[p + 3]) << 24
                p += 4
                guard bytes.endIndex - p >= n else {
                    throw InferenceError(.invalidInput, "binary data of input '\(what)' is truncated: element \(items.count) needs \(n) bytes")
                }
                items.append(Array(bytes[p..<(p + n)]))
                p += n
            }
            guard items.count == count else {
                throw InferenceError(.invalidInput, "binary data of input '\(what)' holds \(items.count) BYTES elements, shape \(shape) needs \(count)")
            }
            return try Tensor(shape: shape, datatype: .bytes, storage: .bytes(items))
        }
        guard bytes.count == count * size else {
            throw InferenceError(.invalidInput, "binary data of input '\(what)' has \(bytes.count) bytes, shape \(shape) of \(datatype.rawValue) needs \(count * size)")
        }
        let storage: TensorStorage = bytes.withUnsafeBytes { p in
            switch datatype {
            case .float32: .float32((0..<count).map { Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self))) })
            case .float64: .float64((0..<count).map { Double(bitPattern: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self))) })
            case .int64: .int64((0..<count).map { Int64(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) })
            case .int32: .int32((0..<count).map { Int32(littleEndian: p.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) })
            case .bool: .bool((0..<count).map { p[$0] != 0 })
            default: .raw(Array(p))
            }
        }
        return try Tensor(shape: shape, datatype: datatype, storage: storage)
    }

    /// Appends a tensor's binary layout.
    static func appendBinary(_ t: Tensor, to out: inout [UInt8]) {
        switch t.storage {
        case .float32(let a): a.withUnsafeBytes { out.append(contentsOf: $0) }  // little-endian hosts
        case .float64(let a): a.withUnsafeBytes { out.append(contentsOf: $0) }
        case .int64(let a): a.withUnsafeBytes { out.append(contentsOf: $0) }
        case .int32(let a): a.withUnsafeBytes { out.append(contentsOf: $0) }
        case .bool(let a): out.append(contentsOf: a.map { $0 ? 1 : 0 })
        case .raw(let r): out.append(contentsOf: r)
        case .bytes(let items):
            for b in items {
                let n = UInt32(b.count)
                out.append(contentsOf: [UInt8(n & 0xFF), UInt8((n >> 8) & 0xFF), UInt8((n >> 16) & 0xFF), UInt8(n >> 24)])
                out.append(contentsOf: b)
            }
        }
    }

    /// Size of a tensor's binary layout.
    static func binarySize(_ t: Tensor) -> Int {
        if case .bytes(let items) = t.storage { return items.reduce(0) { $0 + 4 + $1.count } }
        return t.elementCount * (t.datatype.byteSize ?? 1)
    }
}
