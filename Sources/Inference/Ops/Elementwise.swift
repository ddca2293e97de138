#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `Add`, `Sub`, `Mul`, `Div` with numpy broadcasting, on float32, float64 and integers.
struct BinaryKernel: Kernel {
    enum Op: String, Sendable { case add = "Add", sub = "Sub", mul = "Mul", div = "Div" }
    let op: Op

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let a = try required(frame, inputs, 0), b = try required(frame, inputs, 1)
        guard a.type == b.type || (a.type.isInteger && b.type.isInteger) else {
            throw InferenceError(.invalidInput, "\(op.rawValue) operands have different types \(a.type) and \(b.type)")
        }
        let out = outputs[0]
        switch a.type {
        case .float32:
            switch op {
            case .add: try binaryFloat(a, b, into: &frame.slots[out], op: +)
            case .sub: try binaryFloat(a, b, into: &frame.slots[out], op: -)
            case .mul: try binaryFloat(a, b, into: &frame.slots[out], op: *)
            case .div: try binaryFloat(a, b, into: &frame.slots[out], op: /)
            }
        case .float64:
            let f: (Double, Double) -> Double = switch op { case .add: (+); case .sub: (-); case .mul: (*); case .div: (/) }
            let (y, shape) = try binaryGeneric(a.d, a.shape, b.d, b.shape, zero: 0, op: f)
            frame.slots[out].reset(.float64, shape)
            frame.slots[out].d = y
        case .string:
            throw InferenceError(.invalidInput, "\(op.rawValue) does not take strings")
        default:
            let (y, shape) = try binaryGeneric(a.i, a.shape, b.i, b.shape, zero: 0) { x, z in
                switch op {
                case .add: return x &+ z
                case .sub: return x &- z
                case .mul: return x &* z
                case .div:
                    guard z != 0 else { throw InferenceError(.invalidInput, "integer division by zero") }
                    return x.dividedReportingOverflow(by: z).partialValue
                }
            }
            frame.slots[out].reset(a.type == b.type ? a.type : .int64, shape)
            frame.slots[out].i = y
        }
    }
}

/// Float32 element-wise unary operators.
struct UnaryKernel: Kernel {
    enum Op: Sendable {
        case relu, leakyRelu(Float), sigmoid, tanh, erf, gelu(tanhApproximation: Bool), clip(Float, Float)
        case sqrt, exp, neg, abs
    }
    let op: Op

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        var op = op
        if case .clip(var lo, var hi) = op {
            // Opset 11+: min and max are optional inputs.
            if inputs.count > 1, let m = frame.get(inputs[1]) { lo = m.asFloats.first ?? lo }
            if inputs.count > 2, let m = frame.get(inputs[2]) { hi = m.asFloats.first ?? hi }
            op = .clip(lo, hi)
        }
        let out = outputs[0]
        frame.slots[out].reset(.float32, x.shape)
        x.f.withUnsafeBufferPointer { xp in
            frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                let n = yp.count
                guard n > 0 else { return }
                let s = xp.baseAddress!, y = yp.baseAddress!
                switch op {
                case .relu: for i in 0..<n { y[i] = s[i] <= 0 ? 0 : s[i] }  // NaN stays NaN, as in onnxruntime
                case .leakyRelu(let a): for i in 0..<n { y[i] = s[i] >= 0 ? s[i] : s[i] * a }
                case .sigmoid: for i in 0..<n { y[i] = Inference.sigmoid(s[i]) }
                case .tanh: for i in 0..<n { y[i] = tanhf(s[i]) }
                case .erf: for i in 0..<n { y[i] = erff(s[i]) }
                case .gelu(let approx):
                    if approx {
                        let c: Float = 0.7978845608028654
                        for i in 0..<n { let v = s[i]; y[i] = 0.5 * v * (1 + tanhf(c * (v + 0.044715 * v * v * v))) }
                    } else {
                        for i in 0..<n { let v = s[i]; y[i] = 0.5 * v * (1 + erff(v * 0.7071067811865476)) }
                    }
                case .clip(let lo, let hi): for i in 0..<n { y[i] = min(max(s[i], lo), hi) }
                case .sqrt: for i in 0..<n { y[i] = sqrtf(s[i]) }
                case .exp: for i in 0..<n { y[i] = expf(s[i]) }
                case .neg: for i in 0..<n { y[i] = -s[i] }
                case .abs: for i in 0..<n { y[i] = Swift.abs(s[i]) }
                }
            }
        }
    }
}

/// `Softmax` / `LogSoftmax` along one axis (opset 13 semantics: the axis alone, default -1).
struct SoftmaxKernel: Kernel {
    let axis: Int
    let log: Bool

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        let rank = x.shape.count
        let ax = rank == 0 ? 0 : try normalizeAxis(axis, rank: rank)
        let len = rank == 0 ? 1 : x.shape[ax]
        let inner = rank == 0 ? 1 : x.shape[(ax + 1)...].reduce(1, *)
        let outer = rank == 0 ? 1 : x.shape[..<ax].reduce(1, *)
        let out = outputs[0]
        frame.slots[out].reset(.float32, x.shape)
        let log = log
        x.f.withUnsafeBufferPointer { xp in
            frame.slots[out].f.withUnsafeMutableBufferPointer { yp in
                guard len > 0, !yp.isEmpty else { return }
                for o in 0..<outer {
                    for i in 0..<inner {
                        let base = o * len * inner + i
                        var mx = -Float.infinity
                        for j in 0..<len { mx = max(mx, xp[base + j * inner]) }
                        var sum: Float = 0
                        for j in 0..<len { let e = expf(xp[base + j * inner] - mx); yp[base + j * inner] = e; sum += e }
                        if log {
                            let ls = logf(sum)
                            for j in 0..<len { yp[base + j * inner] = xp[base + j * inner] - mx - ls }
                        } else {
                            let inv = 1 / sum
                            for j in 0..<len { yp[base + j * inner] *= inv }
                        }
                    }
                }
            }
        }
    }
}

/// `BatchNormalization` in inference mode (when it could not be folded into a preceding Conv).
struct BatchNormKernel: Kernel {
    let epsilon: Float

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        let p = try (1...4).map { try required(frame, inputs, $0).asFloats }
        guard x.shape.count >= 2, p.allSatisfy({ $0.count == x.shape[1] }) else {
            throw InferenceError(.shapeMismatch, "BatchNormalization: input \(x.shape) and parameters of length \(p.map(\.count)) disagree")
        }
        let c = x.shape[1], inner = x.shape[2...].reduce(1, *), outer = x.shape[0]
        let out = outputs[0]
        frame.slots[out].reset(.float32, x.shape)
        for n in 0..<outer {
            for ch in 0..<c {
                let scale = p[0][ch] / sqrtf(p[3][ch] + epsilon)
                let shift = p[1][ch] - p[2][ch] * scale
                let base = (n * c + ch) * inner
                for j in 0..<inner { frame.slots[out].f[base + j] = x.f[base + j] * scale + shift }
            }
        }
    }
}
