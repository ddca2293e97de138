import CInferenceKernels
import COpenBLAS
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `Gemm`: Y = alpha·op(A)·op(B) + beta·C, with an optional fused activation. A constant B (a
/// weight matrix) is packed at load for the engine's own GEMM (``PackedMatrix``) where the CPU
/// has AVX2 or AVX-512; otherwise batch 1 goes to `cblas_sgemv` on B's native layout and larger
/// batches to `cblas_sgemm`.
struct GemmKernel: Kernel {
    let alpha: Float
    let beta: Float
    let transA: Bool
    let transB: Bool
    let activation: Activation?
    /// alpha·op(B), packed, when B is a constant and A is not transposed.
    let packed: PackedMatrix?

    init(_ n: Node, weight: Value? = nil) {
        alpha = n.float("alpha", 1)
        beta = n.float("beta", 1)
        transA = n.int("transA", 0) != 0
        transB = n.int("transB", 0) != 0
        activation = n.fused
        packed = transA ? nil : PackedMatrix(weight, transposed: transB, alpha: alpha)
    }

    var packedInput: Int? { packed == nil ? nil : 1 }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let a = try floatInput(frame, inputs, 0)
        if let packed { return try runPacked(packed, a, &frame, inputs, outputs) }
        let b = try floatInput(frame, inputs, 1)
        guard a.shape.count == 2, b.shape.count == 2 else {
            throw InferenceError(.shapeMismatch, "Gemm needs 2-D A and B, got \(a.shape) and \(b.shape)")
        }
        let m = transA ? a.shape[1] : a.shape[0], k = transA ? a.shape[0] : a.shape[1]
        let kb = transB ? b.shape[1] : b.shape[0], n = transB ? b.shape[0] : b.shape[1]
        guard k == kb else {
            throw InferenceError(.shapeMismatch, "Gemm inner dimensions differ: A \(a.shape) and B \(b.shape) (transA=\(transA), transB=\(transB))")
        }
        let c = inputs.count > 2 ? frame.get(inputs[2]) : nil
        let out = outputs[0]
        frame.slots[out].reset(.float32, [m, n])
        var betaUsed: Float = 0
        if let c, beta != 0 {
            try fillBias(c, into: &frame.slots[out].f, m: m, n: n)
            betaUsed = beta
        }
        frame.slots[out].f.withUnsafeMutableBufferPointer { y in
            a.f.withUnsafeBufferPointer { ap in
                b.f.withUnsafeBufferPointer { bp in
                    multiply(ap.baseAddress!, bp.baseAddress!, y.baseAddress!, m: m, n: n, k: k, beta: betaUsed)
                }
            }
            activation?.apply(y)
        }
    }

    private func runPacked(_ packed: PackedMatrix, _ a: Value, _ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        guard a.shape.count == 2 else { throw InferenceError(.shapeMismatch, "Gemm needs a 2-D A, got \(a.shape)") }
        let m = a.shape[0], n = packed.n
        guard a.shape[1] == packed.k else {
            throw InferenceError(.shapeMismatch, "Gemm inner dimensions differ: A \(a.shape) and B [\(packed.k), \(n)] (transB=\(transB) applied)")
        }
        let out = outputs[0]
        frame.slots[out].reset(.float32, [m, n])
        var accumulate = false
        var row: [Float]? = nil
        if let c = inputs.count > 2 ? frame.get(inputs[2]) : nil, beta != 0 {
            row = beta == 1 ? biasRow(c, n: n) : nil
            if row == nil {
                try fillBias(c, into: &frame.slots[out].f, m: m, n: n)
                if beta != 1 { frame.slots[out].f.withUnsafeMutableBufferPointer { y in for i in y.indices { y[i] *= beta } } }
                accumulate = true
            }
        }
        packed.multiply(a, rows: m, into: &frame.slots[out].f, accumulate: accumulate, bias: row, activation: activation)
    }

    private func multiply(_ ap: UnsafePointer<Float>, _ bp: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                          m: Int, n: Int, k: Int, beta: Float) {
        if m == 0 || n == 0 { return }
        if m == 1 && !transA {
            // y[n] = op(B)ᵀ·a : B stored [n,k] (transB) is a plain matrix-vector product.
            cblas_sgemv(CblasRowMajor, transB ? CblasNoTrans : CblasTrans,
                        Int32(transB ? n : k), Int32(transB ? k : n), alpha, bp, Int32(transB ? k : n),
                        ap, 1, beta, y, 1)
        } else {
            cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                        Int32(m), Int32(n), Int32(k), alpha, ap, Int32(transA ? m : k), bp, Int32(transB ? k : n),
                        beta, y, Int32(n))
        }
    }
}

/// A float bias of shape [N] or [1,N], the same for every row, which the packed GEMM starts its
/// sums from without copying it; nil for any other bias (a scalar, a per-row bias, another
/// element type), which the caller writes into the output first.
func biasRow(_ c: Value, n: Int) -> [Float]? {
    c.type == .float32 && c.f.count == n && c.shape.drop(while: { $0 == 1 }).elementsEqual(CollectionOfOne(n)) ? c.f : nil
}

