/// Decides at load time whether a model treats the rows of its inputs (their first dimension)
/// independently: row `i` of every output depends only on row `i` of the inputs, so requests
/// can be joined along that dimension, run once and split again without changing any answer.
///
/// A Softmax over axis 0, a Reshape that moves data across rows, a Transpose that moves the first
/// axis, a Concat along it, and any operator this analysis does not know make a model dependent,
/// and then each request runs alone. The analysis is conservative: a Reshape whose target shape
/// starts with -1 could keep rows apart, but proving it needs the static per-row shape, so it
/// counts as mixing. The `Shape → Gather(0) → Unsqueeze → Concat → Reshape` chain that PyTorch
/// exports for `x.view(x.size(0), -1)` is followed and keeps rows apart.
enum RowIndependence {
    /// What a value is, as far as the rows are concerned.
    enum Flow: Equatable {
        /// The same whatever rows a run gets (weights, constants, shapes that exclude the rows).
        case fixed(rank: Int?)
        /// Its first dimension is the rows; row `i` depends only on row `i` of the inputs.
        case rows(rank: Int?)
        /// A small integer tensor of sizes (from `Shape`); `true` marks an element that is the
        /// row count.
        case sizes([Bool])
        /// Anything else: splitting it by rows would give wrong answers.
        case mixed
    }

    /// True when every output of `graph` keeps its inputs' rows apart.
    static func holds(for graph: Graph) -> Bool {
        var flows: [String: Flow] = [:]
        for input in graph.inputs { flows[input.name] = .rows(rank: input.shape?.count) }
        for node in graph.nodes {
            let out = flow(of: node, graph: graph, flows: flows)
            for (k, name) in node.outputs.enumerated() where !name.isEmpty {
                flows[name] = k < out.count ? out[k] : .mixed
            }
        }
        return graph.outputs.allSatisfy { output in
            if case .rows? = flows[output.name] { return true }
            return false
        }
    }

    // MARK: Rules

