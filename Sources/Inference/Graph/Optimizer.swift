/// Load-time graph rewrites: drop no-op nodes, fold constants, fold BatchNormalization into the
/// preceding Conv, fuse MatMul + bias Add, fuse activations into Gemm/Conv/MatMul, and fuse a
/// MaxPool into the Conv it reads.
struct Optimizer {
    var graph: Graph

    mutating func run() throws -> Graph {
        removeNoOps()
        try foldConstants()
        foldBatchNorm()
        fuseMatMulBias()
        fuseActivations()
        fuseMaxPools()
        pretransposeGemmWeights()
        return graph
    }

    private var outputNames: Set<String> { Set(graph.outputs.map(\.name)) }

    /// Identity and Dropout (single output) whose output is not a graph output are bypassed.
    private mutating func removeNoOps() {
        let outs = outputNames
        var alias: [String: String] = [:]
        var kept: [Node] = []
        for var n in graph.nodes {
            n.inputs = n.inputs.map { alias[$0] ?? $0 }
            let isNoOp = (n.opType == "Identity" || n.opType == "Dropout") && n.domain.isEmpty
                && (n.outputs.count == 1 || n.outputs.dropFirst().allSatisfy(\.isEmpty))
            if isNoOp, let src = n.input(0), !outs.contains(n.outputs[0]) {
                alias[n.outputs[0]] = src
            } else {
                kept.append(n)
            }
        }
        graph.nodes = kept
    }

    /// Runs every node whose inputs are all constants once, at load, and keeps its outputs as constants.
    private mutating func foldConstants() throws {
        var kept: [Node] = []
        for n in graph.nodes {
            let present = n.inputs.filter { !$0.isEmpty }
            guard !present.isEmpty, present.allSatisfy({ graph.constants[$0] != nil }),
                  n.domain.isEmpty, !outputNames.contains(where: n.outputs.contains) else {
                kept.append(n); continue
            }
            let kernel = try OpRegistry.kernel(for: n, constants: graph.constants)
            var frame = Frame(slots: Array(repeating: Value(), count: n.outputs.count), constants: present.map { graph.constants[$0]! })
            var k = 0
            let refs: [Ref] = n.inputs.map { name in
                if name.isEmpty { return .none }
                defer { k += 1 }
                return .constant(k)
            }
            do {
                try kernel.run(&frame, refs, Array(0..<n.outputs.count))
            } catch let e as InferenceError {
                throw n.fail(e.code, e.message)
            }
            for (j, name) in n.outputs.enumerated() where !name.isEmpty { graph.constants[name] = frame.slots[j] }
        }
        graph.nodes = kept
    }

