/// The KServe V1 (TF-Serving style) `:predict` codec: `{"instances": [...]}` or
/// `{"inputs": [...]}` in, `{"predictions": [...]}` out.
public enum V1Codec {
    /// Decodes a predict body for a model with the given inputs. Instances are rows of the model's
    /// single input (numbers or nested arrays), or objects keyed by input name (one row each).
    public static func decodePredict(body: [UInt8], inputs: [TensorMetadata]) throws -> [String: Tensor] {
        let json = try JSONParser.parse(body)
        guard case .object = json else { throw InferenceError(.invalidRequest, "the request body must be a JSON object") }
        let rowsJSON: JSON
        switch (json["instances"], json["inputs"]) {
        case (let i?, nil), (nil, let i?): rowsJSON = i
        case (.some, .some): throw InferenceError(.invalidRequest, "use either 'instances' or 'inputs', not both")
        case (nil, nil): throw InferenceError(.invalidRequest, "expected 'instances' or 'inputs' in the request body")
        }
        guard let rows = rowsJSON.items, !rows.isEmpty else {
            throw InferenceError(.invalidRequest, "'instances' must be a non-empty array")
        }
        if case .object = rows[0] {
            var out: [String: Tensor] = [:]
            for meta in inputs {
                let column = try rows.enumerated().map { k, row -> JSON in
                    guard let v = row[meta.name] else { throw InferenceError(.invalidInput, "instance \(k) has no '\(meta.name)'") }
                    return v
                }
                out[meta.name] = try stack(column, meta)
            }
            return out
        }
        guard inputs.count == 1, let meta = inputs.first else {
            throw InferenceError(.invalidInput, "the model has \(inputs.count) inputs; send instances as objects keyed by input name")
        }
        return [meta.name: try stack(rows, meta)]
    }

    /// Stacks rows into one tensor: shape = [rows] + the shape of the first row.
    private static func stack(_ rows: [JSON], _ meta: TensorMetadata) throws -> Tensor {
        var rowShape: [Int] = []
        var probe = rows[0]
        while let items = probe.items { rowShape.append(items.count); probe = items.first ?? .null }
        let shape = [rows.count] + rowShape
        for (k, row) in rows.enumerated() where shapeOf(row) != rowShape {
            throw InferenceError(.invalidInput, "instance \(k) has shape \(shapeOf(row)), instance 0 has \(rowShape)")
        }
        return try TensorCoding.fromJSON(.array(rows), shape: shape, datatype: meta.datatype, what: meta.name)
    }

    private static func shapeOf(_ v: JSON) -> [Int] {
        guard let items = v.items else { return [] }
        return [items.count] + (items.first.map(shapeOf) ?? [])
    }

    /// Encodes `{"predictions": [...]}`: one entry per row of `tensor` (nested arrays for rows of
    /// rank ≥ 1, scalars for rank-1 tensors, and objects `{label: value}` for ZipMap outputs).
    public static func encodePredictions(_ tensor: Tensor) -> [UInt8] {
        var w = JSONWriter(capacity: 64 + tensor.elementCount * 12)
        w.raw("{"); w.key("predictions"); w.raw("[")
        let rows = tensor.shape.first ?? 1
        let width = rows == 0 ? 0 : tensor.elementCount / rows
        let inner = Array(tensor.shape.dropFirst())
        for r in 0..<rows {
            if r > 0 { w.comma() }
            // Labels name the columns of a [rows, columns] matrix; anything else is written plainly.
            if let labels = tensor.columnLabels, tensor.shape.count == 2, labels.count == tensor.shape[1], let f = tensor.floats {
                w.raw("{")
                for c in 0..<width {
                    if c > 0 { w.comma() }
                    switch labels {
                    case .int64(let l): w.key(String(l[c]))
                    case .strings(let l): w.key(l[c])
                    }
                    w.float(f[r * width + c])
                }
                w.raw("}")
            } else {
                writeNested(tensor, from: r * width, shape: inner, to: &w)
            }
        }
        w.raw("]}")
        return w.bytes
    }

    private static func writeNested(_ t: Tensor, from start: Int, shape: [Int], to w: inout JSONWriter) {
        guard let d = shape.first else { writeElement(t, start, to: &w); return }
        let step = shape.dropFirst().reduce(1, *)
        w.raw("[")
        for i in 0..<d {
            if i > 0 { w.comma() }
            writeNested(t, from: start + i * step, shape: Array(shape.dropFirst()), to: &w)
        }
        w.raw("]")
    }

    private static func writeElement(_ t: Tensor, _ i: Int, to w: inout JSONWriter) {
        switch t.storage {
        case .float32(let a): w.float(a[i])
        case .float64(let a): w.double(a[i])
        case .int64(let a): w.int(a[i])
        case .int32(let a): w.int(a[i])
        case .bool(let a): w.bool(a[i])
        case .bytes(let a): w.string(String(decoding: a[i], as: UTF8.self))
        case .raw:
            var tmp = JSONWriter()
            let one = Tensor(unchecked: [1], datatype: t.datatype, storage: .raw(rawElement(t, i)))
            TensorCoding.writeJSON(one, to: &tmp)
            w.bytes.append(contentsOf: tmp.bytes.dropFirst().dropLast())
        }
    }

    private static func rawElement(_ t: Tensor, _ i: Int) -> [UInt8] {
        guard case .raw(let r) = t.storage, let size = t.datatype.byteSize else { return [] }
        return Array(r[(i * size)..<((i + 1) * size)])
    }
}

extension InferenceError {
    /// The HTTP status KServe's model server uses for this kind of error (`errors.py`): 400 for
    /// invalid input, 404 for an unknown model, 503 when not ready, 501 for unsupported features,
    /// 500 otherwise. The edge (Platform/Gateway) decides; this is the protocol's convention.
    public var protocolStatus: Int {
        switch code {
        case .invalidInput, .invalidRequest, .invalidTensor, .shapeMismatch, .unknownOutput: 400
        case .modelNotFound: 404
        case .modelNotReady: 503
        case .unsupportedOperator, .unsupportedAttribute, .unsupportedOpset: 501
        default: 500
        }
    }
}
