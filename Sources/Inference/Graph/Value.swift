/// Element types the executor computes with. Integers and booleans share `Int64` storage.
enum ElementType: Sendable, Equatable {
    case float32, float64, int64, int32, bool, uint8, int8, string

    /// Maps an ONNX `TensorProto.DataType` number; nil for types the engine does not compute with.
    init?(onnx: Int) {
        switch onnx {
        case 1: self = .float32
        case 2: self = .uint8
        case 3: self = .int8
        case 6: self = .int32
        case 7: self = .int64
        case 8: self = .string
        case 9: self = .bool
        case 11: self = .float64
        default: return nil
        }
    }

    /// The V2 protocol datatype for this element type.
    var protocolType: TensorDataType {
        switch self {
        case .float32: .float32
        case .float64: .float64
        case .int64: .int64
        case .int32: .int32
        case .bool: .bool
        case .uint8: .uint8
        case .int8: .int8
        case .string: .bytes
        }
    }

    /// True when values live in `Value.i`.
    var isInteger: Bool { self == .int64 || self == .int32 || self == .bool || self == .uint8 || self == .int8 }
}

/// The executor's tensor: one of the typed arrays is in use, chosen by `type`. Kernels write into
/// a slot's arrays in place (`resize` keeps capacity), so a session reuses its buffers between runs.
struct Value: Sendable {
    var type: ElementType = .float32
    var shape: [Int] = []
    var f: [Float] = []
    var d: [Double] = []
    var i: [Int64] = []
    /// ONNX strings: bytes, not necessarily UTF-8 (a BYTES tensor passes through unchanged).
    var s: [[UInt8]] = []
    var labels: TensorColumnLabels? = nil

    var count: Int { shape.reduce(1, *) }

    init() {}

    init(shape: [Int], floats: [Float]) {
        self.shape = shape
        f = floats
    }

    init(shape: [Int], type: ElementType, ints: [Int64]) {
        self.shape = shape
        self.type = type
        i = ints
    }

    init(shape: [Int], doubles: [Double]) {
        self.shape = shape
        type = .float64
        d = doubles
    }

    init(shape: [Int], strings: [String]) {
        self.shape = shape
        type = .string
        s = strings.map { Array($0.utf8) }
    }

    /// Sets type and shape and sizes the matching array to the element count, keeping capacity.
    mutating func reset(_ type: ElementType, _ shape: [Int]) {
        self.type = type
        if self.shape != shape { self.shape = shape }
        labels = nil
        let n = shape.reduce(1, *)
        switch type {
        case .float32: Value.resize(&f, n, 0)
        case .float64: Value.resize(&d, n, 0)
        case .string: Value.resize(&s, n, [])
        default: Value.resize(&i, n, 0)
        }
    }

    static func resize<T>(_ a: inout [T], _ n: Int, _ zero: T) {
        if a.count < n {
            a.append(contentsOf: repeatElement(zero, count: n - a.count))
        } else if a.count > n {
            a.removeLast(a.count - n)
        }
    }

    /// The values converted to `Int64` (for shape-like inputs).
    var asInts: [Int64] {
        switch type {
        case .float32: f.map { saturatingInt64(Double($0)) }
        case .float64: d.map(saturatingInt64)
        case .string: []
        default: i
        }
    }

    /// The values converted to `Float`.
    var asFloats: [Float] {
        switch type {
        case .float32: f
        case .float64: d.map { Float($0) }
        case .string: []
        default: i.map { Float($0) }
        }
    }
}

extension Value {
    /// Converts a request tensor to an executor value.
    init(_ t: Tensor) throws {
        shape = t.shape
        labels = t.columnLabels
        switch t.storage {
        case .float32(let a): type = .float32; f = a
        case .float64(let a): type = .float64; d = a
        case .int64(let a): type = .int64; i = a
        case .int32(let a): type = .int32; i = a.map(Int64.init)
        case .bool(let a): type = .bool; i = a.map { $0 ? 1 : 0 }
        case .bytes(let a): type = .string; s = a
        case .raw(let bytes):
            switch t.datatype {
            case .uint8: type = .uint8; i = bytes.map(Int64.init)
            case .int8: type = .int8; i = bytes.map { Int64(Int8(bitPattern: $0)) }
            default:
                throw InferenceError(.invalidInput, "datatype \(t.datatype.rawValue) is not supported by the engine")
            }
        }
    }

    /// Converts an executor value to a public tensor.
    var tensor: Tensor {
        let storage: TensorStorage
        switch type {
        case .float32: storage = .float32(f)
        case .float64: storage = .float64(d)
        case .int64: storage = .int64(i)
        case .int32: storage = .int32(i.map { Int32(truncatingIfNeeded: $0) })
        case .bool: storage = .bool(i.map { $0 != 0 })
        case .uint8: storage = .raw(i.map { UInt8(truncatingIfNeeded: $0) })
        case .int8: storage = .raw(i.map { UInt8(bitPattern: Int8(truncatingIfNeeded: $0)) })
        case .string: storage = .bytes(s)
        }
        return Tensor(unchecked: shape, datatype: type.protocolType, storage: storage, columnLabels: labels)
    }
}

/// Float → Int64 without trapping: NaN becomes 0, out-of-range values clamp.
func saturatingInt64(_ x: Double) -> Int64 {
    if x.isNaN { return 0 }
    if x >= 9.223372036854775e18 { return .max }
    if x <= -9.223372036854775e18 { return .min }
    return Int64(x)
}

/// The element count of `shape`, or an error if a dimension is negative or the product overflows
/// (a hostile shape must be an error, never a trap).
func checkedCount(_ shape: [Int], what: String) throws -> Int {
    var n = 1
    for d in shape {
        guard d >= 0 else { throw InferenceError(.invalidTensor, "\(what): negative dimension \(d) in \(shape)") }
        let (p, overflow) = n.multipliedReportingOverflow(by: d)
        guard !overflow, p <= 1 << 40 else { throw InferenceError(.invalidTensor, "\(what): shape \(shape) has too many elements") }
        n = p
    }
    return n
}
