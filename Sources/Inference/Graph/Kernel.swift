import CInferenceKernels
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where a kernel reads an input from: a session slot, a model constant, or nothing (omitted
/// optional input).
enum Ref: Sendable, Equatable {
    case slot(Int)
    case constant(Int)
    case none
}

/// The mutable state of one execution: value slots (reused between runs), the model's constants
/// and a scratch buffer (im2col columns).
struct Frame {
    var slots: [Value]
    let constants: [Value]
    var scratch: [Float] = []

    /// The value behind `ref`; nil for an omitted input. Copying a `Value` only retains its arrays.
    func get(_ ref: Ref) -> Value? {
        switch ref {
        case .slot(let i): slots[i]
        case .constant(let i): constants[i]
        case .none: nil
        }
    }

    /// Writes `source`'s elements with a new shape into slot `out`, reusing the slot's buffer.
    mutating func copy(_ source: Value, shape: [Int], to out: Int) {
        slots[out].reset(source.type, shape)
        switch source.type {
        case .float32: slots[out].f.withUnsafeMutableBufferPointer { p in _ = p.update(fromContentsOf: source.f) }
        case .float64: slots[out].d = source.d
        case .string: slots[out].s = source.s
        default: slots[out].i.withUnsafeMutableBufferPointer { p in _ = p.update(fromContentsOf: source.i) }
        }
        // Labels name the last dimension; a reshape that changes it leaves plain values.
        slots[out].labels = source.labels?.count == shape.last ? source.labels : nil
    }
}

/// One compiled operator. Kernels are immutable and shared by all sessions of a model; all
/// per-run state lives in the `Frame`.
protocol Kernel: Sendable {
    /// Reads `inputs` from the frame and writes every output slot in `outputs`.
    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws

    /// The input the kernel copied into a layout of its own at load (a packed weight matrix)
    /// and never reads from the frame; nil for most kernels.
    var packedInput: Int? { get }
}

extension Kernel {
    var packedInput: Int? { nil }
}

extension Kernel {
    /// The required input at `index`, or a shape error naming it.
    func required(_ frame: Frame, _ inputs: [Ref], _ index: Int) throws -> Value {
        guard index < inputs.count, let v = frame.get(inputs[index]) else {
            throw InferenceError(.invalidModel, "input \(index) is missing")
        }
        return v
    }

    /// The required float input at `index`.
    func floatInput(_ frame: Frame, _ inputs: [Ref], _ index: Int) throws -> Value {
        let v = try required(frame, inputs, index)
        guard v.type == .float32 else {
            throw InferenceError(.invalidInput, "input \(index) must be float32, got \(v.type)")
        }
        return v
    }
}

/// Normalises a possibly negative axis against `rank`.
func normalizeAxis(_ axis: Int, rank: Int, what: String = "axis") throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < rank else {
        throw InferenceError(.shapeMismatch, "\(what) \(axis) is out of range for rank \(rank)")
    }
    return a
}

extension Activation {
    /// Applies the activation in place (plain indexed loops so the compiler vectorises them).
    func apply(_ p: UnsafeMutableBufferPointer<Float>) {
        guard let y = p.baseAddress else { return }
        let n = p.count
        switch self {
        case .relu: for i in 0..<n { y[i] = y[i] <= 0 ? 0 : y[i] }  // NaN stays NaN, as in onnxruntime
        case .leakyRelu(let a): for i in 0..<n { y[i] = y[i] >= 0 ? y[i] : y[i] * a }
        case .clip(let lo, let hi): for i in 0..<n { let v = y[i] < lo ? lo : y[i]; y[i] = v > hi ? hi : v }
        case .sigmoid: for i in 0..<n { y[i] = Inference.sigmoid(y[i]) }
        case .tanh: for i in 0..<n { y[i] = tanhf(y[i]) }
        }
    }

    /// y = activation(y + bias) over `n` values: one pass for a Conv channel plane.
    func applyWithBias(_ y: UnsafeMutablePointer<Float>, _ n: Int, _ bias: Float) {
        switch self {
        case .relu: for i in 0..<n { let v = y[i] + bias; y[i] = v <= 0 ? 0 : v }
        case .clip(let lo, let hi): for i in 0..<n { var v = y[i] + bias; v = v < lo ? lo : v; y[i] = v > hi ? hi : v }
        default:
            for i in 0..<n { y[i] += bias }
            apply(UnsafeMutableBufferPointer(start: y, count: n))
        }
    }
}

@inline(__always) func sigmoid(_ x: Float) -> Float {
    x >= 0 ? 1 / (1 + expf(-x)) : expf(x) / (1 + expf(x))
}


/// Runs `body(i)` for every i < count on up to `threads` threads (the calling one and the
/// kernels' worker pool, `outpost_parallel_for`), returning when all have finished; one by one
/// on the calling thread when `threads` ≤ 1. The bodies must write disjoint memory.
func parallelFor(threads: Int, count: Int, _ body: (Int) -> Void) {
    guard threads > 1, count > 1 else {
        for i in 0..<count { body(i) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var context = body
        withUnsafeMutablePointer(to: &context) { pointer in
            outpost_parallel_for(Int32(threads), count, { context, index in
                context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(index)
            }, pointer)
        }
    }
}