    /// The flows of `node`'s outputs, one entry per output (missing entries mix rows).
    private static func flow(of node: Node, graph: Graph, flows: [String: Flow]) -> [Flow] {
        func input(_ k: Int) -> Flow? {
            guard let name = node.input(k) else { return nil }
            if let constant = graph.constants[name] { return .fixed(rank: constant.shape.count) }
            return flows[name] ?? .mixed
        }
        func constantShape(_ k: Int) -> [Int]? { node.input(k).flatMap { graph.constants[$0]?.shape } }
        func constantInts(_ k: Int) -> [Int]? { node.input(k).flatMap { graph.constants[$0]?.asInts.map { Int($0) } } }
        let present = node.inputs.indices.compactMap { input($0) }
        if present.contains(.mixed) { return [.mixed] }
        if !present.isEmpty, present.allSatisfy({ if case .fixed = $0 { return true } else { return false } }) {
            return [.fixed(rank: nil)]
        }
        let x = input(0)
        let mixed: [Flow] = [.mixed]

        switch (node.domain, node.opType) {
        case ("", "Relu"), ("", "LeakyRelu"), ("", "Sigmoid"), ("", "Tanh"), ("", "Erf"), ("", "Sqrt"), ("", "Exp"),
             ("", "Neg"), ("", "Abs"), ("", "Gelu"), ("", "Identity"), ("", "Dropout"), ("", "Cast"):
            return [x ?? .mixed]

        case ("", "Clip"):
            // min and max are scalars that must not depend on the rows.
            guard (1..<3).allSatisfy({ input($0)?.isFixed ?? true }), case .rows? = x else { return mixed }
            return [x!]

        case ("", "Add"), ("", "Sub"), ("", "Mul"), ("", "Div"):
            if present.allSatisfy(\.isFixed) {
                // Arithmetic on sizes that exclude the row count (`x.size(1) * x.size(2)`).
                let lengths = present.map { if case .sizes(let e) = $0 { return e.count } else { return 1 } }
                return [.sizes(Array(repeating: false, count: lengths.max() ?? 1))]
            }
            return [broadcast(node.inputs.indices.map { (input($0), constantShape($0)) })]

        case ("", "Softmax"), ("", "LogSoftmax"):
            guard case .rows(let rank)? = x, let axis = normalized(node.int("axis", -1), rank: rank), axis >= 1 else { return mixed }
            return [.rows(rank: rank)]

        case ("", "Gemm"):
            guard case .rows? = x, node.int("transA", 0) == 0, input(1)?.isFixed == true,
                  biasKeepsRows(input(2), constantShape(2), outputRank: 2) else { return mixed }
            return [.rows(rank: 2)]

        case ("", "MatMul"):
            guard case .rows(let rank)? = x, let rank, rank >= 2 else { return mixed }
            let outputRank: Int
            switch input(1) {
            case .fixed(let bRank)? where bRank != nil && (bRank! < rank || (bRank == 2 && rank == 2)
                                                             || (bRank == rank && constantShape(1)?.first == 1)):
                // A constant B of A's rank (3 or more) broadcasts its first dimension against the
                // rows: only a first dimension of 1 repeats the same matrix for each row.
                outputRank = bRank == 1 ? rank - 1 : rank
            case .rows(let bRank)? where rank >= 3 && bRank == rank:
                outputRank = rank
            default:
                return mixed
            }
            // The optimiser appends a bias as a third input.
            guard biasKeepsRows(input(2), constantShape(2), outputRank: outputRank) else { return mixed }
            return [.rows(rank: outputRank)]

        case ("", "Conv"), ("", "MaxPool"), ("", "AveragePool"), ("", "GlobalAveragePool"), ("", "GlobalMaxPool"),
             ("", "BatchNormalization"):
            guard case .rows? = x, (1..<node.inputs.count).allSatisfy({ input($0)?.isFixed ?? true }) else { return mixed }
            return [x!]

        case ("", "Flatten"):
            guard case .rows(let rank)? = x, let axis = normalized(node.int("axis", 1), rank: rank), axis >= 1 else { return mixed }
            return [.rows(rank: 2)]

        case ("", "Reshape"):
            guard case .rows? = x else { return mixed }
            if let target = constantInts(1) {
                let allowZero = node.int("allowzero", 0) != 0
                return target.first == 0 && !allowZero ? [.rows(rank: target.count)] : mixed
            }
            if case .sizes(let elements)? = input(1), elements.first == true, !elements.dropFirst().contains(true) {
                return [.rows(rank: elements.count)]
            }
            return mixed

        case ("", "Squeeze"), ("", "Unsqueeze"):
            let axes = node.ints("axes") ?? constantInts(1)
            switch x {
            case .sizes(let elements)?:
                return [.sizes(elements)]
            case .rows(let rank)?:
                guard let axes, let rank else { return mixed }
                let squeeze = node.opType == "Squeeze"
                let outputRank = squeeze ? rank - axes.count : rank + axes.count
                let normalizedAxes = axes.map { normalized($0, rank: squeeze ? rank : outputRank) }
                guard normalizedAxes.allSatisfy({ $0 != nil && $0! >= 1 }) else { return mixed }
                return [.rows(rank: outputRank)]
            default:
                return mixed
            }

        case ("", "Transpose"):
            guard case .rows(let rank)? = x else { return mixed }
            if let perm = node.ints("perm") { return perm.first == 0 ? [.rows(rank: rank)] : mixed }
            return rank == 1 ? [.rows(rank: 1)] : mixed

        case ("", "Concat"):
            let parts = node.inputs.indices.map { input($0) }
            let rowRanks = parts.compactMap { part -> Int?? in
                if case .rows(let rank)? = part { return .some(rank) }
                return nil
            }
            if rowRanks.count == parts.count {
                guard Set(rowRanks).count == 1, let rank = rowRanks[0], let axis = normalized(node.int("axis", 0), rank: rank),
                      axis >= 1 else { return mixed }
                return [.rows(rank: rank)]
            }
            // Joining sizes: elements from `Shape` and constant vectors.
            var elements: [Bool] = []
            for (k, part) in parts.enumerated() {
                switch part {
                case .sizes(let more)?: elements += more
                case .fixed?:
                    guard let shape = constantShape(k), shape.count <= 1 else { return mixed }
                    elements += Array(repeating: false, count: shape.first ?? 1)
                default: return mixed
                }
            }
            return [.sizes(elements)]

        case ("", "Shape"):
            guard case .rows(let rank)? = x else { return mixed }
            let start = node.int("start", 0)
            if start >= 1 { return [.fixed(rank: 1)] }
            guard let rank else { return node.attributes["end"] != nil && node.int("end", 0) == 1 && start == 0 ? [.sizes([true])] : mixed }
            let all = [true] + Array(repeating: false, count: max(rank - 1, 0))
            let lower = normalized(start, rank: rank, clamp: true) ?? 0
            let upper = node.attributes["end"].map { _ in normalized(node.int("end", rank), rank: rank, clamp: true) ?? rank } ?? rank
            return lower < upper ? [.sizes(Array(all[lower..<upper]))] : [.fixed(rank: 1)]

        case ("", "Gather"):
            let axis = node.int("axis", 0)
            switch (x, input(1)) {
            case (.sizes(let elements)?, .fixed?):
                guard axis == 0, let indices = constantInts(1) else { return mixed }
                var picked: [Bool] = []
                for index in indices {
                    let k = index < 0 ? index + elements.count : index
                    guard elements.indices.contains(k) else { return mixed }
                    picked.append(elements[k])
                }
                return [.sizes(picked)]
            case (.rows(let rank)?, .fixed(let indexRank)?):
                guard let rank, let indexRank, let a = normalized(axis, rank: rank), a >= 1 else { return mixed }
                return [.rows(rank: rank - 1 + indexRank)]
            case (.fixed(let dataRank)?, .rows(let indexRank)?):
                // An embedding lookup: each row of indices picks its own rows of the table.
                guard let dataRank, let indexRank, normalized(axis, rank: dataRank) == 0 else { return mixed }
                return [.rows(rank: indexRank + dataRank - 1)]
            default:
                return mixed
            }

        case ("ai.onnx.ml", "LinearClassifier"), ("ai.onnx.ml", "TreeEnsembleClassifier"):
            guard case .rows? = x else { return mixed }
            return [.rows(rank: 1), .rows(rank: 2)]
        case ("ai.onnx.ml", "LinearRegressor"), ("ai.onnx.ml", "TreeEnsembleRegressor"), ("ai.onnx.ml", "Normalizer"):
            guard case .rows? = x else { return mixed }
            return [.rows(rank: 2)]
        case ("ai.onnx.ml", "ZipMap"):
            guard case .rows? = x else { return mixed }
            return [.rows(rank: 1)]

        default:
            return mixed
        }
    }

