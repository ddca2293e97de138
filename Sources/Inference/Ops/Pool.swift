import CInferenceKernels

/// `MaxPool` and `AveragePool` over 1-D or 2-D windows (NCHW / NCL).
struct PoolKernel: Kernel {
    let pooling: Pooling

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        let oneD = pooling.window.rank == 1
        guard x.shape.count == (oneD ? 3 : 4) else {
            throw InferenceError(.shapeMismatch, "pooling input \(x.shape) does not match kernel \(pooling.window.kernel)")
        }
        let planes = x.shape[0] * x.shape[1], h = oneD ? 1 : x.shape[2], w = x.shape[x.shape.count - 1]
        let (oh, ow, pads) = try pooling.window.output(h: h, w: w)
        let out = outputs[0]
        frame.slots[out].reset(.float32, oneD ? [x.shape[0], x.shape[1], ow] : [x.shape[0], x.shape[1], oh, ow])
        let pooling = pooling
        x.f.withUnsafeBufferPointer { xp in
            frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                guard let xb = xp.baseAddress, let yb = yp.baseAddress else { return }
                for p in 0..<planes {
                    pooling.plane(xb + p * h * w, ld: w, h: h, w: w, yb + p * oh * ow, oh: oh, ow: ow, pads: pads)
                }
            }
        }
    }
}

/// One max or average pooling, applied plane by plane: by `PoolKernel`, and by `ConvKernel` to a
/// convolution's output while it is still in cache (a `MaxPool` fused by the optimiser).
struct Pooling: Sendable {
    let window: Window
    let isMax: Bool
    let countIncludePad: Bool
    /// A 2×2 max pool with stride 2 and no dilation: interior rows run `outpost_maxpool2x2`.
    private let max2x2: Bool

    init(window: Window, isMax: Bool, countIncludePad: Bool) {
        self.window = window
        self.isMax = isMax
        self.countIncludePad = countIncludePad
        max2x2 = isMax && window.kernel == [2, 2] && window.strides == [2, 2] && window.dilations == [1, 1]
    }

    /// The rows and columns of an `h`×`w` plane that the windows of an `oh`×`ow` output read,
    /// counted from the first (at least one of each): the pool never looks past them.
    func extent(h: Int, w: Int, oh: Int, ow: Int, pads: [Int]) -> (rows: Int, cols: Int) {
        let rows = (max(oh, 1) - 1) * window.strides[0] - pads[0] + (window.kernel[0] - 1) * window.dilations[0] + 1
        let cols = (max(ow, 1) - 1) * window.strides[1] - pads[1] + (window.kernel[1] - 1) * window.dilations[1] + 1
        return (min(h, max(rows, 1)), min(w, max(cols, 1)))
    }

    /// Pools one `h`×`w` plane whose rows start `ld` values apart into the dense `oh`×`ow` plane
    /// `dst`, with the effective `pads` from `Window.output`.
    func plane(_ src: UnsafePointer<Float>, ld: Int, h: Int, w: Int, _ dst: UnsafeMutablePointer<Float>, oh: Int, ow: Int, pads: [Int]) {
        if max2x2, pads[0] == 0, pads[1] == 0, 2 * oh <= h, 2 * ow <= w {
            // Every window inside the plane: the whole plane in one call.
            outpost_maxpool2x2(src, ld, dst, oh, ow)
            return
        }
        let win = window, isMax = isMax
        let kh = win.kernel[0], kw = win.kernel[1], dy = win.dilations[0], dx = win.dilations[1]
        let sh = win.strides[0], sw = win.strides[1], pt = pads[0], pl = pads[1]
        // Columns whose whole window is inside the image (on rows whose window is).
        let lastStart = w - 1 - (kw - 1) * dx + pl
        let colLo = min(ow, (pl + sw - 1) / sw), colHi = max(colLo, min(ow, lastStart >= 0 ? lastStart / sw + 1 : 0))
        for oy in 0..<oh {
            let y0 = oy * sh - pt
            let rowInside = y0 >= 0 && y0 + (kh - 1) * dy < h
            let lo = rowInside ? colLo : 0, hi = rowInside ? colHi : 0
            let row = dst + oy * ow
            if hi > lo && max2x2 {
                outpost_maxpool2x2(src + y0 * ld - pl + 2 * lo, ld, row + lo, 1, hi - lo)
            } else if hi > lo {
                // Interior: accumulate tap by tap across the row (no bounds checks,
                // independent lanes instead of one dependency chain per window).
                for ox in lo..<hi { row[ox] = isMax ? -.infinity : 0 }
                for ky in 0..<kh {
                    let line = src + (y0 + ky * dy) * ld - pl
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
            for ox in 0..<lo { row[ox] = edge(src, ld: ld, h: h, w: w, y0: y0, x0: ox * sw - pl, pads: pads) }
            for ox in hi..<ow { row[ox] = edge(src, ld: ld, h: h, w: w, y0: y0, x0: ox * sw - pl, pads: pads) }
        }
    }

    /// One output whose window reaches into the padding: taps outside the image are skipped.
    private func edge(_ src: UnsafePointer<Float>, ld: Int, h: Int, w: Int, y0: Int, x0: Int, pads: [Int]) -> Float {
        let kh = window.kernel[0], kw = window.kernel[1], dy = window.dilations[0], dx = window.dilations[1]
        var acc: Float = isMax ? -.infinity : 0
        var n = 0
        for ky in 0..<kh {
            let iy = y0 + ky * dy
            guard iy >= 0 && iy < h else { continue }
            for kx in 0..<kw {
                let ix = x0 + kx * dx
                guard ix >= 0 && ix < w else { continue }
                let v = src[iy * ld + ix]
                if isMax { acc = v > acc ? v : acc } else { acc += v }
                n += 1
            }
        }
        if isMax { return acc }
        var denom = n
        if countIncludePad {
            // Count the window positions inside the padded input (not beyond it).
            let yEnd = min(y0 + (kh - 1) * dy + 1, h + pads[2])
            let xEnd = min(x0 + (kw - 1) * dx + 1, w + pads[3])
            denom = ((yEnd - y0 + dy - 1) / dy) * ((xEnd - x0 + dx - 1) / dx)
        }
        return denom > 0 ? acc / Float(denom) : 0
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
