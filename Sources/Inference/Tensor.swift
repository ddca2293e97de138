/// The element types of the Open Inference Protocol (V2) and of ONNX tensors the engine exchanges.
/// Raw values are the V2 `datatype` strings.
public enum TensorDataType: String, Sendable, CaseIterable {
    /// 1-byte boolean.
    case bool = "BOOL"
    /// Unsigned 8-bit integer.
    case uint8 = "UINT8"
    /// Unsigned 16-bit integer.
    case uint16 = "UINT16"
    /// Unsigned 32-bit integer.
    case uint32 = "UINT32"
    /// Unsigned 64-bit integer.
    case uint64 = "UINT64"
    /// Signed 8-bit integer.
    case int8 = "INT8"
    /// Signed 16-bit integer.
    case int16 = "INT16"
    /// Signed 32-bit integer.
    case int32 = "INT32"
    /// Signed 64-bit integer.
    case int64 = "INT64"
    /// IEEE half precision.
    case float16 = "FP16"
    /// IEEE single precision.
    case float32 = "FP32"
    /// IEEE double precision.
    case float64 = "FP64"
    /// bfloat16 (the upper half of an IEEE single).
    case bfloat16 = "BF16"
    /// Variable-length byte strings.
    case bytes = "BYTES"

    /// Bytes per element in the binary tensor layout, or `nil` for variable-size `BYTES`.
    public var byteSize: Int? {
        switch self {
        case .bool, .uint8, .int8: 1
        case .uint16, .int16, .float16, .bfloat16: 2
        case .uint32, .int32, .float32: 4
        case .uint64, .int64, .float64: 8
        case .bytes: nil
        }
    }
}

/// The elements of a tensor, row-major, without strides or padding.
public enum TensorStorage: Sendable, Equatable {
    /// `FP32`.
    case float32([Float])
    /// `FP64`.
    case float64([Double])
    /// `INT64`.
    case int64([Int64])
    /// `INT32`.
    case int32([Int32])
    /// `BOOL`.
    case bool([Bool])
    /// `BYTES`: one byte string per element (class labels are UTF-8 strings).
    case bytes([[UInt8]])
    /// Any other fixed-width type (`UINT8`…`UINT64`, `INT8`, `INT16`, `FP16`, `BF16`) as
    /// little-endian bytes, `byteSize` per element.
    case raw([UInt8])
}

/// Keys that label the last dimension of a tensor, as ONNX `ZipMap` produces them
/// (`seq(map(int64|string, float))` in ONNX terms: one map per row).
public enum TensorColumnLabels: Sendable, Equatable {
    /// Integer class labels.
    case int64([Int64])
    /// String class labels.
    case strings([String])

    /// The number of labels.
    var count: Int {
        switch self {
        case .int64(let l): l.count
        case .strings(let l): l.count
        }
    }
}

/// A dense tensor: shape, data type and storage. A value type; copies share storage until written.
public struct Tensor: Sendable, Equatable {
    /// Dimensions, outermost first. A scalar has shape `[]`.
    public var shape: [Int]
    /// The element type.
    public var datatype: TensorDataType
    /// The elements.
    public var storage: TensorStorage
    /// Set on `ZipMap` outputs: each row is a map from these labels to the row's values.
    public var columnLabels: TensorColumnLabels?

    /// Creates a tensor after checking that the element count matches the shape and data type.
    public init(shape: [Int], datatype: TensorDataType, storage: TensorStorage,
                columnLabels: TensorColumnLabels? = nil) throws {
        self.shape = shape
        self.datatype = datatype
        self.storage = storage
        self.columnLabels = columnLabels
        try validate()
    }

    /// An `FP32` tensor.
    public init(shape: [Int], floats: [Float]) throws {
        try self.init(shape: shape, datatype: .float32, storage: .float32(floats))
    }

    /// An `FP64` tensor.
    public init(shape: [Int], doubles: [Double]) throws {
        try self.init(shape: shape, datatype: .float64, storage: .float64(doubles))
    }

    /// An `INT64` tensor.
    public init(shape: [Int], int64s: [Int64]) throws {
        try self.init(shape: shape, datatype: .int64, storage: .int64(int64s))
    }

    /// A `BYTES` tensor of UTF-8 strings.
    public init(shape: [Int], strings: [String]) throws {
        try self.init(shape: shape, datatype: .bytes, storage: .bytes(strings.map { Array($0.utf8) }))
    }

    /// Internal initialiser for already-validated values.
    init(unchecked shape: [Int], datatype: TensorDataType, storage: TensorStorage, columnLabels: TensorColumnLabels? = nil) {
        self.shape = shape
        self.datatype = datatype
        self.storage = storage
        self.columnLabels = columnLabels
    }

    /// Number of elements (product of the shape; 1 for a scalar).
    public var elementCount: Int { shape.reduce(1, *) }

    /// The storage's element count (for `.raw`, bytes divided by the element size).
    public var storageCount: Int {
        switch storage {
        case .float32(let a): a.count
        case .float64(let a): a.count
        case .int64(let a): a.count
        case .int32(let a): a.count
        case .bool(let a): a.count
        case .bytes(let a): a.count
        case .raw(let a): a.count / max(datatype.byteSize ?? 1, 1)
        }
    }

    /// The elements as `Float` if the storage is `FP32`.
    public var floats: [Float]? { if case .float32(let a) = storage { a } else { nil } }
    /// The elements as `Int64` if the storage is `INT64`.
    public var int64s: [Int64]? { if case .int64(let a) = storage { a } else { nil } }
    /// The elements as UTF-8 strings if the storage is `BYTES`.
    public var strings: [String]? {
        if case .bytes(let a) = storage { a.map { String(decoding: $0, as: UTF8.self) } } else { nil }
    }

    /// Throws `invalid_tensor` when storage and data type disagree or the count does not match the shape.
    public func validate() throws {
        if let bad = shape.first(where: { $0 < 0 }) {
            throw InferenceError(.invalidTensor, "shape \(shape) has a negative dimension \(bad)")
        }
        let matches: Bool
        switch (storage, datatype) {
        case (.float32, .float32), (.float64, .float64), (.int64, .int64), (.int32, .int32),
             (.bool, .bool), (.bytes, .bytes): matches = true
        case (.raw(let bytes), _):
            guard let size = datatype.byteSize, ![.float32, .float64, .int64, .int32, .bool].contains(datatype) else {
                matches = false; break
            }
            if bytes.count % size != 0 {
                throw InferenceError(.invalidTensor, "\(bytes.count) bytes is not a multiple of the \(size)-byte \(datatype.rawValue) element size")
            }
            matches = true
        default: matches = false
        }
        guard matches else {
            throw InferenceError(.invalidTensor, "storage does not hold \(datatype.rawValue) elements")
        }
        let expected = try checkedCount(shape, what: "tensor")
        guard storageCount == expected else {
            throw InferenceError(.invalidTensor, "shape \(shape) needs \(expected) elements, got \(storageCount)")
        }
    }
}
