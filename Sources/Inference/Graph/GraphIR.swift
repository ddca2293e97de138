/// A decoded node attribute.
enum Attribute: Sendable {
    case float(Float)
    case int(Int)
    case string(String)
    case tensor(Value)
    case floats([Float])
    case ints([Int])
    case strings([String])
}

/// One operator application, decoded from `NodeProto` and checked against the operator's schema.
struct Node: Sendable {
    var name: String
    var opType: String
    var domain: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: Attribute]
    /// Set by the optimiser: an activation fused into this node's output pass.
    var fused: Activation? = nil
    /// Set by the optimiser on a Conv: the window of a `MaxPool` that reads only this Conv's
    /// output, run on each output plane while it is in cache.
    var fusedMaxPool: Window? = nil

    /// A readable label for errors: `node 'name' (Op)`.
    var label: String { "node '\(name.isEmpty ? outputs.first ?? "?" : name)' (\(domain.isEmpty ? "" : domain + ".")\(opType))" }

    func int(_ key: String, _ fallback: Int) -> Int {
        if case .int(let v)? = attributes[key] { return v }
        return fallback
    }

    func float(_ key: String, _ fallback: Float) -> Float {
        if case .float(let v)? = attributes[key] { return v }
        return fallback
    }

    func string(_ key: String, _ fallback: String) -> String {
        if case .string(let v)? = attributes[key] { return v }
        return fallback
    }

    func ints(_ key: String) -> [Int]? {
        if case .ints(let v)? = attributes[key] { return v }
        return nil
    }

    func floats(_ key: String) -> [Float]? {
        if case .floats(let v)? = attributes[key] { return v }
        if case .tensor(let t)? = attributes[key] { return t.asFloats }
        return nil
    }

    func strings(_ key: String) -> [String]? {
        if case .strings(let v)? = attributes[key] { return v }
        return nil
    }

    /// The input name at `index`, or nil if absent or empty (an omitted optional input).
    func input(_ index: Int) -> String? {
        index < inputs.count && !inputs[index].isEmpty ? inputs[index] : nil
    }

    func fail(_ code: InferenceError.Code, _ message: String) -> InferenceError {
        InferenceError(code, "\(label): \(message)")
    }
}

/// An activation applied element-wise in the same pass that writes a Gemm/Conv/MatMul output.
enum Activation: Sendable, Equatable {
    case relu
    case leakyRelu(Float)
    case clip(Float, Float)
    case sigmoid
    case tanh
}

/// A declared graph input or output.
struct GraphIO: Sendable {
    var name: String
    var type: ElementType?
    /// -1 for a symbolic or unknown dimension; nil when the rank is unknown.
    var shape: [Int]?
    /// True when the value is `seq(map(...))` (ZipMap output).
    var isMapSequence = false
}

/// The model graph after decoding: nodes in topological order, constants by name.
struct Graph: Sendable {
    var nodes: [Node]
    var constants: [String: Value]
    var inputs: [GraphIO]
    var outputs: [GraphIO]
    var opsets: [String: Int]

    /// The index of the node that writes each value name.
    func producerIndex() -> [String: Int] {
        var producer: [String: Int] = [:]
        for (k, n) in nodes.enumerated() { for o in n.outputs { producer[o] = k } }
        return producer
    }

    /// How many nodes read each value name (graph outputs count as readers).
    func readerCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for n in nodes { for i in n.inputs where !i.isEmpty { counts[i, default: 0] += 1 } }
        for o in outputs { counts[o.name, default: 0] += 1 }
        return counts
    }
}
