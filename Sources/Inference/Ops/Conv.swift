import COpenBLAS

/// 2-D window geometry shared by Conv and the pools (1-D ops use height 1).
struct Window: Sendable {
    var kernel: [Int]      // [kh, kw]
    var strides: [Int]
    var dilations: [Int]
    var pads: [Int]        // [top, left, bottom, right]
    var autoPad: String
    var ceilMode = false

    /// Reads `kernel_shape`, `strides`, `dilations`, `pads`, `auto_pad` for 1-D or 2-D windows.
    init(_ n: Node, kernel: [Int]) throws {
        let rank = kernel.count
        guard rank == 1 || rank == 2 else {
            throw n.fail(.unsupportedAttribute, "only 1-D and 2-D windows are supported (kernel_shape \(kernel))")
        }
        func lift(_ a: [Int], _ fill: Int) -> [Int] { rank == 1 ? [fill] + a : a }
        self.kernel = lift(kernel, 1)
        strides = lift(n.ints("strides") ?? Array(repeating: 1, count: rank), 1)
        dilations = lift(n.ints("dilations") ?? Array(repeating: 1, count: rank), 1)
        let p = n.ints("pads") ?? Array(repeating: 0, count: 2 * rank)
        guard p.count == 2 * rank, strides.count == 2, dilations.count == 2,
              strides.allSatisfy({ $0 > 0 }), dilations.allSatisfy({ $0 > 0 }), p.allSatisfy({ $0 >= 0 }) else {
            throw n.fail(.unsupportedAttribute, "strides/dilations/pads do not match kernel_shape \(kernel)")
        }
        pads = rank == 1 ? [0, p[0], 0, p[1]] : p
        autoPad = n.string("auto_pad", "NOTSET")
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw n.fail(.unsupportedAttribute, "auto_pad '\(autoPad)' is not supported")
        }
        ceilMode = n.int("ceil_mode", 0) != 0
    }

    /// Output size and effective pads for an input of `h`×`w`.
    func output(h: Int, w: Int) throws -> (oh: Int, ow: Int, pads: [Int]) {
        var pads = self.pads
        let inSize = [h, w]
        var outSize = [0, 0]
        for d in 0..<2 {
            let ek = (kernel[d] - 1) * dilations[d] + 1
            switch autoPad {
            case "VALID":
                pads[d] = 0; pads[d + 2] = 0
                outSize[d] = (inSize[d] - ek) / strides[d] + 1
            case "SAME_UPPER", "SAME_LOWER":
                let o = (inSize[d] + strides[d] - 1) / strides[d]
                let total = max(0, (o - 1) * strides[d] + ek - inSize[d])
                let small = total / 2
                pads[d] = autoPad == "SAME_UPPER" ? small : total - small
                pads[d + 2] = total - pads[d]
                outSize[d] = o
            default:
                let span = inSize[d] + pads[d] + pads[d + 2] - ek
                if ceilMode {
                    var o = (span + strides[d] - 1) / strides[d] + 1
                    if (o - 1) * strides[d] >= inSize[d] + pads[d] { o -= 1 }
                    outSize[d] = o
                } else {
                    outSize[d] = span < 0 ? 0 : span / strides[d] + 1
                }
            }
            guard outSize[d] > 0 || inSize[d] == 0 else {
                throw InferenceError(.shapeMismatch, "input \(h)×\(w) is smaller than the window \(kernel) (dilations \(dilations))")
            }
        }
        return (outSize[0], outSize[1], pads)
    }
}

/// `Conv` (NCHW, groups, pads, strides, dilations): im2col into the frame's scratch buffer and one
/// `cblas_sgemm` per image and group; 1×1 stride-1 unpadded convolutions multiply the input
/// directly. Bias and a fused activation are applied in one pass over the output.
struct ConvKernel: Kernel {
    let window: Window
    let group: Int
    let activation: Activation?

    init(_ n: Node, weightShape: [Int]?) throws {
        guard let ws = weightShape, ws.count == 3 || ws.count == 4 else {
            throw n.fail(.unsupportedAttribute, "only 1-D and 2-D convolutions with a known weight shape are supported")
        }
        window = try Window(n, kernel: n.ints("kernel_shape") ?? Array(ws.dropFirst(2)))
        group = n.int("group", 1)
        activation = n.fused
        guard group >= 1, ws[0] % group == 0 else { throw n.fail(.unsupportedAttribute, "group \(group) does not divide \(ws[0]) output channels") }
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
        if let bias, bias.count != m {
            throw InferenceError(.shapeMismatch, "Conv bias has \(bias.count) values for \(m) output channels")
        }
        let (oh, ow, pads) = try window.output(h: h, w: wd)
        let out = outputs[0]
        frame.slots[out].reset(.float32, oneD ? [n, m, ow] : [n, m, oh, ow])
        let mg = m / group, kdim = cg * kh * kw, spatial = oh * ow
        guard n > 0, spatial > 0, mg > 0, kdim > 0 else { return }
        let direct = kh == 1 && kw == 1 && window.strides == [1, 1] && pads.allSatisfy { $0 == 0 }
        // Small images: unroll several into one column matrix so one GEMM covers them.
        let chunk = direct ? 1 : max(1, min(n, (1 << 18) / (kdim * spatial)))
        let colSize = direct ? 0 : kdim * chunk * spatial
        let tmpSize = chunk > 1 ? mg * chunk * spatial : 0
        if frame.scratch.count < colSize + tmpSize { Value.resize(&frame.scratch, colSize + tmpSize, 0) }  // grows only
        let win = window
        let biasValues = bias?.asFloats
        let activation = activation
        x.f.withUnsafeBufferPointer { xp in
            w.f.withUnsafeBufferPointer { wp in
                frame.scratch.withUnsafeMutableBufferPointer { sp in
                    frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                        let y = yp.baseAddress!
                        var first = 0
                        while first < n {
                            let count = min(chunk, n - first)
                            let ld = count * spatial
                            for g in 0..<group {
                                let col: UnsafePointer<Float>
                                if direct {
                                    col = xp.baseAddress! + (first * c + g * cg) * h * wd
                                } else {
                                    for i in 0..<count {
                                        im2col(xp.baseAddress! + ((first + i) * c + g * cg) * h * wd, sp.baseAddress! + i * spatial, ld: ld,
                                               c: cg, h: h, w: wd, kh: kh, kw: kw, oh: oh, ow: ow, win: win, pads: pads)
                                    }
                                    col = UnsafePointer(sp.baseAddress!)
                                }
                                let target = count == 1 ? y + (first * m + g * mg) * spatial : sp.baseAddress! + colSize
                                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(mg), Int32(ld), Int32(kdim), 1,
                                            wp.baseAddress! + g * mg * kdim, Int32(kdim), col, Int32(ld), 0, target, Int32(ld))
                                for i in 0..<count {
                                    for ch in 0..<mg {
                                        let plane = y + ((first + i) * m + g * mg + ch) * spatial
                                        if count > 1 { plane.update(from: target + ch * ld + i * spatial, count: spatial) }
                                        let b = biasValues?[g * mg + ch] ?? 0
                                        if let activation {
                                            activation.applyWithBias(plane, spatial, b)
                                        } else if b != 0 {
                                            for j in 0..<spatial { plane[j] += b }
                                        }
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
