import COpenBLAS

/// `Conv` (NCHW / NCL, groups, pads, strides, dilations) with an optional fused activation and an
/// optional fused `MaxPool`. Two algorithms, chosen at load from the weight shape:
/// - **direct** (`DirectConvWeights`): stride 1 and few output channels per group — the anchor
///   CNN's K = 9 and 72 convolutions, where im2col, packing and the scatter of a GEMM's output
///   cost more than the arithmetic. SIMD over output positions, bias in the accumulators.
/// - **im2col + `cblas_sgemm`** otherwise, several small images unrolled into one column matrix so
///   that one GEMM covers them; 1×1 stride-1 unpadded convolutions multiply the input directly.
/// Either way each output plane is finished while it is in cache: activation, then the pool (or a
/// copy into the output tensor).
struct ConvKernel: Kernel {
    let window: Window
    let group: Int
    let activation: Activation?
    let pool: Pooling?
    /// Packed weights when the direct algorithm applies, else nil.
    let direct: DirectConvWeights?

    init(_ n: Node, weight: Value?) throws {
        guard let weight, weight.type == .float32, weight.shape.count == 3 || weight.shape.count == 4 else {
            throw n.fail(.unsupportedAttribute, "only 1-D and 2-D convolutions with constant float weights are supported")
        }
        let ws = weight.shape
        let window = try Window(n, kernel: n.ints("kernel_shape") ?? Array(ws.dropFirst(2)))
        self.window = window
        group = n.int("group", 1)
        activation = n.fused
        pool = n.fusedMaxPool.map { Pooling(window: $0, isMax: true, countIncludePad: false) }
        guard window.rank == ws.count - 2, n.fusedMaxPool.map({ $0.rank == window.rank }) ?? true else {
            throw n.fail(.unsupportedAttribute, "kernel_shape \(window.rank == 1 ? [window.kernel[1]] : window.kernel) does not match the \(ws.count - 2)-D weight \(ws)")
        }
        guard ws.allSatisfy({ $0 > 0 }) else { throw n.fail(.invalidModel, "the weight \(ws) has an empty dimension") }
        guard group >= 1, ws[0] % group == 0 else { throw n.fail(.unsupportedAttribute, "group \(group) does not divide \(ws[0]) output channels") }
        direct = window.strides == [1, 1] && DirectConvWeights.suits(outputChannelsPerGroup: ws[0] / group)
            ? DirectConvWeights(weight, group: group) : nil
    }

