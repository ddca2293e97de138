import Foundation
import CInferenceKernels
@testable import Inference
import Testing

/// Gemm and MatMul with constant weights (the packed-weight GEMM where the CPU has AVX2 or
/// AVX-512, sgemm elsewhere) against a plain-loop reference: row counts that use every tile
/// height and a tail, column counts off the 32-wide panels, K across the kernel's K slices and
/// its unrolled steps, transB, alpha and beta, every bias shape, fused Relu and a non-fused
/// activation, and shapes large enough to be shared out among threads.
@Suite struct GemmKernelTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let m: Int, k: Int, n: Int
        var transB = false
        var alpha: Float = 1
        var beta: Float = 1
        /// Shape of C; nil for no C.
        var bias: [Int]? = nil
        /// "Relu", "Sigmoid" or nil, as a node after the Gemm.
        var activation: String? = nil
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "batch 1, N off the panel", m: 1, k: 20, n: 37, bias: [37], activation: "Relu"),
        Case(name: "one full tile and a tail, transB", m: 17, k: 33, n: 64, transB: true, bias: [64]),
        Case(name: "every tile height", m: 29, k: 9, n: 40, alpha: 0.5, beta: 2, bias: [29, 1], activation: "Sigmoid"),
        Case(name: "K across slices (1024 and 6), full C", m: 5, k: 1030, n: 33, transB: true, bias: [5, 33], activation: "Relu"),
        Case(name: "no C, scalar-free", m: 3, k: 7, n: 3),
        Case(name: "scalar C", m: 4, k: 5, n: 70, bias: [1]),
        Case(name: "threaded: 40×300×100", m: 40, k: 300, n: 100, transB: true, bias: [100], activation: "Relu"),
        Case(name: "threaded batch 1: 1×784×512", m: 1, k: 784, n: 512, transB: true, bias: [512], activation: "Relu"),
    ]

    @Test(arguments: cases)
    func gemmMatchesReference(_ c: Case) throws {
        var rng = SplitMix(seed: UInt64(c.name.utf8.count))
        let a = (0..<(c.m * c.k)).map { _ in rng.nextFloat() }
        let b = (0..<(c.k * c.n)).map { _ in rng.nextFloat() }
        let bias = c.bias.map { shape in (0..<shape.reduce(1, *)).map { _ in rng.nextFloat() } }
        var builder = ModelBuilder()
        builder.input("a", [Int64(c.m), Int64(c.k)])
        builder.initializer("b", dims: (c.transB ? [c.n, c.k] : [c.k, c.n]).map(Int64.init), floats: b)
        var inputs = ["a", "b"]
        if let shape = c.bias, let bias {
            builder.initializer("c", dims: shape.map(Int64.init), floats: bias)
            inputs.append("c")
        }
        builder.node("Gemm", inputs, [c.activation == nil ? "y" : "g"], attributes: [
            ModelBuilder.int("transB", c.transB ? 1 : 0), Self.float("alpha", c.alpha), Self.float("beta", c.beta)])
        if let act = c.activation { builder.node(act, ["g"], ["y"]) }
        builder.output("y")
        let model = try builder.load()
        let got = try #require(try model.run(["a": try Tensor(shape: [c.m, c.k], floats: a)])["y"])
        #expect(got.shape == [c.m, c.n])

        var want = [Float](repeating: 0, count: c.m * c.n)
        for i in 0..<c.m {
            for j in 0..<c.n {
                var acc: Double = 0
                for p in 0..<c.k { acc += Double(a[i * c.k + p]) * Double(c.transB ? b[j * c.k + p] : b[p * c.n + j]) }
                var y = Double(c.alpha) * acc
                if let shape = c.bias, let bias {
                    let cv: Float = switch shape {
                    case [1]: bias[0]
                    case [c.n]: bias[j]
                    case [c.m, 1]: bias[i]
                    default: bias[i * c.n + j]
                    }
                    y += Double(c.beta) * Double(cv)
                }
                switch c.activation {
                case "Relu": y = max(y, 0)
                case "Sigmoid": y = 1 / (1 + exp(-y))
                default: break
                }
                want[i * c.n + j] = Float(y)
            }
        }
        expectClose(try #require(got.floats), want, atol: 1e-4, c.name)
    }

    /// MatMul with a constant 2-D B, a 3-D A (its leading dimensions fold into rows) and the bias
    /// Add the optimiser fuses into it, then Relu.
    @Test func matMulFoldsLeadingDimensions() throws {
        let (d0, d1, k, n) = (3, 5, 40, 45)
        var rng = SplitMix(seed: 7)
        let a = (0..<(d0 * d1 * k)).map { _ in rng.nextFloat() }
        let b = (0..<(k * n)).map { _ in rng.nextFloat() }
        let bias = (0..<n).map { _ in rng.nextFloat() }
        var builder = ModelBuilder()
        builder.input("a", [Int64(d0), Int64(d1), Int64(k)])
        builder.initializer("b", dims: [Int64(k), Int64(n)], floats: b)
        builder.initializer("bias", dims: [Int64(n)], floats: bias)
        builder.node("MatMul", ["a", "b"], ["mm"])
        builder.node("Add", ["mm", "bias"], ["sum"])
        builder.node("Relu", ["sum"], ["y"])
        builder.output("y")
        let model = try builder.load()
        #expect(model.stepCount == 1)
        let got = try #require(try model.run(["a": try Tensor(shape: [d0, d1, k], floats: a)])["y"])
        #expect(got.shape == [d0, d1, n])
        var want = [Float](repeating: 0, count: d0 * d1 * n)
        for r in 0..<(d0 * d1) {
            for j in 0..<n {
                var acc = Double(bias[j])
                for p in 0..<k { acc += Double(a[r * k + p]) * Double(b[p * n + j]) }
                want[r * n + j] = Float(max(acc, 0))
            }
        }
        expectClose(try #require(got.floats), want, atol: 1e-4, "MatMul")
        // A mismatched inner dimension is a clear error, not a trap.
        let error = inferenceError { _ = try model.run(["a": try Tensor(shape: [1, 1, k + 1], floats: [Float](repeating: 0, count: k + 1))]) }
        #expect(error != nil)
    }

    /// Relu keeps NaN, as onnxruntime does, both as its own step and fused into the packed GEMM:
    /// a NaN input must not come out as a plausible finite answer.
    @Test func reluKeepsNaN() throws {
        var plain = ModelBuilder()
        plain.input("x", [-1, 4])
        plain.node("Relu", ["x"], ["y"])
        plain.output("y")
        let y = try #require(try plain.load().run(["x": try Tensor(shape: [1, 4], floats: [.nan, -1, 2, -0.0])])["y"]?.floats)
        #expect(y[0].isNaN && Array(y[1...]) == [0, 2, 0])

        var rng = SplitMix(seed: 7)
        var fused = ModelBuilder()
        fused.input("a", [-1, 20])
        fused.initializer("b", dims: [20, 37], floats: (0..<(20 * 37)).map { _ in rng.nextFloat() })
        fused.node("Gemm", ["a", "b"], ["g"])
        fused.node("Relu", ["g"], ["y"])
        fused.output("y")
        let model = try fused.load()
        #expect(model.stepCount == 1, "the Relu is fused into the Gemm")
        var a = (0..<40).map { _ in rng.nextFloat() }
        a[3] = .nan
        let out = try #require(try model.run(["a": try Tensor(shape: [2, 20], floats: a)])["y"]?.floats)
        #expect(out[0..<37].allSatisfy { $0.isNaN }, "the row with a NaN")
        #expect(out[37...].allSatisfy { !$0.isNaN && $0 >= 0 }, "the other row")
    }

    private static func float(_ name: String, _ v: Float) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .float
        a.f = v
        return a
    }
}

