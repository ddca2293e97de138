/// Runs a model with buffers of its own. A session is **not** safe for concurrent use: give each
/// concurrent request its own session (`OnnxModel.makeSession()`), or call `OnnxModel.run`, which
/// keeps a small pool of sessions. Sessions keep their intermediate buffers between runs, so after
/// the first run at a given batch size the hot path does not allocate for intermediates.
public final class InferenceSession {
    let plan: ExecutionPlan
    var frame: Frame

    init(plan: ExecutionPlan) {
        self.plan = plan
        frame = Frame(slots: Array(repeating: Value(), count: plan.slotCount), constants: plan.constants)
    }

    /// Runs the model. `inputs` must name every model input; `outputs` selects outputs by name
    /// (nil = all). Throws `invalid_input` for missing, unknown or mistyped inputs and
    /// `shape_mismatch` when shapes are incompatible; never traps on bad input.
    public func run(_ inputs: [String: Tensor], outputs wanted: [String]? = nil) throws -> [String: Tensor] {
        let selected = wanted.map(Set.init)
        if let selected, let bad = selected.first(where: { name in !plan.outputs.contains { $0.io.name == name } }) {
            throw InferenceError(.unknownOutput, "unknown output '\(bad)'; the model's outputs are \(plan.outputs.map(\.io.name))")
        }
        for name in inputs.keys where !plan.inputs.contains(where: { $0.io.name == name }) {
            throw InferenceError(.invalidInput, "unknown input '\(name)'; the model's inputs are \(plan.inputs.map(\.io.name))")
        }
        for (io, slot) in plan.inputs {
            guard let t = inputs[io.name] else {
                throw InferenceError(.invalidInput, "missing input '\(io.name)'")
            }
            try t.validate()
            try check(t, against: io)
            frame.slots[slot] = try Value(t)
        }
        for step in plan.steps {
            do {
                try step.kernel.run(&frame, step.inputs, step.outputs)
            } catch let e as InferenceError {
                throw InferenceError(e.code, "\(step.label): \(e.message)")
            }
        }
        var result: [String: Tensor] = [:]
        for (io, ref) in plan.outputs where selected?.contains(io.name) ?? true {
            if let v = frame.get(ref) { result[io.name] = v.tensor }
        }
        return result
    }

    private func check(_ t: Tensor, against io: GraphIO) throws {
        if let type = io.type, type.protocolType != t.datatype {
            throw InferenceError(.invalidInput, "input '\(io.name)' expects datatype \(type.protocolType.rawValue), got \(t.datatype.rawValue)")
        }
        guard let shape = io.shape else { return }
        let ok = shape.count == t.shape.count && zip(shape, t.shape).allSatisfy { $0 == -1 || $0 == $1 }
        guard ok else {
            throw InferenceError(.invalidInput, "input '\(io.name)' expects shape \(shape) (-1 = any), got \(t.shape)")
        }
    }
}
