import Foundation
import Inference
import Testing

/// Paths and readers for the committed fixtures made by scripts/make-test-models.py.
enum Fixtures {
    static let directory: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path
    }()

    static func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// One recorded onnxruntime run.
    struct Case {
        var batch: Int
        var inputs: [String: Tensor]
        var outputs: [String: [String: Any]]
    }

    static func cases(_ model: String) throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: path("\(model).json")))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let raw = try #require(root["cases"] as? [[String: Any]])
        return try raw.map { c in
            let ins = try #require(c["inputs"] as? [String: [String: Any]])
            var tensors: [String: Tensor] = [:]
            for (name, t) in ins { tensors[name] = try tensor(t) }
            return Case(batch: try #require(c["batch"] as? Int), inputs: tensors,
                        outputs: try #require(c["outputs"] as? [String: [String: Any]]))
        }
    }

    static func tensor(_ t: [String: Any]) throws -> Tensor {
        let shape = try #require(t["shape"] as? [Int])
        let values = try #require(t["data"] as? [Any])
        switch try #require(t["datatype"] as? String) {
        case "FP32": return try Tensor(shape: shape, floats: values.map { Float(($0 as! NSNumber).doubleValue) })
        case "INT64": return try Tensor(shape: shape, int64s: values.map { ($0 as! NSNumber).int64Value })
        case "BYTES": return try Tensor(shape: shape, strings: values.map { $0 as! String })
        default: throw InferenceError(.invalidTensor, "unexpected fixture datatype")
        }
    }
}

/// Asserts |a - b| <= rtol·|b| + atol element-wise (atol covers values that are ~0).
func expectClose(_ got: [Float], _ want: [Float], rtol: Float = 1e-4, atol: Float = 1e-5,
                 _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(got.count == want.count, "\(what): \(got.count) values, expected \(want.count)", sourceLocation: sourceLocation)
    var worst: (Int, Float, Float)?
    for (i, (g, w)) in zip(got, want).enumerated() where !(abs(g - w) <= rtol * abs(w) + atol) {
        worst = worst ?? (i, g, w)
    }
    if let (i, g, w) = worst {
        Issue.record("\(what): element \(i) is \(g), onnxruntime says \(w)", sourceLocation: sourceLocation)
    }
}
