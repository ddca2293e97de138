import Foundation
import Inference
import Testing

/// Single-operator models for the tricky cases (broadcasting, Conv pads/strides/groups/dilations,
/// pooling edge rules, Softmax axes, Gather, Transpose perms, shape ops), each checked against
/// onnxruntime's output recorded in Fixtures/ops.json by scripts/make-test-models.py.
@Suite struct OperatorTests {
    struct OpCase: Sendable, CustomTestStringConvertible {
        let name: String
        var testDescription: String { name }
    }

    static func table() -> [String: [String: Any]] {
        guard let data = try? Data(contentsOf: URL(fileURLWithPath: Fixtures.path("ops.json"))),
              let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let cases = root["cases"] as? [[String: Any]] else { return [:] }
        return Dictionary(uniqueKeysWithValues: cases.map { ($0["name"] as! String, $0) })
    }

    static let names: [OpCase] = table().keys.sorted().map(OpCase.init)

    @Test func tableIsPresent() {
        #expect(Self.names.count >= 40)
    }

    @Test(arguments: names)
    func matchesOnnxRuntime(_ c: OpCase) throws {
        let entry = try #require(Self.table()[c.name])
        let bytes = try #require(Data(base64Encoded: entry["model"] as! String))
        let model = try OnnxModel(bytes: Array(bytes))
        var inputs: [String: Tensor] = [:]
        for (name, t) in entry["inputs"] as! [String: [String: Any]] { inputs[name] = try Fixtures.tensor(t) }
        let out = try model.run(inputs)
        let expected = entry["outputs"] as! [[String: Any]]
        for (i, want) in expected.enumerated() {
            let got = try #require(out["y\(i)"])
            #expect(got.shape == want["shape"] as! [Int], "\(c.name): shape")
            let data = want["data"] as! [Any]
            switch want["datatype"] as! String {
            case "FP32": expectClose(try #require(got.floats), data.map { Float(($0 as! NSNumber).doubleValue) }, c.name)
            case "INT64": #expect(got.int64s == data.map { ($0 as! NSNumber).int64Value }, "\(c.name)")
            default: Issue.record("unexpected datatype")
            }
        }
    }

    @Test func externalDataIsReadRelativeToTheModel() throws {
        let model = try OnnxModel.load(path: Fixtures.path("external.onnx"))
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("external.json")))
        let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: [Double]])
        let x = try Tensor(shape: [2, 3], floats: json["x"]!.map(Float.init))
        let y = try #require(try model.run(["x": x])["y"])
        expectClose(try #require(y.floats), json["y"]!.map(Float.init), "external")
    }
}
