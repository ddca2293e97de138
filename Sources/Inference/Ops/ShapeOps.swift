/// `Identity`, `Dropout` (inference: a copy), `Flatten`, `Reshape`, `Squeeze`, `Unsqueeze`:
/// operators that only change the shape; the data is copied into the output slot's own buffer.
struct ReshapeKernel: Kernel {
    enum Op: Sendable { case identity, flatten(Int), reshape(allowZero: Bool), squeeze([Int]?), unsqueeze([Int]?) }
    let op: Op

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try required(frame, inputs, 0)
        let shape: [Int]
        switch op {
        case .identity: shape = x.shape
        case .flatten(let axis):
            let a = axis < 0 ? axis + x.shape.count : axis
            guard a >= 0 && a <= x.shape.count else { throw InferenceError(.shapeMismatch, "Flatten axis \(axis) out of range for \(x.shape)") }
            shape = [x.shape[..<a].reduce(1, *), x.shape[a...].reduce(1, *)]
        case .reshape(let allowZero):
            let spec = try required(frame, inputs, 1).asInts
            shape = try reshapeTarget(x.shape, spec.map(Int.init), allowZero: allowZero)
        case .squeeze(let attr):
            let axes = try (attr ?? (inputs.count > 1 ? frame.get(inputs[1])?.asInts.map(Int.init) : nil))
                .map { try $0.map { try normalizeAxis($0, rank: x.shape.count) } }
            if let axes, let bad = axes.first(where: { x.shape[$0] != 1 }) {
                throw InferenceError(.shapeMismatch, "Squeeze axis \(bad) of \(x.shape) is not 1")
            }
            shape = x.shape.enumerated().filter { item in axes.map { !$0.contains(item.offset) } ?? (item.element != 1) }.map(\.element)
        case .unsqueeze(let attr):
            guard let raw = attr ?? (inputs.count > 1 ? frame.get(inputs[1])?.asInts.map(Int.init) : nil) else {
                throw InferenceError(.invalidModel, "Unsqueeze needs axes")
            }
            let rank = x.shape.count + raw.count
            let axes = Set(try raw.map { try normalizeAxis($0, rank: rank) })
            guard axes.count == raw.count else { throw InferenceError(.shapeMismatch, "Unsqueeze axes \(raw) repeat") }
            var s: [Int] = []
            var it = x.shape.makeIterator()
            for d in 0..<rank { s.append(axes.contains(d) ? 1 : it.next()!) }
            shape = s
        }
        frame.copy(x, shape: shape, to: outputs[0])
        // Dropout's optional mask output: all true in inference.
        if outputs.count > 1 { frame.slots[outputs[1]].reset(.bool, x.shape); for i in 0..<x.count { frame.slots[outputs[1]].i[i] = 1 } }
    }
}

/// Resolves a `Reshape` shape input (0 = copy, -1 = infer) against the input shape.
func reshapeTarget(_ input: [Int], _ spec: [Int], allowZero: Bool) throws -> [Int] {
    var shape = spec
    var inferAt: Int?
    for (i, d) in spec.enumerated() {
        if d == 0 && !allowZero {
            guard i < input.count else { throw InferenceError(.shapeMismatch, "Reshape: 0 at position \(i) but input \(input) has rank \(input.count)") }
            shape[i] = input[i]
        } else if d == -1 {
            guard inferAt == nil else { throw InferenceError(.shapeMismatch, "Reshape: more than one -1 in \(spec)") }
            inferAt = i
        } else if d < -1 {
            throw InferenceError(.shapeMismatch, "Reshape: invalid dimension \(d) in \(spec)")
        }
    }
    let total = input.reduce(1, *)
    if let at = inferAt {
        let known = shape.enumerated().filter { $0.offset != at }.reduce(1) { $0 * $1.element }
        guard known > 0, total % known == 0 else {
            throw InferenceError(.shapeMismatch, "Reshape: cannot reshape \(input) to \(spec)")
        }
        shape[at] = total / known
    }
    guard try checkedCount(shape, what: "Reshape") == total else {
        throw InferenceError(.shapeMismatch, "Reshape: cannot reshape \(input) (\(total) elements) to \(spec)")
    }
    return shape
}

/// Moves elements by a precomputed source-index map, for any element type.
func gatherElements(_ x: Value, _ map: [Int], shape: [Int], into out: inout Value) {
    out.reset(x.type, shape)
    switch x.type {
    case .float32: x.f.withUnsafeBufferPointer { s in out.f.withUnsafeMutableBufferPointer { d in for (k, j) in map.enumerated() { d[k] = s[j] } } }
    case .float64: for (k, j) in map.enumerated() { out.d[k] = x.d[j] }
    case .string: for (k, j) in map.enumerated() { out.s[k] = x.s[j] }
    default: for (k, j) in map.enumerated() { out.i[k] = x.i[j] }
    }
}

