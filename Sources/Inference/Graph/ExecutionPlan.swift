/// One compiled node: its kernel and where it reads and writes.
struct Step: Sendable {
    let kernel: any Kernel
    let inputs: [Ref]
    let outputs: [Int]
    let label: String
}

/// The compiled, immutable form of a model: steps in order, constants, and a slot assignment
/// planned at load time. Intermediate values share slots when their lifetimes do not overlap, so
/// a session needs only `slotCount` buffers, which it keeps and reuses between runs.
struct ExecutionPlan: Sendable {
    let steps: [Step]
    let constants: [Value]
    let slotCount: Int
    /// Graph inputs and their dedicated slots (never reused, so callers' buffers are not copied).
    let inputs: [(io: GraphIO, slot: Int)]
    /// Graph outputs and where to read them.
    let outputs: [(io: GraphIO, ref: Ref)]

    init(_ graph: Graph) throws {
        var constIndex: [String: Int] = [:]
        var constants: [Value] = []
        for (name, v) in graph.constants.sorted(by: { $0.key < $1.key }) {
            constIndex[name] = constants.count
            constants.append(v)
        }
        // Last step that reads each value (graph outputs live to the end).
        var lastUse: [String: Int] = [:]
        for (k, n) in graph.nodes.enumerated() { for i in n.inputs where !i.isEmpty { lastUse[i] = k } }
        for o in graph.outputs { lastUse[o.name] = Int.max }

        var slotOf: [String: Int] = [:]
        var slotCount = 0
        var free: [Int] = []
        var inputs: [(GraphIO, Int)] = []
        for io in graph.inputs {
            slotOf[io.name] = slotCount
            inputs.append((io, slotCount))
            slotCount += 1
        }
        let pinned = Set(graph.inputs.map(\.name))
        func ref(_ name: String) throws -> Ref {
            if name.isEmpty { return .none }
            if let s = slotOf[name] { return .slot(s) }
            if let c = constIndex[name] { return .constant(c) }
            throw InferenceError(.invalidModel, "value '\(name)' is used before it is produced (the graph is not topologically sorted or an input is missing)")
        }
        var steps: [Step] = []
        for (k, n) in graph.nodes.enumerated() {
            let kernel = try OpRegistry.kernel(for: n, constants: graph.constants)
            let inRefs: [Ref]
            do { inRefs = try n.inputs.map(ref) } catch let e as InferenceError { throw n.fail(e.code, e.message) }
            var outSlots: [Int] = []
            var recycle: [Int] = []
            for o in n.outputs {
                // Single assignment: an output that reuses the name of an input, a constant or
                // another node's output would change what kernels packed at load time read.
                if !o.isEmpty, slotOf[o] != nil || constIndex[o] != nil || graph.constants[o] != nil {
                    throw n.fail(.invalidModel, "output '\(o)' is already the name of a graph input, an initializer or another node's output")
                }
                let s: Int
                if let reused = free.popLast() { s = reused } else { s = slotCount; slotCount += 1 }
                if !o.isEmpty { slotOf[o] = s }
                outSlots.append(s)
                if o.isEmpty || lastUse[o] == nil { recycle.append(s) }  // unread output: recycle after this step
            }
            free.append(contentsOf: recycle)
            // Release inputs whose last reader is this step.
            for name in Set(n.inputs) where !name.isEmpty && lastUse[name] == k && !pinned.contains(name) {
                if let s = slotOf[name], !outSlots.contains(s) { free.append(s) }
            }
            steps.append(Step(kernel: kernel, inputs: inRefs, outputs: outSlots, label: n.label))
        }
        // A constant that every reader packed into a layout of its own at load is not kept twice.
        var unpackedReaders = Set<Int>()
        for step in steps {
            for (i, r) in step.inputs.enumerated() where i != step.kernel.packedInput {
                if case .constant(let c) = r { unpackedReaders.insert(c) }
            }
        }
        let graphOutputs = Set(graph.outputs.map(\.name))
        for (name, c) in constIndex where !unpackedReaders.contains(c) && !graphOutputs.contains(name) {
            constants[c] = Value()
        }
        self.steps = steps
        self.constants = constants
        self.slotCount = slotCount
        self.inputs = inputs
        self.outputs = try graph.outputs.map { o in
            let r = try ref(o.name)
            guard r != .none else { throw InferenceError(.invalidModel, "graph output '\(o.name)' is never produced") }
            return (o, r)
        }
    }
}