/// The kernels' worker pool and the packed GEMM's split among threads.
@Suite struct ParallelKernelTests {
    /// Every index runs exactly once, over many calls in a row (workers still spinning from the
    /// previous call must not take tasks of the next) and with more threads than cores.
    @Test func everyTaskRunsOnce() {
        for round in 0..<300 {
            let count = 1 + round % 37, threads = 2 + round % 3
            let counts = UnsafeMutablePointer<Int>.allocate(capacity: count)
            counts.initialize(repeating: 0, count: count)
            defer { counts.deallocate() }
            parallelFor(threads: threads, count: count) { counts[$0] += 1 }
            let tally = (0..<count).map { counts[$0] }
            #expect(tally.allSatisfy { $0 == 1 }, "round \(round): \(tally)")
        }
    }

    /// A row alone (the single-row kernel, over whole groups of panels) gets the same bits as
    /// the same row inside a batch (the tiles), with K across slices and a partial last panel;
    /// and a bias passed as a row gives the bits of the same bias written into C first.
    @Test func aRowsAnswerDoesNotDependOnItsBatch() throws {
        guard PackedMatrix.enabled else { return }
        let (m, k, n) = (3, 1030, 517)
        var rng = SplitMix(seed: 5)
        let a = (0..<(m * k)).map { _ in rng.nextFloat() }
        let bias = (0..<n).map { _ in rng.nextFloat() }
        let b = Value(shape: [k, n], floats: (0..<(k * n)).map { _ in rng.nextFloat() })
        let packed = try #require(PackedMatrix(b, transposed: false, alpha: 1))
        /// The bias either prefilled in C (accumulate) or passed as a row the sums start from.
        func run(rows: Range<Int>, relu: Int32, biasRow: Bool) -> [Float] {
            var y = [Float]()
            for _ in rows { y += biasRow ? [Float](repeating: .nan, count: n) : bias }
            a.withUnsafeBufferPointer { ap in
                packed.panels.withUnsafeBufferPointer { bp in
                    bias.withUnsafeBufferPointer { biasp in
                        y.withUnsafeMutableBufferPointer { yp in
                            outpost_gemm_packed(ap.baseAddress! + rows.lowerBound * k, k, bp.baseAddress!, rows.count, n, k, yp.baseAddress!, n,
                                                biasRow ? biasp.baseAddress! : nil, biasRow ? 0 : 1, relu, 1)
                        }
                    }
                }
            }
            return y
        }
        for relu: Int32 in [0, 1] {
            let batch = run(rows: 0..<m, relu: relu, biasRow: false)
            #expect(run(rows: 0..<m, relu: relu, biasRow: true) == batch, "bias row, relu \(relu)")
            for row in 0..<m {
                let want = Array(batch[(row * n)..<((row + 1) * n)])
                #expect(run(rows: row..<(row + 1), relu: relu, biasRow: false) == want, "row \(row), relu \(relu)")
                #expect(run(rows: row..<(row + 1), relu: relu, biasRow: true) == want, "row \(row), relu \(relu), bias row")
            }
        }
    }