/// `Transpose` with an explicit or default (reversed) permutation.
struct TransposeKernel: Kernel {
    let perm: [Int]?

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try required(frame, inputs, 0)
        let rank = x.shape.count
        let p = perm ?? Array((0..<rank).reversed())
        guard p.count == rank, Set(p) == Set(0..<rank) else {
            throw InferenceError(.shapeMismatch, "Transpose perm \(p) does not permute rank \(rank)")
        }
        let shape = p.map { x.shape[$0] }
        let inStrides = contiguousStrides(x.shape)
        var map = [Int](repeating: 0, count: x.count)
        var index = [Int](repeating: 0, count: rank)
        for k in 0..<map.count {
            var off = 0
            for d in 0..<rank { off += index[d] * inStrides[p[d]] }
            map[k] = off
            var d = rank - 1
            while d >= 0 { index[d] += 1; if index[d] < shape[d] { break }; index[d] = 0; d -= 1 }
        }
        gatherElements(x, map, shape: shape, into: &frame.slots[outputs[0]])
    }
}

/// `Concat` along one axis, for any element type.
struct ConcatKernel: Kernel {
    let axis: Int

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let parts = inputs.compactMap { frame.get($0) }
        guard let first = parts.first else { throw InferenceError(.invalidModel, "Concat has no inputs") }
        let rank = first.shape.count
        let ax = try normalizeAxis(axis, rank: rank)
        for p in parts where p.type != first.type || p.shape.count != rank
            || p.shape.enumerated().contains(where: { $0.offset != ax && $0.element != first.shape[$0.offset] }) {
            throw InferenceError(.shapeMismatch, "Concat inputs \(parts.map(\.shape)) differ outside axis \(axis)")
        }
        var shape = first.shape
        shape[ax] = parts.reduce(0) { $0 + $1.shape[ax] }
        let outer = first.shape[..<ax].reduce(1, *)
        var joined = Value()
        joined.type = first.type
        for o in 0..<outer {
            for p in parts {
                let chunk = p.shape[ax...].reduce(1, *)
                let r = (o * chunk)..<((o + 1) * chunk)
                switch first.type {
                case .float32: joined.f.append(contentsOf: p.f[r])
                case .float64: joined.d.append(contentsOf: p.d[r])
                case .string: joined.s.append(contentsOf: p.s[r])
                default: joined.i.append(contentsOf: p.i[r])
                }
            }
        }
        frame.copy(joined, shape: shape, to: outputs[0])
    }
}

/// `Shape` (with opset-15 `start`/`end`).
struct ShapeKernel: Kernel {
    let start: Int
    let end: Int?

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try required(frame, inputs, 0)
        let r = x.shape.count
        func clamp(_ v: Int) -> Int { min(max(v < 0 ? v + r : v, 0), r) }
        let s = clamp(start), e = clamp(end ?? r)
        let dims = s < e ? x.shape[s..<e].map(Int64.init) : []
        frame.slots[outputs[0]].reset(.int64, [dims.count])
        frame.slots[outputs[0]].i = dims
    }
}

/// `Gather` along an axis with int64/int32 indices (negative indices count from the end).
struct GatherKernel: Kernel {
    let axis: Int

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try required(frame, inputs, 0), idx = try required(frame, inputs, 1)
        guard idx.type.isInteger else { throw InferenceError(.invalidInput, "Gather indices must be integers") }
        let ax = try normalizeAxis(axis, rank: x.shape.count)
        let dim = x.shape[ax], outer = x.shape[..<ax].reduce(1, *), inner = x.shape[(ax + 1)...].reduce(1, *)
        let shape = Array(x.shape[..<ax]) + idx.shape + Array(x.shape[(ax + 1)...])
        var map: [Int] = []
        map.reserveCapacity(outer * idx.i.count * inner)
        let resolved = try idx.i.map { raw -> Int in
            let j = Int(raw) < 0 ? Int(raw) + dim : Int(raw)
            guard j >= 0 && j < dim else { throw InferenceError(.invalidInput, "Gather index \(raw) is out of range for dimension \(dim)") }
            return j
        }
        for o in 0..<outer { for j in resolved { for k in 0..<inner { map.append((o * dim + j) * inner + k) } } }
        gatherElements(x, map, shape: shape, into: &frame.slots[outputs[0]])
    }
}

/// `Cast` between float32, float64, int64, int32, int8, uint8 and bool.
struct CastKernel: Kernel {
    let to: ElementType

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try required(frame, inputs, 0)
        guard x.type != .string else { throw InferenceError(.invalidInput, "Cast from strings is not supported") }
        var y = Value()
        y.shape = x.shape
        y.type = to
        switch to {
        case .float32: y.f = x.asFloats
        case .float64: y.d = x.type == .float64 ? x.d : x.type == .float32 ? x.f.map(Double.init) : x.i.map(Double.init)
        case .bool: y.i = x.type == .float32 ? x.f.map { $0 != 0 ? 1 : 0 } : x.type == .float64 ? x.d.map { $0 != 0 ? 1 : 0 } : x.i.map { $0 != 0 ? 1 : 0 }
        case .int32: y.i = x.asInts.map { Int64(Int32(truncatingIfNeeded: $0)) }
        case .uint8: y.i = x.asInts.map { Int64(UInt8(truncatingIfNeeded: $0)) }
        case .int8: y.i = x.asInts.map { Int64(Int8(truncatingIfNeeded: $0)) }
        default: y.i = x.asInts
        }
        frame.copy(y, shape: x.shape, to: outputs[0])
    }
}
