/// 2-D window geometry shared by Conv and the pools (1-D ops use height 1).
struct Window: Sendable {
    /// The largest kernel size, stride, dilation or pad taken (sizes beyond it only overflow).
    static let maxAttribute = 1 << 20
    /// 1 or 2: the spatial rank the node declared (`kernel` is always [kh, kw]).
    let rank: Int
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
        guard kernel.allSatisfy({ (1...Self.maxAttribute).contains($0) }) else {
            throw n.fail(.unsupportedAttribute, "kernel_shape \(kernel) must hold sizes from 1 to \(Self.maxAttribute)")
        }
        self.rank = rank
        func lift(_ a: [Int], _ fill: Int) -> [Int] { rank == 1 ? [fill] + a : a }
        self.kernel = lift(kernel, 1)
        strides = lift(n.ints("strides") ?? Array(repeating: 1, count: rank), 1)
        dilations = lift(n.ints("dilations") ?? Array(repeating: 1, count: rank), 1)
        let p = n.ints("pads") ?? Array(repeating: 0, count: 2 * rank)
        guard p.count == 2 * rank, strides.count == 2, dilations.count == 2,
              strides.allSatisfy({ (1...Self.maxAttribute).contains($0) }), dilations.allSatisfy({ (1...Self.maxAttribute).contains($0) }),
              p.allSatisfy({ (0...Self.maxAttribute).contains($0) }) else {
            throw n.fail(.unsupportedAttribute, "strides/dilations/pads do not match kernel_shape \(kernel), or are outside 1...\(Self.maxAttribute) (pads 0...)")
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
            guard inSize[d] > 0 else {
                throw InferenceError(.shapeMismatch, "input \(h)×\(w) has an empty spatial dimension")
            }
            guard outSize[d] > 0 else {
                throw InferenceError(.shapeMismatch, "input \(h)×\(w) is smaller than the window \(kernel) (dilations \(dilations))")
            }
        }
        return (outSize[0], outSize[1], pads)
    }
}
