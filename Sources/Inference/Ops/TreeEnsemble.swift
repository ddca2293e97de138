/// The decision trees of ai.onnx.ml `TreeEnsembleClassifier` / `TreeEnsembleRegressor`, flattened
/// into arrays indexed by node position; children are resolved to positions at load time.
struct Forest: Sendable {
    enum Mode: Sendable { case leq, lt, gte, gt, eq, neq, leaf }

    var modes: [Mode] = []
    var features: [Int] = []
    var thresholds: [Float] = []
    var trueChild: [Int] = []
    var falseChild: [Int] = []
    var missingTrue: [Bool] = []
    var roots: [Int] = []
    /// Per node position: (output index, weight) pairs of that leaf.
    var leafWeights: [[(Int, Float)]] = []
    var featureCount = 0

    init(_ n: Node, prefix: String, outputs: Int) throws {
        guard let treeIds = n.ints("nodes_treeids"), let nodeIds = n.ints("nodes_nodeids"),
              let featureIds = n.ints("nodes_featureids"), let modeNames = n.strings("nodes_modes"),
              let trues = n.ints("nodes_truenodeids"), let falses = n.ints("nodes_falsenodeids") else {
            throw n.fail(.invalidModel, "missing nodes_* attributes")
        }
        let values = n.floats("nodes_values") ?? n.floats("nodes_values_as_tensor") ?? []
        let count = treeIds.count
        guard [nodeIds.count, featureIds.count, modeNames.count, trues.count, falses.count, values.count].allSatisfy({ $0 == count }) else {
            throw n.fail(.invalidModel, "nodes_* attributes have different lengths")
        }
        let missing = n.ints("nodes_missing_value_tracks_true") ?? []
        var position: [Int64: Int] = [:]
        func key(_ t: Int, _ id: Int) -> Int64 { Int64(t) << 32 | Int64(id & 0xffff_ffff) }
        for i in 0..<count { position[key(treeIds[i], nodeIds[i])] = i }
        var isChild = [Bool](repeating: false, count: count)
        for i in 0..<count {
            let mode: Mode
            switch modeNames[i] {
            case "BRANCH_LEQ": mode = .leq
            case "BRANCH_LT": mode = .lt
            case "BRANCH_GTE": mode = .gte
            case "BRANCH_GT": mode = .gt
            case "BRANCH_EQ": mode = .eq
            case "BRANCH_NEQ": mode = .neq
            case "LEAF": mode = .leaf
            default: throw n.fail(.unsupportedAttribute, "node mode '\(modeNames[i])' is not supported")
            }
            modes.append(mode)
            features.append(featureIds[i])
            thresholds.append(values[i])
            missingTrue.append(i < missing.count && missing[i] != 0)
            if mode == .leaf {
                trueChild.append(-1); falseChild.append(-1)
            } else {
                guard let t = position[key(treeIds[i], trues[i])], let f = position[key(treeIds[i], falses[i])] else {
                    throw n.fail(.invalidModel, "tree \(treeIds[i]) node \(nodeIds[i]) points to a missing child")
                }
                guard featureIds[i] >= 0 else { throw n.fail(.invalidModel, "node \(nodeIds[i]) reads negative feature \(featureIds[i])") }
                trueChild.append(t); falseChild.append(f)
                isChild[t] = true; isChild[f] = true
                featureCount = max(featureCount, featureIds[i] + 1)
            }
        }
        roots = (0..<count).filter { !isChild[$0] }
        leafWeights = Array(repeating: [], count: count)
        guard let wTrees = n.ints("\(prefix)_treeids"), let wNodes = n.ints("\(prefix)_nodeids"),
              let wIds = n.ints("\(prefix)_ids") else {
            throw n.fail(.invalidModel, "missing \(prefix)_* attributes")
        }
        let weights = n.floats("\(prefix)_weights") ?? n.floats("\(prefix)_weights_as_tensor") ?? []
        guard [wNodes.count, wIds.count, weights.count].allSatisfy({ $0 == wTrees.count }) else {
            throw n.fail(.invalidModel, "\(prefix)_* attributes have different lengths")
        }
        for j in 0..<wTrees.count {
            guard let p = position[key(wTrees[j], wNodes[j])], wIds[j] >= 0, wIds[j] < outputs else {
                throw n.fail(.invalidModel, "\(prefix) weight \(j) refers to a missing node or output \(wIds[j])")
            }
            leafWeights[p].append((wIds[j], weights[j]))
        }
    }

    /// The leaf position reached by `row` from `root`.
    @inline(__always)
    func leaf(from root: Int, _ row: UnsafeBufferPointer<Float>) -> Int {
        var p = root
        var steps = 0
        while true {
            let mode = modes[p]
            // A malformed model could loop; a path longer than the node count stops there.
            if mode == .leaf || steps > modes.count { return p }
            steps += 1
            let x = row[features[p]], v = thresholds[p]
            let goTrue: Bool
            if x.isNaN && missingTrue[p] {
                goTrue = true
            } else {
                switch mode {
                case .leq: goTrue = x <= v
                case .lt: goTrue = x < v
                case .gte: goTrue = x >= v
                case .gt: goTrue = x > v
                case .eq: goTrue = x == v
                case .neq: goTrue = x != v
                case .leaf: goTrue = false
                }
            }
            p = goTrue ? trueChild[p] : falseChild[p]
        }
    }