    /// Conv → BatchNormalization (constant parameters, Conv output read only by the BN) becomes
    /// one Conv with scaled weights and shifted bias.
    private mutating func foldBatchNorm() {
        let readers = graph.readerCounts()
        let producer = graph.producerIndex()
        var removed = Set<Int>()
        for (bi, bn) in graph.nodes.enumerated() where bn.opType == "BatchNormalization" && bn.domain.isEmpty {
            guard let x = bn.input(0), let ci = producer[x], graph.nodes[ci].opType == "Conv", readers[x] == 1,
                  bn.int("training_mode", 0) == 0, bn.outputs.count == 1,
                  let params = try? (1...4).map({ i -> [Float] in
                      guard let name = bn.input(i), let v = graph.constants[name] else { throw InferenceError(.invalidModel, "") }
                      return v.asFloats
                  }),
                  let wName = graph.nodes[ci].input(1), var w = graph.constants[wName], w.type == .float32,
                  let m = w.shape.first, params.allSatisfy({ $0.count == m }) else { continue }
            let conv = graph.nodes[ci]
            var bias = conv.input(2).flatMap { graph.constants[$0]?.asFloats } ?? Array(repeating: 0, count: m)
            if conv.input(2) != nil && bias.count != m { continue }
            let eps = bn.float("epsilon", 1e-5)
            let per = w.count / m
            for ch in 0..<m {
                let scale = params[0][ch] / (params[3][ch] + eps).squareRoot()
                for j in 0..<per { w.f[ch * per + j] *= scale }
                bias[ch] = (bias[ch] - params[2][ch]) * scale + params[1][ch]
            }
            let wNew = "\(wName)__bnfold\(bi)", bNew = "\(bn.outputs[0])__bnbias"
            graph.constants[wNew] = w
            graph.constants[bNew] = Value(shape: [m], floats: bias)
            graph.nodes[ci].inputs = [conv.inputs[0], wNew, bNew]
            graph.nodes[ci].outputs = [bn.outputs[0]]
            removed.insert(bi)
        }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// MatMul(X, W constant 2-D) → Add(·, bias constant of N values) becomes MatMul with a bias input.
    private mutating func fuseMatMulBias() {
        let readers = graph.readerCounts()
        let producer = graph.producerIndex()
        var removed = Set<Int>()
        for (ai, add) in graph.nodes.enumerated() where add.opType == "Add" && add.domain.isEmpty && add.inputs.count == 2 {
            for side in 0..<2 {
                let mmOut = add.inputs[side], biasName = add.inputs[1 - side]
                guard let mi = producer[mmOut], graph.nodes[mi].opType == "MatMul", graph.nodes[mi].inputs.count == 2,
                      readers[mmOut] == 1, !removed.contains(mi),
                      let w = graph.nodes[mi].input(1).flatMap({ graph.constants[$0] }), w.shape.count == 2,
                      let b = graph.constants[biasName], b.type == .float32,
                      b.count == w.shape[1], b.shape.last == w.shape[1] || b.count == 1,
                      b.shape.dropLast().allSatisfy({ $0 == 1 }) else { continue }
                graph.nodes[mi].inputs.append(biasName)
                graph.nodes[mi].outputs = add.outputs
                removed.insert(ai)
                break
            }
        }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Gemm/Conv/MatMul followed by Relu, LeakyRelu, Clip (constant bounds), Sigmoid or Tanh that
    /// is the only reader: the activation runs in the producer's output pass.
    private mutating func fuseActivations() {
        let readers = graph.readerCounts()
        let producer = graph.producerIndex()
        var removed = Set<Int>()
        for (ai, act) in graph.nodes.enumerated() where act.domain.isEmpty {
            guard let x = act.input(0), let pi = producer[x], ["Gemm", "Conv", "MatMul"].contains(graph.nodes[pi].opType),
                  graph.nodes[pi].fused == nil, readers[x] == 1, !removed.contains(pi) else { continue }
            let activation: Activation
            switch act.opType {
            case "Relu": activation = .relu
            case "LeakyRelu": activation = .leakyRelu(act.float("alpha", 0.01))
            case "Sigmoid": activation = .sigmoid
            case "Tanh": activation = .tanh
            case "Clip":
                let lo = act.input(1).map { graph.constants[$0]?.asFloats.first } ?? -.infinity
                let hi = act.input(2).map { graph.constants[$0]?.asFloats.first } ?? .infinity
                guard let lo, let hi else { continue }
                activation = .clip(lo, hi)
            default: continue
            }
            graph.nodes[pi].fused = activation
            graph.nodes[pi].outputs = act.outputs
            removed.insert(ai)
        }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Conv (activation already fused) → MaxPool that is the Conv output's only reader and has no
    /// Indices output: the Conv pools each output plane while it is in cache, so the full-size
    /// activation map is never written. A MaxPool the registry would reject stays as it is and
    /// fails at load with its own error.
    private mutating func fuseMaxPools() {
        let readers = graph.readerCounts()
        let producer = graph.producerIndex()
        var removed = Set<Int>()
        for (pi, mp) in graph.nodes.enumerated() where mp.opType == "MaxPool" && mp.domain.isEmpty {
            guard let x = mp.input(0), let ci = producer[x], graph.nodes[ci].opType == "Conv", graph.nodes[ci].domain.isEmpty,
                  graph.nodes[ci].fusedMaxPool == nil, readers[x] == 1, graph.nodes[ci].outputs.count == 1,
                  mp.outputs.count == 1 || mp.outputs.dropFirst().allSatisfy(\.isEmpty),
                  let kernel = mp.ints("kernel_shape"),
                  let w = graph.nodes[ci].input(1).flatMap({ graph.constants[$0] }), kernel.count == w.shape.count - 2,
                  (try? OpRegistry.kernel(for: mp, constants: graph.constants)) != nil,
                  let window = try? Window(mp, kernel: kernel) else { continue }
            graph.nodes[ci].fusedMaxPool = window
            graph.nodes[ci].outputs = [mp.outputs[0]]
            removed.insert(pi)
        }
        graph.nodes = graph.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
    }

    /// Gemm with a constant B and transB=1 (PyTorch's [out, in] layout): store Bᵀ once so
    /// sgemm packs B with its contiguous copy routine (perf showed the transposed packing at a
    /// quarter of the MLP's time at batch 32).
    private mutating func pretransposeGemmWeights() {
        let readers = graph.readerCounts()
        for k in graph.nodes.indices where graph.nodes[k].opType == "Gemm" && graph.nodes[k].domain.isEmpty {
            let n = graph.nodes[k]
            guard n.int("transB", 0) != 0, let name = n.input(1), readers[name] == 1,
                  let b = graph.constants[name], b.type == .float32, b.shape.count == 2 else { continue }
            let rows = b.shape[0], cols = b.shape[1]
            let t = [Float](unsafeUninitializedCapacity: b.f.count) { t, count in
                b.f.withUnsafeBufferPointer { src in
                    // 32×32 tiles, so both sides stay in cache (a few ms of load time for the MLP otherwise).
                    for r0 in stride(from: 0, to: rows, by: 32) {
                        for c0 in stride(from: 0, to: cols, by: 32) {
                            for c in c0..<min(c0 + 32, cols) {
                                for r in r0..<min(r0 + 32, rows) { t[c * rows + r] = src[r * cols + c] }
                            }
                        }
                    }
                }
                count = rows * cols
            }
            graph.constants[name] = Value(shape: [cols, rows], floats: t)
            graph.nodes[k].attributes["transB"] = .int(0)
        }
    }
}
