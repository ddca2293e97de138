/// The numpy (multidirectional) broadcast of two shapes.
func broadcastShape(_ a: [Int], _ b: [Int]) throws -> [Int] {
    let rank = max(a.count, b.count)
    var out = [Int](repeating: 1, count: rank)
    for i in 0..<rank {
        let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
        let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
        guard da == db || da == 1 || db == 1 else {
            throw InferenceError(.shapeMismatch, "shapes \(a) and \(b) cannot be broadcast together")
        }
        out[i] = da == 1 ? db : da
    }
    return out
}

/// Element strides of `shape` when broadcast to `target` (0 along broadcast dimensions).
func broadcastStrides(_ shape: [Int], to target: [Int]) -> [Int] {
    var strides = [Int](repeating: 0, count: target.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        let t = i + target.count - shape.count
        strides[t] = shape[i] == 1 ? 0 : s
        s *= shape[i]
    }
    return strides
}

/// Row-major contiguous strides.
func contiguousStrides(_ shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
        strides[i] = s
        s *= shape[i]
    }
    return strides
}

/// Calls `body(outOffset, aOffset, aStep, bOffset, bStep, length)` for every innermost row of the
/// broadcast of shapes `a` and `b` to `out`.
@inline(__always)
func forEachBroadcastRow(_ out: [Int], _ a: [Int], _ b: [Int],
                         _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
    let total = out.reduce(1, *)
    if total == 0 { return }
    if out.isEmpty { body(0, 0, 0, 0, 0, 1); return }
    let sa = broadcastStrides(a, to: out), sb = broadcastStrides(b, to: out)
    let inner = out[out.count - 1]
    let outer = total / inner
    let lastA = sa[out.count - 1], lastB = sb[out.count - 1]
    var index = [Int](repeating: 0, count: out.count)
    var ao = 0, bo = 0
    for row in 0..<outer {
        body(row * inner, ao, lastA, bo, lastB, inner)
        // Advance the multi-index over all but the last dimension.
        var d = out.count - 2
        while d >= 0 {
            index[d] += 1
            ao += sa[d]; bo += sb[d]
            if index[d] < out[d] { break }
            ao -= sa[d] * out[d]; bo -= sb[d] * out[d]
            index[d] = 0
            d -= 1
        }
    }
}

/// out = op(a, b) with broadcasting, for float32 operands.
func binaryFloat(_ a: Value, _ b: Value, into out: inout Value, op: (Float, Float) -> Float) throws {
    let shape = try broadcastShape(a.shape, b.shape)
    out.reset(.float32, shape)
    a.f.withUnsafeBufferPointer { ap in
        b.f.withUnsafeBufferPointer { bp in
            out.f.withUnsafeMutableBufferPointer { yp in
                let x = ap.baseAddress!, z = bp.baseAddress!, y = yp.baseAddress!
                if a.shape == b.shape {
                    for i in 0..<yp.count { y[i] = op(x[i], z[i]) }
                    return
                }
                forEachBroadcastRow(shape, a.shape, b.shape) { o, ao, sa, bo, sb, n in
                    if sa == 1 && sb == 1 {
                        for j in 0..<n { y[o + j] = op(x[ao + j], z[bo + j]) }
                    } else if sa == 1 && sb == 0 {
                        let c = z[bo]
                        for j in 0..<n { y[o + j] = op(x[ao + j], c) }
                    } else {
                        for j in 0..<n { y[o + j] = op(x[ao + j * sa], z[bo + j * sb]) }
                    }
                }
            }
        }
    }
}

/// out = op(a, b) with broadcasting, for any element array (ints, doubles).
func binaryGeneric<T>(_ a: [T], _ aShape: [Int], _ b: [T], _ bShape: [Int], zero: T,
                      op: (T, T) throws -> T) throws -> ([T], [Int]) {
    let shape = try broadcastShape(aShape, bShape)
    var y = [T](repeating: zero, count: shape.reduce(1, *))
    var failure: (any Error)?
    forEachBroadcastRow(shape, aShape, bShape) { o, ao, sa, bo, sb, n in
        for j in 0..<n {
            do { y[o + j] = try op(a[ao + j * sa], b[bo + j * sb]) } catch { failure = error }
        }
    }
    if let failure { throw failure }
    return (y, shape)
}
