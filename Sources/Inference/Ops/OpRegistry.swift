/// The operators this engine implements: for each, the attributes it understands and a factory
/// that validates the node and builds its kernel. Anything else fails at load time.
enum OpRegistry {
    struct Spec: Sendable {
        let attributes: Set<String>
        let make: @Sendable (Node, [String: Value]) throws -> any Kernel
    }

    static func key(_ domain: String, _ op: String) -> String { domain.isEmpty ? op : "\(domain):\(op)" }

    /// Builds the kernel for `node`, or throws naming the node, operator and attribute.
    static func kernel(for node: Node, constants: [String: Value]) throws -> any Kernel {
        guard let spec = specs[key(node.domain, node.opType)] else {
            throw node.fail(.unsupportedOperator, "operator '\(node.opType)' of domain '\(node.domain.isEmpty ? "ai.onnx" : node.domain)' is not supported")
        }
        if let bad = node.attributes.keys.sorted().first(where: { !spec.attributes.contains($0) }) {
            throw node.fail(.unsupportedAttribute, "attribute '\(bad)' is not supported")
        }
        return try spec.make(node, constants)
    }

    /// Operators of the default domain that appeared after opset 13 (the oldest this engine
    /// loads), with the opset that introduced them.
    static let introducedIn: [String: Int] = ["Gelu": 20]

    /// Refuses an operator newer than the opset the model imports, as onnxruntime does.
    static func checkOpset(of node: Node, imported opsets: [String: Int]) throws {
        guard node.domain.isEmpty, let since = introducedIn[node.opType], let version = opsets[""], version < since else { return }
        throw node.fail(.unsupportedOpset, "operator '\(node.opType)' exists from opset \(since); the model imports opset \(version)")
    }

    static let window: Set<String> = ["auto_pad", "kernel_shape", "pads", "strides", "dilations"]