/// Broadcasts a bias (scalar, [N], [1,N], [M,1] or [M,N]) into an M×N output.
func fillBias(_ c: Value, into y: inout [Float], m: Int, n: Int) throws {
    let cf = c.type == .float32 ? c.f : c.asFloats
    guard !cf.isEmpty, cf.count == c.count else {
        throw InferenceError(.shapeMismatch, "the bias \(c.shape) must hold numbers (\(c.type))")
    }
    let shape = Array(c.shape.drop(while: { $0 == 1 }))
    try y.withUnsafeMutableBufferPointer { p in
        if cf.count == 1 {
            p.update(repeating: cf[0])
        } else if shape == [n] {
            cf.withUnsafeBufferPointer { cp in
                for r in 0..<m { (p.baseAddress! + r * n).update(from: cp.baseAddress!, count: n) }
            }
        } else if shape == [m, 1] {
            for r in 0..<m { (p.baseAddress! + r * n).update(repeating: cf[r], count: n) }
        } else if shape == [m, n] {
            _ = p.update(fromContentsOf: cf)
        } else {
            throw InferenceError(.shapeMismatch, "bias of shape \(c.shape) does not broadcast to [\(m), \(n)]")
        }
    }
}

/// `MatMul` with numpy semantics (1-D promotion, broadcast batch dimensions), plus an optional
/// fused bias (input 2, from a following `Add`) and activation. A constant 2-D B is packed at
/// load as for ``GemmKernel``.
struct MatMulKernel: Kernel {
    let activation: Activation?
    let packed: PackedMatrix?

    init(_ n: Node, weight: Value? = nil) {
        activation = n.fused
        packed = PackedMatrix(weight, transposed: false, alpha: 1)
    }

    var packedInput: Int? { packed == nil ? nil : 1 }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let a = try floatInput(frame, inputs, 0)
        if let packed { return try runPacked(packed, a, &frame, inputs, outputs) }
        let b = try floatInput(frame, inputs, 1)
        guard !a.shape.isEmpty, !b.shape.isEmpty else {
            throw InferenceError(.shapeMismatch, "MatMul does not take scalars (\(a.shape), \(b.shape))")
        }
        let aShape = a.shape.count == 1 ? [1, a.shape[0]] : a.shape
        let bShape = b.shape.count == 1 ? [b.shape[0], 1] : b.shape
        let m = aShape[aShape.count - 2], k = aShape[aShape.count - 1]
        let kb = bShape[bShape.count - 2], n = bShape[bShape.count - 1]
        guard k == kb else {
            throw InferenceError(.shapeMismatch, "MatMul inner dimensions differ: \(a.shape) × \(b.shape)")
        }
        let aBatch = Array(aShape.dropLast(2)), bBatch = Array(bShape.dropLast(2))
        let batch = try broadcastShape(aBatch, bBatch)
        var outShape = batch + [m, n]
        if a.shape.count == 1 { outShape.remove(at: outShape.count - 2) }
        if b.shape.count == 1 { outShape.removeLast() }
        let out = outputs[0]
        frame.slots[out].reset(.float32, outShape)
        let bias = inputs.count > 2 ? frame.get(inputs[2]) : nil
        if bShape.count == 2 {
            // Fold A's batch dimensions into M: one GEMM (or GEMV) call.
            let rows = aShape.dropLast().reduce(1, *)
            var beta: Float = 0
            if let bias { try fillBias(bias, into: &frame.slots[out].f, m: rows, n: n); beta = 1 }
            frame.slots[out].f.withUnsafeMutableBufferPointer { y in
                a.f.withUnsafeBufferPointer { ap in
                    b.f.withUnsafeBufferPointer { bp in
                        guard rows > 0, n > 0 else { return }
                        if rows == 1 {
                            cblas_sgemv(CblasRowMajor, CblasTrans, Int32(k), Int32(n), 1, bp.baseAddress!, Int32(n),
                                        ap.baseAddress!, 1, beta, y.baseAddress!, 1)
                        } else {
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(rows), Int32(n), Int32(k), 1,
                                        ap.baseAddress!, Int32(k), bp.baseAddress!, Int32(n), beta, y.baseAddress!, Int32(n))
                        }
                    }
                }
            }
        } else {
            let count = batch.reduce(1, *)
            let aStrides = broadcastStrides(aBatch, to: batch), bStrides = broadcastStrides(bBatch, to: batch)
            frame.slots[out].f.withUnsafeMutableBufferPointer { y in
                a.f.withUnsafeBufferPointer { ap in
                    b.f.withUnsafeBufferPointer { bp in
                        for idx in 0..<count {
                            var rem = idx, ao = 0, bo = 0
                            for d in stride(from: batch.count - 1, through: 0, by: -1) {
                                let i = rem % batch[d]; rem /= batch[d]
                                ao += i * aStrides[d]; bo += i * bStrides[d]
                            }
                            guard m > 0, n > 0, k > 0 else { continue }
                            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k), 1,
                                        ap.baseAddress! + ao * m * k, Int32(k), bp.baseAddress! + bo * k * n, Int32(n),
                                        0, y.baseAddress! + idx * m * n, Int32(n))
                        }
                    }
                }
            }
            if let bias {
                let tmp = frame.slots[out]
                try binaryFloat(tmp, bias, into: &frame.slots[out], op: +)
            }
        }
        if let activation { frame.slots[out].f.withUnsafeMutableBufferPointer { activation.apply($0) } }
    }

    /// A times the packed 2-D B: A's leading dimensions fold into M.
    private func runPacked(_ packed: PackedMatrix, _ a: Value, _ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        guard !a.shape.isEmpty else { throw InferenceError(.shapeMismatch, "MatMul does not take scalars (\(a.shape))") }
        let k = a.shape[a.shape.count - 1], n = packed.n
        guard k == packed.k else {
            throw InferenceError(.shapeMismatch, "MatMul inner dimensions differ: \(a.shape) × [\(packed.k), \(n)]")
        }
        let rows = a.shape.count == 1 ? 1 : a.shape.dropLast().reduce(1, *)
        let out = outputs[0]
        frame.slots[out].reset(.float32, a.shape.count == 1 ? [n] : Array(a.shape.dropLast()) + [n])
        var accumulate = false
        var row: [Float]? = nil
        if let bias = inputs.count > 2 ? frame.get(inputs[2]) : nil {
            row = biasRow(bias, n: n)
            if row == nil {
                try fillBias(bias, into: &frame.slots[out].f, m: rows, n: n)
                accumulate = true
            }
        }
        packed.multiply(a, rows: rows, into: &frame.slots[out].f, accumulate: accumulate, bias: row, activation: activation)
    }
}

