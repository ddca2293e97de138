#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// ai.onnx.ml `post_transform` values the engine implements.
enum PostTransform: String, Sendable {
    case none = "NONE", softmax = "SOFTMAX", logistic = "LOGISTIC", softmaxZero = "SOFTMAX_ZERO"

    init(_ n: Node) throws {
        let raw = n.string("post_transform", "NONE")
        guard let v = PostTransform(rawValue: raw) else {
            throw n.fail(.unsupportedAttribute, "post_transform '\(raw)' is not supported")
        }
        self = v
    }

    /// Transforms one row of scores in place.
    func apply(_ row: inout ArraySlice<Float>) {
        switch self {
        case .none: break
        case .logistic: for i in row.indices { row[i] = sigmoid(row[i]) }
        case .softmax, .softmaxZero:
            let mx = row.max() ?? 0
            var sum: Float = 0
            for i in row.indices {
                let e = (self == .softmaxZero && row[i] == 0) ? 0 : expf(row[i] - mx)
                row[i] = e; sum += e
            }
            if sum > 0 { for i in row.indices { row[i] /= sum } }
        }
    }
}

/// Class labels of an ai.onnx.ml classifier.
enum ClassLabels: Sendable {
    case ints([Int64])
    case strings([[UInt8]])

    init(_ n: Node, ints intKey: String, strings stringKey: String) throws {
        if let s = n.strings(stringKey) { self = .strings(s.map { Array($0.utf8) }) }
        else if let i = n.ints(intKey) { self = .ints(i.map(Int64.init)) }
        else { throw n.fail(.invalidModel, "needs \(intKey) or \(stringKey)") }
        guard count > 0 else { throw n.fail(.invalidModel, "\(intKey) / \(stringKey) names no class") }
    }

    var count: Int { switch self { case .ints(let a): a.count; case .strings(let a): a.count } }

    /// Writes the labels at `picks` (one class index per row) into `out`.
    func write(_ picks: [Int], into out: inout Value) {
        switch self {
        case .ints(let l): out.reset(.int64, [picks.count]); for (r, p) in picks.enumerated() { out.i[r] = l[p] }
        case .strings(let l): out.reset(.string, [picks.count]); for (r, p) in picks.enumerated() { out.s[r] = l[p] }
        }
    }
}

/// Reads a classifier/regressor feature input ([N, F] or [F]) as float32 rows.
func featureRows(_ x: Value) throws -> (rows: Int, features: Int, data: [Float]) {
    guard x.type != .string else { throw InferenceError(.invalidInput, "features must be numeric") }
    let data = x.asFloats
    switch x.shape.count {
    case 1: return (1, x.shape[0], data)
    case 2: return (x.shape[0], x.shape[1], data)
    default: throw InferenceError(.shapeMismatch, "features must be [N, F], got \(x.shape)")
    }
}

/// Index of the first maximum of a row.
func argmax(_ row: ArraySlice<Float>) -> Int {
    var best = row.startIndex
    for i in row.indices where row[i] > row[best] { best = i }
    return best - row.startIndex
}

/// ai.onnx.ml `LinearClassifier`: scores = X·Wᵀ + b, post-transform, label = argmax.
struct LinearClassifierKernel: Kernel {
    let coefficients: [Float]
    let intercepts: [Float]
    let labels: ClassLabels
    let post: PostTransform
    let classes: Int

