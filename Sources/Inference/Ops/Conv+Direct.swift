import CInferenceKernels

/// A stride-1 convolution's weights packed for the direct algorithm: per group, per block of
/// `block` output channels, tap by tap (tap = input channel, ky, kx), the block's weights side by
/// side, so the kernel reads each tap's weights with one broadcast per channel. Channels past the
/// last in a partial block are zero.
struct DirectConvWeights: Sendable {
    /// Output channels per block (the C kernel's register block).
    static let block = Int(OUTPOST_DIRECT_CONV_BLOCK)
    let taps: Int
    let blocks: Int
    let packed: [Float]
    /// The weight's shape at load: a run must see the same one (``ConvKernel`` checks).
    let shape: [Int]

    /// Whether the direct algorithm should run for this many output channels per group. The
    /// direct kernel reuses each input load for one block of channels, while sgemm reuses it
    /// across all of them and its packing amortises as channels grow, so large channel counts
    /// keep im2col + sgemm. Measured on the anchor CNN only (8 and 16 channels: direct 2–4×
    /// faster at batch 32–256); the bound of 32 is a conservative guess beyond that.
    static func suits(outputChannelsPerGroup mg: Int) -> Bool { mg <= 32 }

    init(_ w: Value, group: Int) {
        let m = w.shape[0], mg = m / group, taps = w.count / m, block = Self.block
        let blocks = (mg + block - 1) / block
        var packed = [Float](repeating: 0, count: group * blocks * taps * block)
        for g in 0..<group {
            for ch in 0..<mg {
                for t in 0..<taps {
                    packed[((g * blocks + ch / block) * taps + t) * block + ch % block] = w.f[(g * mg + ch) * taps + t]
                }
            }
        }
        self.taps = taps
        self.blocks = blocks
        self.packed = packed
        shape = w.shape
    }
}

extension ConvKernel {
    /// The direct algorithm, image by image and group by group. The input planes (copied into a
    /// zero-bordered scratch plane when the Conv pads) are read as flat arrays: output (oy, ox)
    /// lives at `oy * wp + ox` of a "wide" output whose rows are as long as the input's, so every
    /// tap is one contiguous load at a fixed offset; the `wp - ow` wrap-around columns per row are
    /// computed and never read.
    func runDirect(_ packed: DirectConvWeights, _ frame: inout Frame, _ x: Value, _ biasValues: [Float], _ out: Int, _ g: Geometry) {
        let pt = g.pads[0], pl = g.pads[1]
        let hp = g.h + pt + g.pads[2], wp = g.w + pl + g.pads[3]
        let padded = hp != g.h || wp != g.w
        // With a fused pool only the rows and columns its windows read are computed (a 2×2
        // pool of an odd-sized map never reads the last row and column).
        let (rows, cols) = pool?.extent(h: g.oh, w: g.ow, oh: g.poh, ow: g.pow, pads: g.poolPads) ?? (g.oh, g.ow)
        let planeIn = hp * wp, span = (rows - 1) * wp + cols
        let padSize = padded ? g.cg * planeIn : 0
        // Images are shared out among the configured threads (1 in the daemon) from 2^18
        // multiply-adds on; each thread has its own scratch.
        let work = g.n * g.m * span * packed.taps
        let parts = work >= 1 << 18 ? max(1, min(BLASRuntime.threadCount, g.n)) : 1
        let perPart = padSize + g.mg * span
        if frame.scratch.count < parts * perPart { Value.resize(&frame.scratch, parts * perPart, 0) }  // grows only
        let dh = window.dilations[0], dw = window.dilations[1], taps = packed.taps
        let relu = activation == .relu  // applied by the kernel as it stores
        withUnsafeTemporaryAllocation(of: Int.self, capacity: taps) { offsets in
            var t = 0
            for c in 0..<g.cg { for ky in 0..<g.kh { for kx in 0..<g.kw { offsets[t] = c * planeIn + ky * dh * wp + kx * dw; t += 1 } } }
            let offs = UnsafePointer(offsets.baseAddress!)
            x.f.withUnsafeBufferPointer { xp in
                packed.packed.withUnsafeBufferPointer { wl in
                    biasValues.withUnsafeBufferPointer { bp in
                        frame.scratch.withUnsafeMutableBufferPointer { sp in
                            frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                                let plane = g.poh * g.pow, block = DirectConvWeights.block
                                parallelFor(threads: parts, count: parts) { part in
                                    let pad = sp.baseAddress! + part * perPart, wide = pad + padSize
                                    if padded { pad.update(repeating: 0, count: padSize) }
                                    for i in (g.n * part / parts)..<(g.n * (part + 1) / parts) {
                                        for gi in 0..<group {
                                            var src = xp.baseAddress! + (i * g.c + gi * g.cg) * g.h * g.w
                                            if padded {
                                                for c in 0..<g.cg {
                                                    for r in 0..<g.h {
                                                        (pad + c * planeIn + (r + pt) * wp + pl).update(from: src + (c * g.h + r) * g.w, count: g.w)
                                                    }
                                                }
                                                src = UnsafePointer(pad)
                                            }
                                            for b in 0..<packed.blocks {
                                                let first = b * block
                                                outpost_direct_conv(src, offs, wl.baseAddress! + (gi * packed.blocks + b) * taps * block, taps,
                                                                    bp.baseAddress! + gi * g.mg + first, min(block, g.mg - first),
                                                                    wide + first * span, span, relu ? 1 : 0)
                                            }
                                            for ch in 0..<g.mg {
                                                finish(wide + ch * span, ld: wp, span: span, bias: 0, activate: !relu,
                                                       into: yp.baseAddress! + (i * g.m + gi * g.mg + ch) * plane, g)
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