/// A constant right-hand matrix (alpha folded in) packed once, at load, in
/// `outpost_gemm_pack`'s panels, for the engine's GEMM in `CInferenceKernels`: OpenBLAS packs
/// B again on every call, and under the `OPENBLAS_CORETYPE` these hosts preset it runs AVX2
/// kernels on AVX-512 CPUs. Nil where the CPU has neither AVX2 nor AVX-512 (sgemm then runs),
/// or when `OUTPOST_GEMM=openblas` is set (to compare the two).
struct PackedMatrix: Sendable {
    let k: Int
    let n: Int
    let panels: [Float]

    /// Whether constant matrices are packed on this host.
    static let enabled: Bool = {
        outpost_gemm_packed_available() != 0 && getenv("OUTPOST_GEMM").map { String(cString: $0) } != "openblas"
    }()

    /// See ``KernelRuntime/weightGEMM``.
    static var kernelName: String { enabled ? "packed \(String(cString: outpost_kernel_isa_name()))" : "openblas" }

    /// Packs `b` (K×N, or N×K when `transposed`); nil when it is not a 2-D float matrix or
    /// packing is off.
    init?(_ b: Value?, transposed: Bool, alpha: Float) {
        guard Self.enabled, let b, b.type == .float32, b.shape.count == 2, b.count > 0 else { return nil }
        let k = transposed ? b.shape[1] : b.shape[0], n = transposed ? b.shape[0] : b.shape[1]
        let count = outpost_gemm_packed_count(k, n)
        panels = [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            b.f.withUnsafeBufferPointer { src in
                outpost_gemm_pack(src.baseAddress!, k, n, transposed ? 1 : 0, alpha, buffer.baseAddress!)
            }
            initialized = count
        }
        self.k = k
        self.n = n
    }

    /// y[rows×n] = a[rows×k]·B, plus `bias` (n floats, added to every row) when given, else plus
    /// y's contents when `accumulate`; then the activation (a Relu is applied by the kernel as it
    /// stores). A bias row costs no pass over y: the kernel starts its sums from it. `y` must
    /// hold rows×n floats. With more than one OpenBLAS thread configured
    /// (``BLASRuntime/threadCount``, 1 in the daemon) and at least 2¹⁸ multiply-adds, the panels
    /// are shared out among that many threads.
    func multiply(_ a: Value, rows: Int, into y: inout [Float], accumulate: Bool, bias: [Float]? = nil, activation: Activation?) {
        guard rows > 0 else { return }
        let relu = activation == .relu
        y.withUnsafeMutableBufferPointer { yp in
            a.f.withUnsafeBufferPointer { ap in
                panels.withUnsafeBufferPointer { bp in
                    func run(_ bias: UnsafePointer<Float>?) {
                        outpost_gemm_packed(ap.baseAddress!, k, bp.baseAddress!, rows, n, k, yp.baseAddress!, n, bias,
                                            accumulate ? 1 : 0, relu ? 1 : 0, Int32(BLASRuntime.threadCount))
                    }
                    if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
                }
            }
            if !relu { activation?.apply(yp) }
        }
    }
}
