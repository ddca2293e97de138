/// The Open Inference Protocol (KServe V2) REST codec, with the Triton binary tensor extension.
/// Pure functions from bytes to typed values and back; the HTTP layer supplies the body and the
/// `Inference-Header-Content-Length` header and sends what these return.
public enum V2Codec {
    /// The header that carries the JSON part's length in binary tensor requests and responses.
    public static let headerContentLength = "Inference-Header-Content-Length"

    /// Decodes an `$inference_request`. `jsonLength` is the `Inference-Header-Content-Length`
    /// value: nil for a pure JSON body, otherwise the JSON prefix length, with binary tensors
    /// (those whose parameters carry `binary_data_size`) following in input order.
    /// Use `decodeRawBinaryRequest` for a header value of 0.
    public static func decodeRequest(body: [UInt8], jsonLength: Int? = nil) throws -> InferenceRequest {
        let headerEnd = jsonLength ?? body.count
        guard headerEnd >= 0, headerEnd <= body.count else {
            throw InferenceError(.invalidRequest, "\(headerContentLength) is \(headerEnd) but the body has only \(body.count) bytes")
        }
        let json = try body.withUnsafeBufferPointer { try JSONParser.parse(UnsafeBufferPointer(rebasing: $0[0..<headerEnd])) }
        guard case .object = json else { throw InferenceError(.invalidRequest, "the request body must be a JSON object") }
        var request = InferenceRequest(inputs: [])
        switch json["id"] {
        case nil, .null?: break
        case .string(let s)?: request.id = s
        case let other?: throw InferenceError(.invalidRequest, "'id' must be a string, got \(other.typeName)")
        }
        request.parameters = try parameters(json["parameters"], what: "request")
        guard let inputs = json["inputs"]?.items else {
            throw InferenceError(.invalidRequest, "the request needs an 'inputs' array")
        }
        var offset = headerEnd
        var names = Set<String>()
        for (k, input) in inputs.enumerated() {
            guard case .string(let name)? = input["name"] else { throw InferenceError(.invalidRequest, "inputs[\(k)] needs a 'name' string") }
            guard names.insert(name).inserted else {
                throw InferenceError(.invalidRequest, "inputs[\(k)]: the input '\(name)' is given twice")
            }
            let shape = try shapeOf(input["shape"], what: name)
            guard case .string(let dt)? = input["datatype"], let datatype = TensorDataType(rawValue: dt) else {
                throw InferenceError(.invalidRequest, "input '\(name)' has a missing or unknown 'datatype' (one of \(TensorDataType.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            let params = try parameters(input["parameters"], what: "input '\(name)'")
            let tensor: Tensor
            if let size = params["binary_data_size"] {
                guard jsonLength != nil else {
                    throw InferenceError(.invalidRequest, "input '\(name)' has binary_data_size but the request has no \(headerContentLength) header")
                }
                guard case .int(let n) = size, n >= 0 else {
                    throw InferenceError(.invalidRequest, "input '\(name)': binary_data_size must be a non-negative integer")
                }
                guard body.count - offset >= Int(n) else {
                    throw InferenceError(.invalidInput, "binary data of input '\(name)' is truncated: binary_data_size is \(n) but only \(body.count - offset) bytes remain")
                }
                tensor = try TensorCoding.fromBinary(body[offset..<(offset + Int(n))], shape: shape, datatype: datatype, what: name)
                offset += Int(n)
            } else {
                guard let data = input["data"] else { throw InferenceError(.invalidRequest, "input '\(name)' has no 'data' and no binary_data_size") }
                tensor = try TensorCoding.fromJSON(data, shape: shape, datatype: datatype, what: name)
            }
            request.inputs.append(RequestInput(name: name, tensor: tensor, parameters: params))
        }
        if offset != body.count {
            throw InferenceError(.invalidRequest, "\(body.count - offset) bytes of binary data follow the inputs that no input claims")
        }
        switch json["outputs"] {
        case nil, .null?: break
        case let value?:
            guard let outs = value.items else { throw InferenceError(.invalidRequest, "'outputs' must be an array, got \(value.typeName)") }
            // As in KServe and Triton, an empty list asks for every output, like no list.
            if outs.isEmpty { break }
            request.outputs = try outs.enumerated().map { k, o in
                guard case .string(let name)? = o["name"] else { throw InferenceError(.invalidRequest, "outputs[\(k)] needs a 'name' string") }
                return RequestedOutput(name: name, parameters: try parameters(o["parameters"], what: "output '\(name)'"))
            }
        }
        return request
    }

    /// Decodes a raw binary request (`Inference-Header-Content-Length: 0`): the body is the only
    /// input's tensor, batch 1, with at most one variable dimension (inferred from the size).
    /// Triton answers such requests with all outputs binary.
    public static func decodeRawBinaryRequest(body: [UInt8], input: TensorMetadata) throws -> InferenceRequest {
        var shape = input.shape
        if let first = shape.first, first == -1 { shape[0] = 1 }
        let variable = shape.indices.filter { shape[$0] < 0 }
        guard variable.count <= 1 else {
            throw InferenceError(.invalidInput, "a raw binary request needs input '\(input.name)' to have at most one variable dimension, it has shape \(input.shape)")
        }
        if let v = variable.first {
            guard let size = input.datatype.byteSize else {
                throw InferenceError(.invalidInput, "a raw binary BYTES request cannot have a variable dimension")
            }
            // Bytes per step of the variable dimension; the model's dims may be large enough to overflow.
            var stepBytes = size
            for (k, d) in shape.enumerated() where k != v {
                let (product, overflow) = stepBytes.multipliedReportingOverflow(by: d)
                guard !overflow else {
                    throw InferenceError(.invalidInput, "input '\(input.name)' has shape \(input.shape) with too many elements for a raw binary request")
                }
                stepBytes = product
            }
            guard stepBytes > 0, body.count % stepBytes == 0 else {
                throw InferenceError(.invalidInput, "raw binary body of \(body.count) bytes does not fit shape \(input.shape) of \(input.datatype.rawValue)")
            }
            shape[v] = body.count / stepBytes
        }
        let tensor = try TensorCoding.fromBinary(body[...], shape: shape, datatype: input.datatype, what: input.name)
        return InferenceRequest(parameters: ["binary_data_output": .bool(true)],
                                inputs: [RequestInput(name: input.name, tensor: tensor)])
    }

    /// Encodes an `$inference_response`. Outputs named in `binaryOutputs` are sent as binary
    /// tensors after the JSON (with `binary_data_size`), and `jsonLength` is set.
    public static func encodeResponse(_ r: InferenceResponse, binaryOutputs: Set<String> = []) -> EncodedBody {
        var w = JSONWriter(capacity: 128 + r.outputs.reduce(0) { $0 + $1.tensor.elementCount * 12 })
        var blobs: [UInt8] = []
        w.raw("{")
        w.key("model_name"); w.string(r.modelName)
        if let v = r.modelVersion { w.comma(); w.key("model_version"); w.string(v) }
        if let id = r.id { w.comma(); w.key("id"); w.string(id) }
        if !r.parameters.isEmpty { w.comma(); w.key("parameters"); w.parameters(r.parameters) }
        w.comma(); w.key("outputs"); w.raw("[")
        for (i, o) in r.outputs.enumerated() {
            if i > 0 { w.comma() }
            w.raw("{"); w.key("name"); w.string(o.name)
            w.comma(); w.key("datatype"); w.string(o.tensor.datatype.rawValue)
            w.comma(); w.key("shape"); w.raw("[")
            for (k, d) in o.tensor.shape.enumerated() { if k > 0 { w.comma() }; w.int(d) }
            w.raw("]")
            var params = o.parameters
            let binary = binaryOutputs.contains(o.name)
            if binary { params["binary_data_size"] = .int(Int64(TensorCoding.binarySize(o.tensor))) }
            if !params.isEmpty { w.comma(); w.key("parameters"); w.parameters(params) }
            if binary {
                TensorCoding.appendBinary(o.tensor, to: &blobs)
            } else {
                w.comma(); w.key("data"); TensorCoding.writeJSON(o.tensor, to: &w)
            }
            w.raw("}")
        }
        w.raw("]}")
        if binaryOutputs.isEmpty || !r.outputs.contains(where: { binaryOutputs.contains($0.name) }) {
            return EncodedBody(bytes: w.bytes, jsonLength: nil)
        }
        let jsonLength = w.bytes.count
        w.bytes.append(contentsOf: blobs)
        return EncodedBody(bytes: w.bytes, jsonLength: jsonLength)
    }

    /// KServe's error body: `{"error": "<message>"}`.
    public static func errorBody(_ message: String) -> [UInt8] {
        var w = JSONWriter()
        w.raw("{"); w.key("error"); w.string(message); w.raw("}")
        return w.bytes
    }

    /// `$metadata_model_response`: name, versions, platform (`onnx_onnxv1`), inputs, outputs.
    public static func encodeModelMetadata(name: String, versions: [String] = [], platform: String = "onnx_onnxv1",
                                           inputs: [TensorMetadata], outputs: [TensorMetadata]) -> [UInt8] {
        var w = JSONWriter()
        w.raw("{"); w.key("name"); w.string(name)
        if !versions.isEmpty {
            w.comma(); w.key("versions"); w.raw("[")
            for (i, v) in versions.enumerated() { if i > 0 { w.comma() }; w.string(v) }
            w.raw("]")
        }
        w.comma(); w.key("platform"); w.string(platform)
        for (label, list) in [("inputs", inputs), ("outputs", outputs)] {
            w.comma(); w.key(label); w.raw("[")
            for (i, t) in list.enumerated() {
                if i > 0 { w.comma() }
                w.raw("{"); w.key("name"); w.string(t.name)
                w.comma(); w.key("datatype"); w.string(t.datatype.rawValue)
                w.comma(); w.key("shape"); w.raw("[")
                for (k, d) in t.shape.enumerated() { if k > 0 { w.comma() }; w.int(d) }
                w.raw("]}")
            }
            w.raw("]")
        }
        w.raw("}")
        return w.bytes
    }

    static func shapeOf(_ v: JSON?, what: String) throws -> [Int] {
        guard let dims = v?.items else { throw InferenceError(.invalidRequest, "input '\(what)' needs a 'shape' array") }
        return try dims.map { d in
            guard case .int(let n) = d, n >= 0, n <= Int64(Int32.max) else {
                throw InferenceError(.invalidRequest, "input '\(what)': shape dimensions must be non-negative integers")
            }
            return Int(n)
        }
    }

    static func parameters(_ v: JSON?, what: String) throws -> [String: InferenceParameter] {
        guard let v, v != .null else { return [:] }
        guard case .object(let members) = v else { throw InferenceError(.invalidRequest, "'parameters' of \(what) must be an object") }
        var out: [String: InferenceParameter] = [:]
        for (k, value) in members {
            switch value {
            case .bool(let b): out[k] = .bool(b)
            case .int(let i): out[k] = .int(i)
            case .number(let d): out[k] = .double(d)
            case .string(let s): out[k] = .string(s)
            default: throw InferenceError(.invalidRequest, "parameter '\(k)' of \(what) must be a string, number or boolean")
            }
        }
        return out
    }
}
