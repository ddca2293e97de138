/// `MaxPool` and `AveragePool` over 1-D or 2-D windows (NCHW / NCL).
struct PoolKernel: Kernel {
    let window: Window
    let isMax: Bool
    let countIncludePad: Bool

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        let oneD = window.kernel[0] == 1 && x.shape.count == 3
        guard x.shape.count == (oneD ? 3 : 4) else {
            throw InferenceError(.shapeMismatch, "pooling input \(x.shape) does not match kernel \(window.kernel)")
        }
        let planes = x.shape[0] * x.shape[1], h = oneD ? 1 : x.shape[2], w = x.shape[x.shape.count - 1]
        let (oh, ow, pads) = try window.output(h: h, w: w)
        let out = outputs[0]
        frame.slots[out].reset(.float32, oneD ? [x.shape[0], x.shape[1], ow] : [x.shape[0], x.shape[1], oh, ow])
        let win = window, isMax = isMax, includePad = countIncludePad
        let kh = win.kernel[0], kw = win.kernel[1], dy = win.dilations[0], dx = win.dilations[1]
        let sh = win.strides[0], sw = win.strides[1], pt = pads[0], pl = pads[1], pb = pads[2], pr = pads[3]
        x.f.withUnsafeBufferPointer { xp in
            frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                for p in 0..<planes {
                    let src = xb + p * h * w, dst = yb + p * oh * ow
                    for oy in 0..<oh {
                        let y0 = oy * sh - pt
                        let rowInside = y0 >= 0 && y0 + (kh - 1) * dy < h
                        // Columns whose whole window is inside the image.
                        let lo = rowInside ? min(ow, (pl + sw - 1) / sw) : 0
                        let hi = rowInside ? max(lo, min(ow, (w - 1 - (kw - 1) * dx + pl) >= 0 ? (w - 1 - (kw - 1) * dx + pl) / sw + 1 : 0)) : 0
                        if hi > lo && isMax && kh == 2 && kw == 2 && sh == 2 && sw == 2 && dy == 1 && dx == 1 {
                            // The common 2×2 stride-2 max pool, unrolled.
                            let r0 = src + y0 * w - pl, r1 = r0 + w, row = dst + oy * ow
                            for ox in lo..<hi {
                                let i = ox &* 2
                                let a = r0[i] > r0[i &+ 1] ? r0[i] : r0[i &+ 1]
                                let b = r1[i] > r1[i &+ 1] ? r1[i] : r1[i &+ 1]
                                row[ox] = a > b ? a : b
                            }
                        } else if hi > lo {
                            // Interior: accumulate tap by tap across the row (no bounds checks,
                            // independent lanes instead of one dependency chain per window).
                            let row = dst + oy * ow
                            for ox in lo..<hi { row[ox] = isMax ? -.infinity : 0 }
                            for ky in 0..<kh {
                                let line = src + (y0 + ky * dy) * w - pl
                                for kx in 0..<kw {
                                    let tap = line + kx * dx
                                    if isMax {
                                        for ox in lo..<hi { let v = tap[ox &* sw]; row[ox] = v > row[ox] ? v : row[ox] }
                                    } else {
                                        for ox in lo..<hi { row[ox] += tap[ox &* sw] }
                                    }
                                }
                            }
                            if !isMax {
                                let inv = 1 / Float(kh * kw)
                                for ox in lo..<hi { row[ox] *= inv }
                            }
                        }
                        for ox in 0..<ow where ox < lo || ox >= hi {
                            let x0 = ox * sw - pl
                            var acc: Float = isMax ? -.infinity : 0
                            var n = 0
                            for ky in 0..<kh {
                                let iy = y0 + ky * dy
                                guard iy >= 0 && iy < h else { continue }
                                for kx in 0..<kw {
                                    let ix = x0 + kx * dx
                                    guard ix >= 0 && ix < w else { continue }
                                    let v = src[iy * w + ix]
                                    if isMax { acc = v > acc ? v : acc } else { acc += v }
                                    n += 1
                                }
                            }
                            if !isMax {
                                var denom = n
                                if includePad {
                                    // Count the window positions inside the padded input (not beyond it).
                                    let yEnd = min(y0 + (kh - 1) * dy + 1, h + pb)
                                    let xEnd = min(x0 + (kw - 1) * dx + 1, w + pr)
                                    denom = ((yEnd - y0 + dy - 1) / dy) * ((xEnd - x0 + dx - 1) / dx)
                                }
                                acc = denom > 0 ? acc / Float(denom) : 0
                            }
                            dst[oy * ow + ox] = acc
                        }
                    }
                }
            }
        }
    }
}

/// `GlobalAveragePool` / `GlobalMaxPool`: one value per (image, channel).
struct GlobalPoolKernel: Kernel {
    let isMax: Bool

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        guard x.shape.count >= 3 else {
            throw InferenceError(.shapeMismatch, "global pooling needs N×C×spatial input, got \(x.shape)")
        }
        let planes = x.shape[0] * x.shape[1], inner = x.shape[2...].reduce(1, *)
        let out = outputs[0]
        frame.slots[out].reset(.float32, Array(x.shape[0..<2]) + Array(repeating: 1, count: x.shape.count - 2))
        for p in 0..<planes {
            var acc: Float = isMax ? -.infinity : 0
            for j in 0..<inner {
                let v = x.f[p * inner + j]
                if isMax { acc = max(acc, v) } else { acc += v }
            }
            frame.slots[out].f[p] = isMax ? acc : (inner > 0 ? acc / Float(inner) : 0)
        }
    }
}
