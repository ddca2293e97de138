import Foundation
@testable import Inference
import Testing

/// Conv (direct and im2col algorithms) with a fused Relu and MaxPool, against a plain-loop
/// reference: every path of `ConvKernel` (the wide SIMD kernels, the short-span and scalar ones,
/// padding, dilations, groups, 1-D, im2col with a fused pool) on shapes that select it.
@Suite struct ConvKernelTests {
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let x: [Int]       // N, C, (H,) W
        let w: [Int]       // M, C/group, (kH,) kW
        var group = 1
        var pads: [Int]? = nil
        var strides: [Int]? = nil
        var dilations: [Int]? = nil
        var relu = true
        /// MaxPool kernel, strides, pads, ceil_mode.
        var pool: (kernel: [Int], strides: [Int], pads: [Int], ceil: Bool)? = ([2, 2], [2, 2], [0, 0, 0, 0], false)
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        Case(name: "anchor-like 1→8 3×3, relu, pool 2", x: [3, 1, 12, 12], w: [8, 1, 3, 3]),
        Case(name: "groups, pads, dilations, pool 3 stride 2 ceil", x: [2, 4, 9, 7], w: [6, 2, 3, 3], group: 2,
             pads: [1, 2, 1, 0], dilations: [2, 1], pool: ([3, 3], [2, 2], [1, 1, 1, 1], true)),
        Case(name: "short span, no relu, pool stride 1", x: [2, 3, 4, 4], w: [5, 3, 3, 3], relu: false, pool: ([2, 2], [1, 1], [0, 0, 0, 0], false)),
        Case(name: "one output position", x: [2, 2, 3, 3], w: [3, 2, 3, 3], pool: ([1, 1], [1, 1], [0, 0, 0, 0], false)),
        Case(name: "40 channels (im2col), pool 2", x: [2, 3, 8, 8], w: [40, 3, 3, 3]),
        Case(name: "stride 2 (im2col), pads", x: [3, 2, 11, 9], w: [4, 2, 3, 3], pads: [1, 1, 1, 1], strides: [2, 2]),
        Case(name: "1-D, pool 2", x: [2, 3, 20], w: [4, 3, 5], pads: [2, 1], pool: ([2], [2], [0, 0], false)),
        Case(name: "no pool, padded", x: [2, 3, 10, 10], w: [9, 3, 3, 3], pads: [1, 1, 1, 1], pool: nil),
        // The pool's vector steps: 13 columns (a full step and an overlapping one), 5 of an odd
        // 11 (the last input column unread), 3 (too few for a vector); 6 and 12 channels leave
        // part of a channel block empty.
        Case(name: "28×28 → 26 → pool 13, 6 channels", x: [2, 1, 28, 28], w: [6, 1, 3, 3]),
        Case(name: "13×13 → 11 → pool 5, 12 channels", x: [2, 3, 13, 13], w: [12, 3, 3, 3]),
        Case(name: "8×8 → 6 → pool 3", x: [2, 2, 8, 8], w: [3, 2, 3, 3]),
        Case(name: "pool 2 stride 2 with pads", x: [2, 2, 10, 12], w: [4, 2, 3, 3], pool: ([2, 2], [2, 2], [1, 1, 1, 1], false)),
    ]

    @Test(arguments: cases)
    func matchesReference(_ c: Case) throws {
        var rng = SplitMix(seed: UInt64(c.name.utf8.count))
        let x = (0..<c.x.reduce(1, *)).map { _ in rng.nextFloat() }
        let w = (0..<c.w.reduce(1, *)).map { _ in rng.nextFloat() }
        let bias = (0..<c.w[0]).map { _ in rng.nextFloat() }
        let model = try build(c, w: w, bias: bias).load()
        // Conv, Relu and MaxPool run as one step.
        #expect(model.stepCount == 1)
        let got = try #require(try model.run(["x": try Tensor(shape: c.x, floats: x)])["y"])
        let (shape, want) = reference(c, x: x, w: w, bias: bias)
        #expect(got.shape == shape)
        expectClose(try #require(got.floats), want, c.name)
    }

    /// A NaN input reaches the outputs whose window covers it through the fused Relu (direct and
    /// im2col kernels), as in onnxruntime, instead of being clamped to 0. (No pool: which value a
    /// max pool keeps from a NaN is an implementation detail.)
    @Test(arguments: [cases[0], cases[4], cases[7]].map { c -> Case in
        var c = c
        c.pool = nil
        return c
    })
    func reluKeepsNaN(_ c: Case) throws {
        var rng = SplitMix(seed: 3)
        var x = (0..<c.x.reduce(1, *)).map { _ in rng.nextFloat() }
        x[0] = .nan
        let w = (0..<c.w.reduce(1, *)).map { _ in rng.nextFloat() }
        let bias = (0..<c.w[0]).map { _ in rng.nextFloat() }
        let got = try #require(try build(c, w: w, bias: bias).load().run(["x": try Tensor(shape: c.x, floats: x)])["y"])
        let values = try #require(got.floats)
        let plane = got.shape.dropFirst(2).reduce(1, *)
        // Image 0's first output position of every channel reads x[0]; image 1 has no NaN.
        for channel in 0..<c.w[0] { #expect(values[channel * plane].isNaN, "\(c.name): channel \(channel)") }
        let perImage = values.count / c.x[0]
        #expect(values[perImage...].allSatisfy { !$0.isNaN }, "\(c.name)")
    }

    /// A batch large enough to be shared out among threads: each thread convolves its own
    /// images with its own scratch (zero borders included).
    @Test func imagesSharedAmongThreads() throws {
        BLASRuntime.setThreadCount(2)
        try matchesReference(Case(name: "threaded batch of 5, padded", x: [5, 3, 30, 30], w: [8, 3, 3, 3], pads: [1, 1, 1, 1]))
    }

    private func build(_ c: Case, w: [Float], bias: [Float]) -> ModelBuilder {
        var b = ModelBuilder()
        b.input("x", c.x.map(Int64.init))
        b.initializer("w", dims: c.w.map(Int64.init), floats: w)
        b.initializer("b", dims: [Int64(c.w[0])], floats: bias)
        var attrs = [ModelBuilder.ints("kernel_shape", c.w.dropFirst(2).map(Int64.init)), ModelBuilder.int("group", Int64(c.group))]
        if let p = c.pads { attrs.append(ModelBuilder.ints("pads", p.map(Int64.init))) }
        if let s = c.strides { attrs.append(ModelBuilder.ints("strides", s.map(Int64.init))) }
        if let d = c.dilations { attrs.append(ModelBuilder.ints("dilations", d.map(Int64.init))) }
        // Conv → [Relu] → [MaxPool], the last one writing "y".
        let chain = ["conv"] + (c.relu ? ["act"] : []) + (c.pool != nil ? ["pooled"] : [])
        func name(_ v: String) -> String { v == chain.last ? "y" : v }
        b.node("Conv", ["x", "w", "b"], [name("conv")], attributes: attrs)
        if c.relu { b.node("Relu", ["conv"], [name("act")]) }
        if let p = c.pool {
            b.node("MaxPool", [c.relu ? "act" : "conv"], ["y"], attributes: [
                ModelBuilder.ints("kernel_shape", p.kernel.map(Int64.init)), ModelBuilder.ints("strides", p.strides.map(Int64.init)),
                ModelBuilder.ints("pads", p.pads.map(Int64.init)), ModelBuilder.int("ceil_mode", p.ceil ? 1 : 0)])
        }
        b.output("y")
        return b
    }

    /// Plain loops over the ONNX definitions, 1-D treated as height 1.
    private func reference(_ c: Case, x: [Float], w: [Float], bias: [Float]) -> ([Int], [Float]) {
        let oneD = c.x.count == 3
        let n = c.x[0], ch = c.x[1], h = oneD ? 1 : c.x[2], wd = c.x.last!
        let m = c.w[0], cg = c.w[1], kh = oneD ? 1 : c.w[2], kw = c.w.last!
        let pads = oneD ? [0, c.pads?[0] ?? 0, 0, c.pads?[1] ?? 0] : (c.pads ?? [0, 0, 0, 0])
        let st = oneD ? [1, c.strides?[0] ?? 1] : (c.strides ?? [1, 1])
        let dl = oneD ? [1, c.dilations?[0] ?? 1] : (c.dilations ?? [1, 1])
        let oh = (h + pads[0] + pads[2] - (kh - 1) * dl[0] - 1) / st[0] + 1
        let ow = (wd + pads[1] + pads[3] - (kw - 1) * dl[1] - 1) / st[1] + 1
        let mg = m / c.group
        var y = [Float](repeating: 0, count: n * m * oh * ow)
        for i in 0..<n { for o in 0..<m { for oy in 0..<oh { for ox in 0..<ow {
            var acc = bias[o]
            let g = o / mg
            for ci in 0..<cg { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * st[0] - pads[0] + ky * dl[0], ix = ox * st[1] - pads[1] + kx * dl[1]
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                acc += x[((i * ch + g * cg + ci) * h + iy) * wd + ix] * w[((o * cg + ci) * kh + ky) * kw + kx]
            } } }
            y[((i * m + o) * oh + oy) * ow + ox] = c.relu ? max(acc, 0) : acc
        } } } }
        guard let p = c.pool else { return (oneD ? [n, m, ow] : [n, m, oh, ow], y) }
        let pk = oneD ? [1, p.kernel[0]] : p.kernel, ps = oneD ? [1, p.strides[0]] : p.strides
        let pp = oneD ? [0, p.pads[0], 0, p.pads[1]] : p.pads
        func size(_ len: Int, _ d: Int) -> Int {
            let span = len + pp[d] + pp[d + 2] - pk[d]
            var o = (p.ceil ? (span + ps[d] - 1) : span) / ps[d] + 1
            if p.ceil && (o - 1) * ps[d] >= len + pp[d] { o -= 1 }
            return o
        }
        let ph = size(oh, 0), pw = size(ow, 1)
        var z = [Float](repeating: 0, count: n * m * ph * pw)
        for plane in 0..<(n * m) { for py in 0..<ph { for px in 0..<pw {
            var best = -Float.infinity
            for ky in 0..<pk[0] { for kx in 0..<pk[1] {
                let iy = py * ps[0] - pp[0] + ky, ix = px * ps[1] - pp[1] + kx
                guard iy >= 0, iy < oh, ix >= 0, ix < ow else { continue }
                best = max(best, y[(plane * oh + iy) * ow + ix])
            } }
            z[(plane * ph + py) * pw + px] = best
        } } }
        return (oneD ? [n, m, pw] : [n, m, ph, pw], z)
    }
}

/// A small deterministic generator for test data (values in [-1, 1)).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func nextFloat() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(z >> 40) / Float(1 << 23) - 1
    }
}