    static let specs: [String: Spec] = {
        var s: [String: Spec] = [:]
        func add(_ op: String, _ attrs: Set<String> = [], domain: String = "", _ make: @escaping @Sendable (Node, [String: Value]) throws -> any Kernel) {
            s[key(domain, op)] = Spec(attributes: attrs, make: make)
        }
        add("Gemm", ["alpha", "beta", "transA", "transB"]) { n, c in GemmKernel(n, weight: n.input(1).flatMap { c[$0] }) }
        add("MatMul") { n, c in MatMulKernel(n, weight: n.input(1).flatMap { c[$0] }) }
        for op in [BinaryKernel.Op.add, .sub, .mul, .div] { add(op.rawValue) { _, _ in BinaryKernel(op: op) } }
        add("Relu") { _, _ in UnaryKernel(op: .relu) }
        add("LeakyRelu", ["alpha"]) { n, _ in UnaryKernel(op: .leakyRelu(n.float("alpha", 0.01))) }
        add("Sigmoid") { _, _ in UnaryKernel(op: .sigmoid) }
        add("Tanh") { _, _ in UnaryKernel(op: .tanh) }
        add("Erf") { _, _ in UnaryKernel(op: .erf) }
        add("Sqrt") { _, _ in UnaryKernel(op: .sqrt) }
        add("Exp") { _, _ in UnaryKernel(op: .exp) }
        add("Neg") { _, _ in UnaryKernel(op: .neg) }
        add("Abs") { _, _ in UnaryKernel(op: .abs) }
        add("Gelu", ["approximate"]) { n, _ in
            let a = n.string("approximate", "none")
            guard a == "none" || a == "tanh" else { throw n.fail(.unsupportedAttribute, "approximate '\(a)' is not supported") }
            return UnaryKernel(op: .gelu(tanhApproximation: a == "tanh"))
        }
        add("Clip") { _, _ in UnaryKernel(op: .clip(-.infinity, .infinity)) }
        add("Softmax", ["axis"]) { n, _ in SoftmaxKernel(axis: n.int("axis", -1), log: false) }
        add("LogSoftmax", ["axis"]) { n, _ in SoftmaxKernel(axis: n.int("axis", -1), log: true) }
        add("Conv", window.union(["group"])) { n, c in
            try ConvKernel(n, weight: n.input(1).flatMap { c[$0] })
        }
        add("MaxPool", window.union(["ceil_mode", "storage_order"])) { n, _ in
            guard n.outputs.count == 1 || n.outputs[1].isEmpty else { throw n.fail(.unsupportedAttribute, "the Indices output is not supported") }
            guard n.int("storage_order", 0) == 0 else { throw n.fail(.unsupportedAttribute, "storage_order=1 is not supported") }
            return PoolKernel(pooling: Pooling(window: try Window(n, kernel: try kernelShape(n)), isMax: true, countIncludePad: false))
        }
        add("AveragePool", window.union(["ceil_mode", "count_include_pad"])) { n, _ in
            PoolKernel(pooling: Pooling(window: try Window(n, kernel: try kernelShape(n)), isMax: false,
                                        countIncludePad: n.int("count_include_pad", 0) != 0))
        }
        add("GlobalAveragePool") { _, _ in GlobalPoolKernel(isMax: false) }
        add("GlobalMaxPool") { _, _ in GlobalPoolKernel(isMax: true) }
        add("BatchNormalization", ["epsilon", "momentum", "training_mode"]) { n, _ in
            guard n.int("training_mode", 0) == 0, n.outputs.count == 1 else {
                throw n.fail(.unsupportedAttribute, "training mode (training_mode=1 or extra outputs) is not supported")
            }
            return BatchNormKernel(epsilon: n.float("epsilon", 1e-5))
        }
        add("Identity") { _, _ in ReshapeKernel(op: .identity) }
        add("Dropout", ["seed"]) { _, _ in ReshapeKernel(op: .identity) }
        add("Flatten", ["axis"]) { n, _ in ReshapeKernel(op: .flatten(n.int("axis", 1))) }
        add("Reshape", ["allowzero"]) { n, _ in ReshapeKernel(op: .reshape(allowZero: n.int("allowzero", 0) != 0)) }
        add("Squeeze", ["axes"]) { n, _ in ReshapeKernel(op: .squeeze(n.ints("axes"))) }
        add("Unsqueeze", ["axes"]) { n, _ in ReshapeKernel(op: .unsqueeze(n.ints("axes"))) }
        add("Transpose", ["perm"]) { n, _ in TransposeKernel(perm: n.ints("perm")) }
        add("Concat", ["axis"]) { n, _ in
            guard case .int? = n.attributes["axis"] else { throw n.fail(.invalidModel, "Concat needs an axis") }
            return ConcatKernel(axis: n.int("axis", 0))
        }
        add("Shape", ["start", "end"]) { n, _ in ShapeKernel(start: n.int("start", 0), end: n.ints("end")?.first ?? (n.attributes["end"] == nil ? nil : n.int("end", 0))) }
        add("Gather", ["axis"]) { n, _ in GatherKernel(axis: n.int("axis", 0)) }
        add("Cast", ["to", "saturate"]) { n, _ in
            guard let to = ElementType(onnx: n.int("to", 0)), to != .string else {
                throw n.fail(.unsupportedAttribute, "Cast to data type \(n.int("to", 0)) is not supported")
            }
            return CastKernel(to: to)
        }
        let ml = "ai.onnx.ml"
        add("LinearClassifier", ["coefficients", "intercepts", "classlabels_ints", "classlabels_strings", "multi_class", "post_transform"], domain: ml) { n, _ in
            try LinearClassifierKernel(n)
        }
        add("Normalizer", ["norm"], domain: ml) { n, _ in
            let norm = n.string("norm", "MAX")
            guard ["MAX", "L1", "L2"].contains(norm) else { throw n.fail(.unsupportedAttribute, "norm '\(norm)' is not supported") }
            return NormalizerKernel(norm: norm)
        }
        add("LinearRegressor", ["coefficients", "intercepts", "targets", "post_transform"], domain: ml) { n, _ in try LinearRegressorKernel(n) }
        let nodes: Set<String> = ["nodes_treeids", "nodes_nodeids", "nodes_featureids", "nodes_modes", "nodes_values",
                                  "nodes_values_as_tensor", "nodes_truenodeids", "nodes_falsenodeids",
                                  "nodes_missing_value_tracks_true", "nodes_hitrates", "nodes_hitrates_as_tensor",
                                  "post_transform", "base_values", "base_values_as_tensor"]
        add("TreeEnsembleClassifier", nodes.union(["class_treeids", "class_nodeids", "class_ids", "class_weights", "class_weights_as_tensor",
                                                   "classlabels_int64s", "classlabels_strings"]), domain: ml) { n, _ in try TreeClassifierKernel(n) }
        add("TreeEnsembleRegressor", nodes.union(["target_treeids", "target_nodeids", "target_ids", "target_weights", "target_weights_as_tensor",
                                                  "n_targets", "aggregate_function"]), domain: ml) { n, _ in try TreeRegressorKernel(n) }
        add("ZipMap", ["classlabels_int64s", "classlabels_strings"], domain: ml) { n, _ in
            if let s = n.strings("classlabels_strings") { return ZipMapKernel(labels: .strings(s)) }
            guard let i = n.ints("classlabels_int64s") else { throw n.fail(.invalidModel, "ZipMap needs class labels") }
            return ZipMapKernel(labels: .int64(i.map(Int64.init)))
        }
        return s
    }()

    private static func kernelShape(_ n: Node) throws -> [Int] {
        guard let k = n.ints("kernel_shape") else { throw n.fail(.invalidModel, "kernel_shape is required") }
        return k
    }
}
