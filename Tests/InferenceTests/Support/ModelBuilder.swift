import Foundation
@testable import Inference
import SwiftProtobuf

/// Builds small ONNX models in-process (through the generated protobuf types) for tests of what
/// the loader must reject: unsupported operators and attributes, malformed tensors, bad opsets.
struct ModelBuilder {
    var model = Onnx_ModelProto()

    init(opset: Int64 = 17, ml: Int64? = nil) {
        model.irVersion = 8
        var o = Onnx_OperatorSetIdProto()
        o.domain = ""
        o.version = opset
        model.opsetImport = [o]
        if let ml {
            var m = Onnx_OperatorSetIdProto()
            m.domain = "ai.onnx.ml"
            m.version = ml
            model.opsetImport.append(m)
        }
    }

    mutating func input(_ name: String, _ shape: [Int64], type: Int32 = 1) {
        model.graph.input.append(valueInfo(name, shape, type))
    }

    mutating func output(_ name: String) {
        var v = Onnx_ValueInfoProto()
        v.name = name
        model.graph.output.append(v)
    }

    mutating func node(_ op: String, _ inputs: [String], _ outputs: [String], name: String = "",
                       domain: String = "", attributes: [Onnx_AttributeProto] = []) {
        var n = Onnx_NodeProto()
        n.opType = op
        n.input = inputs
        n.output = outputs
        n.name = name
        n.domain = domain
        n.attribute = attributes
        model.graph.node.append(n)
    }

    mutating func initializer(_ name: String, dims: [Int64], floats: [Float]? = nil, raw: [UInt8]? = nil, type: Int32 = 1) {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims
        t.dataType = type
        if let floats { t.floatData = floats }
        if let raw { t.rawData = Data(raw) }
        model.graph.initializer.append(t)
    }

    mutating func externalInitializer(_ name: String, dims: [Int64], location: String, offset: String? = nil, length: String? = nil) {
        var t = Onnx_TensorProto()
        t.name = name
        t.dims = dims
        t.dataType = 1
        t.dataLocation = .external
        t.externalData = [("location", location), ("offset", offset), ("length", length)].compactMap { key, value in
            guard let value else { return nil }
            var e = Onnx_StringStringEntryProto()
            e.key = key
            e.value = value
            return e
        }
        model.graph.initializer.append(t)
    }

    static func ints(_ name: String, _ v: [Int64]) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .ints
        a.ints = v
        return a
    }

    static func int(_ name: String, _ v: Int64) -> Onnx_AttributeProto {
        var a = Onnx_AttributeProto()
        a.name = name
        a.type = .int
        a.i = v
        return a
    }

    func valueInfo(_ name: String, _ shape: [Int64], _ type: Int32) -> Onnx_ValueInfoProto {
        var v = Onnx_ValueInfoProto()
        v.name = name
        var t = Onnx_TypeProto.Tensor()
        t.elemType = type
        var s = Onnx_TensorShapeProto()
        s.dim = shape.map { d in
            var dim = Onnx_TensorShapeProto.Dimension()
            if d < 0 { dim.dimParam = "N" } else { dim.dimValue = d }
            return dim
        }
        t.shape = s
        v.type.tensorType = t
        return v
    }

    func bytes() throws -> [UInt8] { try model.serializedBytes() }

    func load(baseDirectory: String? = nil) throws -> OnnxModel {
        try OnnxModel(bytes: try bytes(), baseDirectory: baseDirectory)
    }
}

/// Runs `body` and returns the InferenceError it throws (nil if it did not throw one).
func inferenceError(_ body: () throws -> Void) -> InferenceError? {
    do { try body() } catch let e as InferenceError { return e } catch { return nil }
    return nil
}