    /// Element-wise operators with numpy broadcasting: rows stay rows when every operand that
    /// carries them has the output's rank, and every fixed operand either has a lower rank or a
    /// first dimension of 1 (so it is repeated for each row, never matched against them).
    private static func broadcast(_ operands: [(Flow?, [Int]?)]) -> Flow {
        let rowRanks = operands.compactMap { operand -> Int?? in
            if case .rows(let rank)? = operand.0 { return .some(rank) }
            return nil
        }
        guard !rowRanks.isEmpty, Set(rowRanks).count == 1, let rank = rowRanks[0] else { return .mixed }
        for (flow, shape) in operands {
            switch flow {
            case .rows?, nil: continue
            case .fixed(let fixedRank)?:
                guard let fixedRank else { return .mixed }
                if fixedRank < rank { continue }
                guard fixedRank == rank, shape?.first == 1 else { return .mixed }
            default:
                return .mixed
            }
        }
        return .rows(rank: rank)
    }

    /// A bias added to an output of `outputRank` keeps rows apart when it is fixed and either has
    /// a lower rank or a first dimension of 1.
    private static func biasKeepsRows(_ bias: Flow?, _ shape: [Int]?, outputRank: Int) -> Bool {
        switch bias {
        case nil: return true
        case .fixed(let rank)?:
            guard let rank else { return false }
            return rank < outputRank || shape?.first == 1
        default: return false
        }
    }

    /// `axis` in `0..<rank` (negative counts from the end); nil when out of range or the rank
    /// is unknown and the axis negative. With `clamp`, out-of-range values are clamped (Shape's
    /// `start` and `end`).
    private static func normalized(_ axis: Int, rank: Int?, clamp: Bool = false) -> Int? {
        if axis >= 0 {
            guard let rank else { return axis }
            if clamp { return min(axis, rank) }
            return axis < rank ? axis : nil
        }
        guard let rank else { return nil }
        let a = axis + rank
        if clamp { return max(a, 0) }
        return a >= 0 ? a : nil
    }
}

extension RowIndependence.Flow {
    var isFixed: Bool {
        switch self {
        case .fixed: return true
        case .sizes(let elements): return !elements.contains(true)
        default: return false
        }
    }
}
