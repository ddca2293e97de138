import Foundation
@testable import Inference
import Testing

/// The V1 `:predict` codec.
@Suite struct V1CodecTests {
    let features = [TensorMetadata(name: "X", datatype: .float32, shape: [-1, 4])]

    @Test func instancesAndInputsAreEquivalent() throws {
        let a = try V1Codec.decodePredict(body: Array(#"{"instances":[[1,2,3,4],[5,6,7,8]]}"#.utf8), inputs: features)
        let b = try V1Codec.decodePredict(body: Array(#"{"inputs":[[1,2,3,4],[5,6,7,8]]}"#.utf8), inputs: features)
        #expect(a == b)
        #expect(a["X"]?.shape == [2, 4])
        #expect(a["X"]?.floats == [1, 2, 3, 4, 5, 6, 7, 8])
    }

    @Test func objectInstancesAreKeyedByInputName() throws {
        let two = [TensorMetadata(name: "a", datatype: .int64, shape: [-1]), TensorMetadata(name: "b", datatype: .float32, shape: [-1, 2])]
        let t = try V1Codec.decodePredict(body: Array(#"{"instances":[{"a":1,"b":[1,2]},{"a":2,"b":[3,4]}]}"#.utf8), inputs: two)
        #expect(t["a"]?.int64s == [1, 2])
        #expect(t["b"]?.shape == [2, 2])
    }

    @Test(arguments: [
        (#"{"instances":[[1,2,3,4],[5,6]]}"#, "instance 1 has shape"),
        (#"{"instances":[[1,2,3,4]],"inputs":[[1,2,3,4]]}"#, "not both"),
        (#"{"rows":[[1]]}"#, "'instances' or 'inputs'"),
        (#"{"instances":[]}"#, "non-empty"),
        (#"{"instances":[["a","b","c","d"]]}"#, "not a valid FP32"),
    ])
    func rejectsBadBodies(body: String, fragment: String) throws {
        let e = try #require(inferenceError { _ = try V1Codec.decodePredict(body: Array(body.utf8), inputs: features) })
        #expect(e.message.contains(fragment), "\(e.message)")
    }

    @Test func predictionsFromAClassifier() throws {
        let rfc = try OnnxModel.load(path: Fixtures.path("rfc.onnx"))
        let c = try #require(try Fixtures.cases("rfc").last)
        let x = try #require(c.inputs.values.first?.floats)
        let rows = (0..<3).map { r in "[" + x[(r * 4)..<(r * 4 + 4)].map { "\($0)" }.joined(separator: ",") + "]" }
        let inputs = try V1Codec.decodePredict(body: Array(#"{"instances":["#.utf8) + Array(rows.joined(separator: ",").utf8) + Array("]}".utf8),
                                               inputs: rfc.inputs)
        let out = try rfc.run(inputs)
        let labels = try JSONSerialization.jsonObject(with: Data(V1Codec.encodePredictions(try #require(out["output_label"])))) as? [String: [String]]
        #expect(labels?["predictions"] == c.outputs["output_label"]?["data"] as? [String])
        let probs = try JSONSerialization.jsonObject(with: Data(V1Codec.encodePredictions(try #require(out["output_probability"])))) as? [String: [[String: Double]]]
        let first = try #require(probs?["predictions"]?.first)
        #expect(Set(first.keys) == ["setosa", "versicolor", "virginica"])
        let want = try #require(c.outputs["output_probability"]?["data"] as? [Double])
        #expect(abs((first["setosa"] ?? -1) - want[0]) < 1e-5)
    }

    @Test func labelsThatDoNotMatchTheColumnsAreNotUsed() throws {
        // ZipMap labels that a Reshape carried to another shape: written as plain rows, no crash.
        var t = try Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        t.columnLabels = .strings(["a", "b"])
        let plain = try JSONSerialization.jsonObject(with: Data(V1Codec.encodePredictions(t))) as? [String: [[Double]]]
        #expect(plain?["predictions"] == [[1, 2, 3], [4, 5, 6]])
        var flat = try Tensor(shape: [6], floats: [1, 2, 3, 4, 5, 6])
        flat.columnLabels = .int64([7, 8, 9])
        let scalars = try JSONSerialization.jsonObject(with: Data(V1Codec.encodePredictions(flat))) as? [String: [Double]]
        #expect(scalars?["predictions"] == [1, 2, 3, 4, 5, 6])
        t.columnLabels = .int64([7, 8, 9])
        let maps = try JSONSerialization.jsonObject(with: Data(V1Codec.encodePredictions(t))) as? [String: [[String: Double]]]
        #expect(maps?["predictions"] == [["7": 1, "8": 2, "9": 3], ["7": 4, "8": 5, "9": 6]])
    }

    @Test func reshapeKeepsLabelsOnlyWhileTheLastDimensionMatches() throws {
        var source = Value(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        source.labels = .strings(["a", "b", "c"])
        var frame = Frame(slots: [Value(), Value()], constants: [])
        frame.copy(source, shape: [1, 2, 3], to: 0)
        #expect(frame.slots[0].labels == source.labels)
        frame.copy(source, shape: [3, 2], to: 1)
        #expect(frame.slots[1].labels == nil)
        #expect(frame.slots[1].f == [1, 2, 3, 4, 5, 6])
    }

    @Test func nestedPredictions() throws {
        let t = try Tensor(shape: [2, 2, 1], floats: [1, 2, 3, 4.5])
        let obj = try JSONSerialization.jsonObject(with: Data(V1Codec.encodePredictions(t))) as? [String: [[[Double]]]]
        #expect(obj?["predictions"] == [[[1], [2]], [[3], [4.5]]])
    }
}