    /// The shapes of one run: input, convolution output, pooled output.
    struct Geometry {
        var n, c, h, w, m, cg, kh, kw: Int
        var oh, ow: Int
        var pads: [Int]
        /// The output tensor's plane: the pooled size when a pool is fused, else `oh`×`ow`.
        var poh, pow: Int
        var poolPads: [Int]
        var mg: Int { m / group }
        var kdim: Int { cg * kh * kw }
        let group: Int
    }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0), w = try floatInput(frame, inputs, 1)
        let bias = inputs.count > 2 ? frame.get(inputs[2]) : nil
        let oneD = x.shape.count == 3
        guard x.shape.count == w.shape.count, x.shape.count == 3 || x.shape.count == 4 else {
            throw InferenceError(.shapeMismatch, "Conv input \(x.shape) does not match weight \(w.shape)")
        }
        let n = x.shape[0], c = x.shape[1], h = oneD ? 1 : x.shape[2], wd = x.shape[x.shape.count - 1]
        let m = w.shape[0], cg = w.shape[1], kh = oneD ? 1 : w.shape[2], kw = w.shape[w.shape.count - 1]
        guard c == cg * group, [kh, kw] == window.kernel else {
            throw InferenceError(.shapeMismatch, "Conv input has \(c) channels; weight \(w.shape) with group \(group) expects \(cg * group)")
        }
        if let bias, bias.count != m || bias.asFloats.count != m {
            throw InferenceError(.shapeMismatch, "Conv bias has \(bias.count) \(bias.type) values for \(m) output channels (numbers needed)")
        }
        if let direct, w.shape != direct.shape {
            throw InferenceError(.shapeMismatch, "Conv weight \(w.shape) is not the \(direct.shape) it was loaded with")
        }
        let (oh, ow, pads) = try window.output(h: h, w: wd)
        var g = Geometry(n: n, c: c, h: h, w: wd, m: m, cg: cg, kh: kh, kw: kw, oh: oh, ow: ow, pads: pads,
                         poh: oh, pow: ow, poolPads: [0, 0, 0, 0], group: group)
        if let pool, oh > 0, ow > 0 { (g.poh, g.pow, g.poolPads) = try pool.window.output(h: oh, w: ow) }
        let out = outputs[0]
        frame.slots[out].reset(.float32, oneD ? [n, m, g.pow] : [n, m, g.poh, g.pow])
        guard n > 0, oh * ow > 0, g.mg > 0, g.kdim > 0 else { return }
        let biasValues = bias?.asFloats ?? Array(repeating: 0, count: m)
        if let direct {
            runDirect(direct, &frame, x, biasValues, out, g)
        } else {
            runIm2col(&frame, x, w, biasValues, out, g)
        }
    }

    /// Finishes one convolution output plane `src` (rows `ld` apart, `span` values from the first
    /// to the last output): adds `bias`, applies the activation unless `activate` is false (done
    /// already), then pools it (or copies it) into the output plane `dst`, which may be `src`
    /// itself when there is no pool.
    func finish(_ src: UnsafeMutablePointer<Float>, ld: Int, span: Int, bias: Float, activate: Bool = true,
                into dst: UnsafeMutablePointer<Float>, _ g: Geometry) {
        if activate, let activation {
            activation.applyWithBias(src, span, bias)
        } else if bias != 0 {
            for j in 0..<span { src[j] += bias }
        }
        if let pool {
            pool.plane(src, ld: ld, h: g.oh, w: g.ow, dst, oh: g.poh, ow: g.pow, pads: g.poolPads)
        } else if src != dst {
            for oy in 0..<g.oh { (dst + oy * g.ow).update(from: src + oy * ld, count: g.ow) }
        }
    }

    /// im2col + one `cblas_sgemm` per chunk of images and group.
    private func runIm2col(_ frame: inout Frame, _ x: Value, _ w: Value, _ biasValues: [Float], _ out: Int, _ g: Geometry) {
        let spatial = g.oh * g.ow, kdim = g.kdim, mg = g.mg, n = g.n
        // 1×1, stride 1, unpadded: the input planes are the column matrix.
        let multiplyInput = g.kh == 1 && g.kw == 1 && window.strides == [1, 1] && g.pads.allSatisfy { $0 == 0 }
        // Small images: unroll several into one column matrix so one GEMM covers them.
        let chunk = multiplyInput ? 1 : max(1, min(n, (1 << 18) / (kdim * spatial)))
        let colSize = multiplyInput ? 0 : kdim * chunk * spatial
        // The GEMM writes the output tensor itself only for one image without a pool.
        let inPlace = chunk == 1 && pool == nil
        let tmpSize = inPlace ? 0 : mg * chunk * spatial
        if frame.scratch.count < colSize + tmpSize { Value.resize(&frame.scratch, colSize + tmpSize, 0) }  // grows only
        let win = window
        x.f.withUnsafeBufferPointer { xp in
            w.f.withUnsafeBufferPointer { wp in
                frame.scratch.withUnsafeMutableBufferPointer { sp in
                    frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                        let y = yp.baseAddress!, plane = g.poh * g.pow
                        var first = 0
                        while first < n {
                            let count = min(chunk, n - first)
                            let ld = count * spatial
                            for gi in 0..<group {
                                let col: UnsafePointer<Float>
                                if multiplyInput {
                                    col = xp.baseAddress! + (first * g.c + gi * g.cg) * g.h * g.w
                                } else {
                                    for i in 0..<count {
                                        im2col(xp.baseAddress! + ((first + i) * g.c + gi * g.cg) * g.h * g.w, sp.baseAddress! + i * spatial,
                                               ld: ld, c: g.cg, h: g.h, w: g.w, kh: g.kh, kw: g.kw, oh: g.oh, ow: g.ow, win: win, pads: g.pads)
                                    }
                                    col = UnsafePointer(sp.baseAddress!)
                                }
                                let target = inPlace ? y + (first * g.m + gi * mg) * spatial : sp.baseAddress! + colSize
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(mg), Int32(ld), Int32(kdim), 1,
                                            wp.baseAddress! + gi * mg * kdim, Int32(kdim), col, Int32(ld), 0, target, Int32(ld))
                                for i in 0..<count {
                                    for ch in 0..<mg {
                                        let oc = gi * mg + ch
                                        finish(target + ch * ld + i * spatial, ld: g.ow, span: spatial, bias: biasValues[oc],
                                               into: y + ((first + i) * g.m + oc) * plane, g)
                                    }
                                }
                            }
                            first += count
                        }
                    }
                }
            }
        }
    }
}

/// Unrolls the receptive fields of one image/group into rows of a column matrix (row stride
/// `ld`): row (channel, ky, kx) holds the input values under that kernel tap for every output
/// position, zero where the tap falls into padding.
func im2col(_ x: UnsafePointer<Float>, _ col: UnsafeMutablePointer<Float>, ld: Int, c: Int, h: Int, w: Int, kh: Int, kw: Int,
            oh: Int, ow: Int, win: Window, pads: [Int]) {
    let sh = win.strides[0], sw = win.strides[1], dh = win.dilations[0], dw = win.dilations[1]
    let pt = pads[0], pl = pads[1]
    var row = 0
    for ch in 0..<c {
        let plane = x + ch * h * w
        for ky in 0..<kh {
            for kx in 0..<kw {
                let dst = col + row * ld
                let off = kx * dw - pl
                // Output columns whose input column ox*sw + off lies inside [0, w).
                let lo = off >= 0 ? 0 : min(ow, (-off + sw - 1) / sw)
                let hi = off > w - 1 ? lo : max(lo, min(ow, (w - 1 - off) / sw + 1))
                for oy in 0..<oh {
                    let iy = oy * sh - pt + ky * dh
                    let line = dst + oy * ow
                    if iy < 0 || iy >= h {
                        line.update(repeating: 0, count: ow)
                        continue
                    }
                    if lo > 0 { line.update(repeating: 0, count: lo) }
                    if hi < ow { (line + hi).update(repeating: 0, count: ow - hi) }
                    let src = plane + iy * w + off
                    if sw == 1 {
                        (line + lo).update(from: src + lo, count: hi - lo)
                    } else {
                        for ox in lo..<hi { line[ox] = src[ox * sw] }
                    }
                }
                row += 1
            }
        }
    }
}
