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
        x.f.withUnsafeBufferPointer { xp in
            frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                for p in 0..<planes {
                    let src = p * h * w, dst = p * oh * ow
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let y0 = oy * win.strides[0] - pads[0], x0 = ox * win.strides[1] - pads[1]
                            var acc: Float = isMax ? -.infinity : 0
                            var n = 0
                            if y0 >= 0, x0 >= 0, y0 + (kh - 1) * dy < h, x0 + (kw - 1) * dx < w {
                                // Window fully inside the image: no bounds checks.
                                let base = xp.baseAddress! + src + y0 * w + x0
                                for ky in 0..<kh {
                                    let line = base + ky * dy * w
                                    for kx in 0..<kw {
                                        let v = line[kx * dx]
                                        if isMax { acc = v > acc ? v : acc } else { acc += v }
                                    }
                                }
                                if isMax { yp[dst + oy * ow + ox] = acc; continue }
                                n = kh * kw
                            } else {
                                for ky in 0..<kh {
                                    let iy = y0 + ky * dy
                                    guard iy >= 0 && iy < h else { continue }
                                    for kx in 0..<kw {
                                        let ix = x0 + kx * dx
                                        guard ix >= 0 && ix < w else { continue }
                                        let v = xp[src + iy * w + ix]
                                        if isMax { acc = v > acc ? v : acc } else { acc += v }
                                        n += 1
                                    }
                                }
                            }
                            if !isMax {
                                var denom = n
                                if includePad {
                                    // Count the window positions inside the padded input (not beyond it).
                                    let yEnd = min(y0 + (kh - 1) * win.dilations[0] + 1, h + pads[2])
                                    let xEnd = min(x0 + (kw - 1) * win.dilations[1] + 1, w + pads[3])
                                    denom = ((yEnd - y0 + win.dilations[0] - 1) / win.dilations[0]) *
                                        ((xEnd - x0 + win.dilations[1] - 1) / win.dilations[1])
                                }
                                acc = denom > 0 ? acc / Float(denom) : 0
                            }
                            yp[dst + oy * ow + ox] = acc
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
