#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import SwiftProtobuf

/// Turns ONNX protobuf bytes into a `Graph`: opset checks, initializers, `Constant` nodes,
/// attributes, declared inputs and outputs.
struct GraphDecoder {
    /// The default-domain opsets this engine runs (op semantics checked for 13 through 25).
    static let supportedOpsets = 13...25
    /// The `ai.onnx.ml` opsets this engine runs.
    static let supportedMLOpsets = 1...5

    let tensors: TensorDecoder

    func decode(_ bytes: Data) throws -> Graph {
        let model: Onnx_ModelProto
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            model = try Onnx_ModelProto(serializedBytes: bytes, options: options)
        } catch {
            throw InferenceError(.invalidModel, "not an ONNX model (protobuf decoding failed: \(error))")
        }
        guard model.hasGraph else { throw InferenceError(.invalidModel, "the model has no graph") }
        guard model.irVersion >= 3 else {
            throw InferenceError(.unsupportedOpset, "IR version \(model.irVersion) is too old (3 or newer is needed)")
        }
        var opsets: [String: Int] = [:]
        for o in model.opsetImport {
            opsets[o.domain == "ai.onnx" ? "" : o.domain] = Int(o.version)
        }
        if let v = opsets[""], !Self.supportedOpsets.contains(v) {
            throw InferenceError(.unsupportedOpset, "opset \(v) of the default domain is not supported (\(Self.supportedOpsets.lowerBound)–\(Self.supportedOpsets.upperBound))")
        }
        if let v = opsets["ai.onnx.ml"], !Self.supportedMLOpsets.contains(v) {
            throw InferenceError(.unsupportedOpset, "ai.onnx.ml opset \(v) is not supported (1–5)")
        }
        let g = model.graph
        var constants: [String: Value] = [:]
        for t in g.initializer {
            constants[t.name] = try tensors.decode(t, what: "initializer '\(t.name)'")
        }
        if !g.sparseInitializer.isEmpty {
            throw InferenceError(.unsupportedAttribute, "sparse initializers are not supported")
        }
        var nodes: [Node] = []
        nodes.reserveCapacity(g.node.count)
        for p in g.node {
            let node = try decodeNode(p)
            guard opsets[node.domain] != nil else {
                throw node.fail(.unsupportedOpset, "the model does not import the domain '\(node.domain)'")
            }
            if node.opType == "Constant" && node.domain.isEmpty {
                constants[node.outputs[0]] = try constantValue(node)
            } else {
                nodes.append(node)
            }
        }
        let inputs = try g.input.filter { constants[$0.name] == nil }.map { try io($0) }
        let outputs = try g.output.map { try io($0) }
        if inputs.isEmpty && outputs.isEmpty {
            throw InferenceError(.invalidModel, "the graph declares no inputs and no outputs")
        }
        return Graph(nodes: nodes, constants: constants, inputs: inputs, outputs: outputs, opsets: opsets)
    }

    private func decodeNode(_ p: Onnx_NodeProto) throws -> Node {
        let domain = p.domain == "ai.onnx" ? "" : p.domain
        var node = Node(name: p.name, opType: p.opType, domain: domain, inputs: p.input, outputs: p.output, attributes: [:])
        if node.outputs.isEmpty { throw node.fail(.invalidModel, "the node has no outputs") }
        for a in p.attribute {
            if !a.refAttrName.isEmpty {
                throw node.fail(.unsupportedAttribute, "attribute '\(a.name)' refers to a function attribute")
            }
            let value: Attribute
            switch a.type {
            case .float: value = .float(a.f)
            case .int: value = .int(Int(a.i))
            case .string: value = .string(String(decoding: a.s, as: UTF8.self))
            case .tensor: value = .tensor(try tensors.decode(a.t, what: "\(node.label) attribute '\(a.name)'"))
            case .floats: value = .floats(a.floats)
            case .ints: value = .ints(a.ints.map { Int($0) })
            case .strings: value = .strings(a.strings.map { String(decoding: $0, as: UTF8.self) })
            default:
                throw node.fail(.unsupportedAttribute, "attribute '\(a.name)' has unsupported type \(a.type)")
            }
            node.attributes[a.name] = value
        }
        return node
    }

    private func constantValue(_ n: Node) throws -> Value {
        guard n.attributes.count == 1, let (key, attr) = n.attributes.first else {
            throw n.fail(.invalidModel, "Constant needs exactly one value attribute")
        }
        switch (key, attr) {
        case ("value", .tensor(let v)): return v
        case ("value_float", .float(let x)): return Value(shape: [], floats: [x])
        case ("value_floats", .floats(let x)): return Value(shape: [x.count], floats: x)
        case ("value_int", .int(let x)): return Value(shape: [], type: .int64, ints: [Int64(x)])
        case ("value_ints", .ints(let x)): return Value(shape: [x.count], type: .int64, ints: x.map(Int64.init))
        case ("value_string", .string(let x)): return Value(shape: [], strings: [x])
        case ("value_strings", .strings(let x)): return Value(shape: [x.count], strings: x)
        default: throw n.fail(.unsupportedAttribute, "Constant attribute '\(key)' is not supported")
        }
    }

    /// ONNX's name for a `TensorProto.DataType` number.
    static func onnxTypeName(_ number: Int) -> String {
        let names = [1: "FLOAT", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64", 8: "STRING", 9: "BOOL",
                     10: "FLOAT16", 11: "DOUBLE", 12: "UINT32", 13: "UINT64", 14: "COMPLEX64", 15: "COMPLEX128", 16: "BFLOAT16"]
        return names[number].map { "\($0) (\(number))" } ?? "\(number)"
    }

    private func io(_ v: Onnx_ValueInfoProto) throws -> GraphIO {
        switch v.type.value {
        case .tensorType(let t):
            let shape: [Int]? = t.hasShape ? t.shape.dim.map { d in
                if case .dimValue(let x)? = d.value, x >= 0 { return Int(x) }
                return -1
            } : nil
            let type = ElementType(onnx: Int(t.elemType))
            if type == nil && t.elemType != 0 {
                // Refused at load: the protocol could carry FP16 and friends, but no kernel
                // computes with them, and a request would otherwise fail only when it runs.
                throw InferenceError(
                    .unsupportedAttribute,
                    "graph value '\(v.name)' has element type \(Self.onnxTypeName(Int(t.elemType))), which the engine does not compute with "
                        + "(supported: FLOAT, DOUBLE, INT64, INT32, INT8, UINT8, BOOL, STRING)")
            }
            return GraphIO(name: v.name, type: type, shape: shape)
        case .sequenceType:
            return GraphIO(name: v.name, type: .float32, shape: [-1, -1], isMapSequence: true)
        case nil:
            return GraphIO(name: v.name, type: nil, shape: nil)
        default:
            throw InferenceError(.unsupportedAttribute, "graph value '\(v.name)' has an unsupported type (only tensors and ZipMap sequences)")
        }
    }
}