    /// Sums (or aggregates) the leaf weights of all trees for each row.
    func scores(_ x: [Float], rows: Int, features f: Int, outputs: Int, aggregate: String) throws -> [Float] {
        guard f >= featureCount else {
            throw InferenceError(.shapeMismatch, "the tree ensemble reads feature \(featureCount - 1) but rows have \(f) features")
        }
        var out = [Float](repeating: 0, count: rows * outputs)
        x.withUnsafeBufferPointer { xp in
            for r in 0..<rows {
                let row = UnsafeBufferPointer(rebasing: xp[(r * f)..<((r + 1) * f)])
                var first = [Bool](repeating: true, count: outputs)
                for root in roots {
                    for (o, w) in leafWeights[leaf(from: root, row)] {
                        let k = r * outputs + o
                        switch aggregate {
                        case "MIN": out[k] = first[o] ? w : min(out[k], w)
                        case "MAX": out[k] = first[o] ? w : max(out[k], w)
                        default: out[k] += w
                        }
                        first[o] = false
                    }
                }
                if aggregate == "AVERAGE" && !roots.isEmpty {
                    for o in 0..<outputs { out[r * outputs + o] /= Float(roots.count) }
                }
            }
        }
        return out
    }
}

/// ai.onnx.ml `TreeEnsembleClassifier` (ONNX Runtime semantics, including its binary case).
struct TreeClassifierKernel: Kernel {
    let forest: Forest
    let labels: ClassLabels
    let post: PostTransform
    let baseValues: [Float]
    let binary: Bool

    init(_ n: Node) throws {
        labels = try ClassLabels(n, ints: "classlabels_int64s", strings: "classlabels_strings")
        forest = try Forest(n, prefix: "class", outputs: labels.count)
        post = try PostTransform(n)
        baseValues = n.floats("base_values") ?? n.floats("base_values_as_tensor") ?? []
        let classIds = Set(n.ints("class_ids") ?? [])
        binary = labels.count == 2 && classIds.count == 1
        guard baseValues.isEmpty || baseValues.count == labels.count else {
            throw n.fail(.invalidModel, "base_values has \(baseValues.count) entries for \(labels.count) classes")
        }
    }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let (rows, f, x) = try featureRows(try required(frame, inputs, 0))
        let c = labels.count
        var s = try forest.scores(x, rows: rows, features: f, outputs: c, aggregate: "SUM")
        var picks = [Int](repeating: 0, count: rows)
        for r in 0..<rows {
            let base = r * c
            for k in 0..<baseValues.count { s[base + k] += baseValues[k] }
            if binary {
                // One weight column: the score is for class 1.
                let v = s[base]
                picks[r] = v > 0.5 ? 1 : 0
                s[base] = 1 - v; s[base + 1] = v
            } else {
                picks[r] = argmax(s[base..<(base + c)])
            }
            var row = s[base..<(base + c)]
            post.apply(&row)
            s.replaceSubrange(base..<(base + c), with: row)
        }
        labels.write(picks, into: &frame.slots[outputs[0]])
        if outputs.count > 1 {
            frame.slots[outputs[1]].reset(.float32, [rows, c])
            frame.slots[outputs[1]].f = s
        }
    }
}

/// ai.onnx.ml `TreeEnsembleRegressor` (SUM, AVERAGE, MIN, MAX aggregation).
struct TreeRegressorKernel: Kernel {
    let forest: Forest
    let targets: Int
    let aggregate: String
    let baseValues: [Float]

    init(_ n: Node) throws {
        targets = n.int("n_targets", 1)
        guard targets >= 1 else { throw n.fail(.invalidModel, "n_targets must be at least 1, not \(targets)") }
        forest = try Forest(n, prefix: "target", outputs: targets)
        aggregate = n.string("aggregate_function", "SUM")
        guard ["SUM", "AVERAGE", "MIN", "MAX"].contains(aggregate) else {
            throw n.fail(.unsupportedAttribute, "aggregate_function '\(aggregate)' is not supported")
        }
        guard try PostTransform(n) == .none else { throw n.fail(.unsupportedAttribute, "post_transform must be NONE") }
        baseValues = n.floats("base_values") ?? n.floats("base_values_as_tensor") ?? []
    }

    func run(_ frame: inout Frame, _ inputs: [Ref], _ outputs: [Int]) throws {
        let (rows, f, x) = try featureRows(try required(frame, inputs, 0))
        var s = try forest.scores(x, rows: rows, features: f, outputs: targets, aggregate: aggregate)
        if !baseValues.isEmpty { for r in 0..<rows { for t in 0..<min(targets, baseValues.count) { s[r * targets + t] += baseValues[t] } } }
        frame.slots[outputs[0]].reset(.float32, [rows, targets])
        frame.slots[outputs[0]].f = s
    }
}