    init(_ n: Node) throws {
        coefficients = n.floats("coefficients") ?? []
        labels = try ClassLabels(n, ints: "classlabels_ints", strings: "classlabels_strings")
        guard labels.count >= 2 else { throw n.fail(.invalidModel, "a LinearClassifier needs at least 2 class labels, not \(labels.count)") }
        post = try PostTransform(n)
        // multi_class only records how the model was trained; scoring is the same (as in ONNX Runtime).
        let c = labels.count == 2 && n.floats("intercepts")?.count == 1 ? 1 : labels.count
        intercepts = n.floats("intercepts") ?? Array(repeating: 0, count: c)
        classes = c
        guard c > 0, intercepts.count == c, coefficients.count % c == 0 else {
            throw n.fail(.invalidModel, "coefficients (\(coefficients.count)) and intercepts (\(intercepts.count)) do not match \(labels.count) classes")
        }
    }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let (rows, f, x) = try featureRows(try required(frame, inputs, 0))
        guard f * classes == coefficients.count else {
            throw InferenceError(.shapeMismatch, "LinearClassifier expects \(coefficients.count / classes) features, got \(f)")
        }
        let width = classes == 1 ? 2 : classes
        var scores = [Float](repeating: 0, count: rows * width)
        var picks = [Int](repeating: 0, count: rows)
        for r in 0..<rows {
            var raw = [Float](repeating: 0, count: classes)
            for c in 0..<classes {
                var s = intercepts[c]
                for j in 0..<f { s += x[r * f + j] * coefficients[c * f + j] }
                raw[c] = s
            }
            if classes == 1 {
                // Binary model with one coefficient row: ONNX Runtime reports [-s, s] (or [1-p, p]).
                let s = raw[0]
                picks[r] = s > 0 ? 1 : 0
                if post == .logistic { let p = sigmoid(s); scores[r * 2] = 1 - p; scores[r * 2 + 1] = p }
                else { scores[r * 2] = -s; scores[r * 2 + 1] = s }
            } else {
                var row = raw[...]
                post.apply(&row)
                for c in 0..<classes { scores[r * width + c] = row[row.startIndex + c] }
                picks[r] = argmax(raw[...])
            }
        }
        labels.write(picks, into: &frame.slots[outputs[0]])
        if outputs.count > 1 {
            frame.slots[outputs[1]].reset(.float32, [rows, width])
            frame.slots[outputs[1]].f = scores
        }
    }
}

/// ai.onnx.ml `LinearRegressor`: Y = X·Wᵀ + b per target.
struct LinearRegressorKernel: Kernel {
    let coefficients: [Float]
    let intercepts: [Float]
    let targets: Int

    init(_ n: Node) throws {
        coefficients = n.floats("coefficients") ?? []
        targets = n.int("targets", 1)
        intercepts = n.floats("intercepts") ?? Array(repeating: 0, count: targets)
        guard try PostTransform(n) == .none else { throw n.fail(.unsupportedAttribute, "post_transform must be NONE") }
        guard targets > 0, intercepts.count == targets, coefficients.count % targets == 0 else {
            throw n.fail(.invalidModel, "coefficients/intercepts do not match \(targets) targets")
        }
    }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let (rows, f, x) = try featureRows(try required(frame, inputs, 0))
        guard f * targets == coefficients.count else {
            throw InferenceError(.shapeMismatch, "LinearRegressor expects \(coefficients.count / targets) features, got \(f)")
        }
        frame.slots[outputs[0]].reset(.float32, [rows, targets])
        for r in 0..<rows {
            for t in 0..<targets {
                var s = intercepts[t]
                for j in 0..<f { s += x[r * f + j] * coefficients[t * f + j] }
                frame.slots[outputs[0]].f[r * targets + t] = s
            }
        }
    }
}

/// ai.onnx.ml `ZipMap`: labels the columns of a probability matrix (one map per row).
struct ZipMapKernel: Kernel {
    let labels: TensorColumnLabels

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let x = try floatInput(frame, inputs, 0)
        let count = switch labels { case .int64(let a): a.count; case .strings(let a): a.count }
        guard x.shape.count == 2, x.shape[1] == count else {
            throw InferenceError(.shapeMismatch, "ZipMap has \(count) labels for input \(x.shape)")
        }
        frame.copy(x, shape: x.shape, to: outputs[0])
        frame.slots[outputs[0]].labels = labels
    }
}

/// ai.onnx.ml `Normalizer`: each row divided by its MAX, L1 or L2 norm (skl2onnx emits it after
/// one-vs-rest LinearClassifier scores).
struct NormalizerKernel: Kernel {
    let norm: String

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let (rows, f, x) = try featureRows(try required(frame, inputs, 0))
        frame.slots[outputs[0]].reset(.float32, [rows, f])
        for r in 0..<rows {
            let row = x[(r * f)..<((r + 1) * f)]
            let d: Float
            switch norm {
            case "MAX": d = row.max() ?? 1
            case "L1": d = row.reduce(0) { $0 + abs($1) }
            default: d = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
            }
            for j in 0..<f { frame.slots[outputs[0]].f[r * f + j] = d != 0 ? x[r * f + j] / d : x[r * f + j] }
        }
    }
}
