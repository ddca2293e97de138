/// Joining tensors along the batch (first) dimension and splitting them again, for dynamic
/// batching: requests of batch 1…n become one run, and each gets its rows back.
extension Tensor {
    /// Stacks `parts` along dimension 0. They must share the data type and every other dimension.
    public static func concatenated(_ parts: [Tensor]) throws -> Tensor {
        guard let first = parts.first else { throw InferenceError(.invalidInput, "nothing to concatenate") }
        if parts.count == 1 { return first }
        guard !first.shape.isEmpty else { throw InferenceError(.invalidInput, "scalars have no batch dimension") }
        let inner = first.shape.dropFirst()
        var rows = 0
        for part in parts {
            guard part.datatype == first.datatype, part.shape.count == first.shape.count, part.shape.dropFirst() == inner else {
                throw InferenceError(.shapeMismatch, "batched inputs differ beyond the batch dimension: \(part.shape) vs \(first.shape)")
            }
            rows += part.shape[0]
        }
        let storage: TensorStorage
        switch first.storage {
        case .float32: storage = .float32(parts.flatMap { part -> [Float] in if case .float32(let a) = part.storage { a } else { [] } })
        case .float64: storage = .float64(parts.flatMap { part -> [Double] in if case .float64(let a) = part.storage { a } else { [] } })
        case .int64: storage = .int64(parts.flatMap { part -> [Int64] in if case .int64(let a) = part.storage { a } else { [] } })
        case .int32: storage = .int32(parts.flatMap { part -> [Int32] in if case .int32(let a) = part.storage { a } else { [] } })
        case .bool: storage = .bool(parts.flatMap { part -> [Bool] in if case .bool(let a) = part.storage { a } else { [] } })
        case .bytes: storage = .bytes(parts.flatMap { part -> [[UInt8]] in if case .bytes(let a) = part.storage { a } else { [] } })
        case .raw: storage = .raw(parts.flatMap { part -> [UInt8] in if case .raw(let a) = part.storage { a } else { [] } })
        }
        return try Tensor(shape: [rows] + inner, datatype: first.datatype, storage: storage, columnLabels: first.columnLabels)
    }

    /// Rows `range` of dimension 0.
    public func rows(_ range: Range<Int>) throws -> Tensor {
        guard let total = shape.first, range.lowerBound >= 0, range.upperBound <= total else {
            throw InferenceError(.shapeMismatch, "rows \(range) are outside a tensor of shape \(shape)")
        }
        if range == 0..<total { return self }
        let width = total == 0 ? 0 : storageCount / total
        let elements = (range.lowerBound * width)..<(range.upperBound * width)
        let sliced: TensorStorage
        switch storage {
        case .float32(let a): sliced = .float32(Array(a[elements]))
        case .float64(let a): sliced = .float64(Array(a[elements]))
        case .int64(let a): sliced = .int64(Array(a[elements]))
        case .int32(let a): sliced = .int32(Array(a[elements]))
        case .bool(let a): sliced = .bool(Array(a[elements]))
        case .bytes(let a): sliced = .bytes(Array(a[elements]))
        case .raw(let a):
            let size = datatype.byteSize ?? 1
            sliced = .raw(Array(a[(elements.lowerBound * size)..<(elements.upperBound * size)]))
        }
        return Tensor(unchecked: [range.count] + shape.dropFirst(), datatype: datatype, storage: sliced, columnLabels: columnLabels)
    }
}