    /// Threads split the panels, or the rows when there are fewer panels than threads (a
    /// 10-column output layer, which also takes the half-width tiles); every element is computed
    /// exactly as on one thread.
    @Test(arguments: [(40, 300, 100), (100, 300, 10), (33, 300, 40)])
    func packedGemmOnTwoThreadsEqualsOne(_ shape: (Int, Int, Int)) throws {
        guard PackedMatrix.enabled else { return }  // sgemm on this CPU: nothing packed
        let (m, k, n) = shape
        var rng = SplitMix(seed: 11)
        let a = (0..<(m * k)).map { _ in rng.nextFloat() }
        let b = Value(shape: [k, n], floats: (0..<(k * n)).map { _ in rng.nextFloat() })
        let packed = try #require(PackedMatrix(b, transposed: false, alpha: 1))
        func run(threads: Int32) -> [Float] {
            var y = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { ap in
                packed.panels.withUnsafeBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer { yp in
                        outpost_gemm_packed(ap.baseAddress!, k, bp.baseAddress!, m, n, k, yp.baseAddress!, n, nil, 0, 1, threads)
                    }
                }
            }
            return y
        }
        let one = run(threads: 1)
        #expect(run(threads: 2) == one)
        #expect(run(threads: 4) == one)
        // And the one-thread answer is the product (ReLU'd).
        var want = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var acc: Double = 0
                for p in 0..<k { acc += Double(a[i * k + p]) * Double(b.f[p * n + j]) }
                want[i * n + j] = Float(max(acc, 0))
            }
        }
        expectClose(one, want, atol: 1e-4, "\(m)×\(k)×\(n)")
    }
}
