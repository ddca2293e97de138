import Foundation
import Inference
import Testing

/// Outpost's outputs against onnxruntime's, recorded by scripts/make-test-models.py, at batch 1
/// and batch 3 (relative error ≤ 1e-4 for floats, exact labels).
@Suite struct ModelFixtureTests {
    @Test(arguments: ["mlp", "cnn", "logreg", "rfc", "rfr", "linreg"])
    func matchesOnnxRuntime(model: String) throws {
        let loaded = try OnnxModel.load(path: Fixtures.path("\(model).onnx"))
        let cases = try Fixtures.cases(model)
        #expect(Set(cases.map(\.batch)) == [1, 3])
        let session = loaded.makeSession()
        // Run batch 3, then batch 1, then batch 3 again on one session: buffers are reused and resized.
        for c in cases + cases.reversed() {
            let out = try session.run(c.inputs)
            for (name, want) in c.outputs {
                let got = try #require(out[name], "output \(name) missing")
                try compare(got, want, "\(model) batch \(c.batch) \(name)")
            }
        }
    }

    private func compare(_ got: Tensor, _ want: [String: Any], _ what: String) throws {
        let shape = try #require(want["shape"] as? [Int])
        #expect(got.shape == shape, "\(what): shape")
        let data = try #require(want["data"] as? [Any])
        switch want["datatype"] as? String {
        case "FP32":
            let floats = try #require(got.floats, "\(what) is not FP32")
            expectClose(floats, data.map { Float(($0 as! NSNumber).doubleValue) }, what)
            if let labels = want["labels"] as? [Any] {
                switch got.columnLabels {
                case .int64(let l)?: #expect(l == labels.map { ($0 as! NSNumber).int64Value }, "\(what) labels")
                case .strings(let l)?: #expect(l == labels.map { $0 as! String }, "\(what) labels")
                case nil: Issue.record("\(what): ZipMap labels missing")
                }
            }
        case "INT64":
            #expect(got.int64s == data.map { ($0 as! NSNumber).int64Value }, "\(what)")
        case "BYTES":
            #expect(got.strings == data.map { $0 as! String }, "\(what)")
        default:
            Issue.record("\(what): unexpected datatype")
        }
    }

    @Test func metadataReportsDynamicBatch() throws {
        let mlp = try OnnxModel.load(path: Fixtures.path("mlp.onnx"))
        #expect(mlp.inputs == [TensorMetadata(name: "input", datatype: .float32, shape: [-1, 16])])
        #expect(mlp.outputs.map(\.name) == ["output", "gate"])
        #expect(mlp.outputs[0].shape == [-1, 4])
    }

    @Test func optimiserFoldsAndFuses() throws {
        // cnn: BN folded into both convs, relus fused, shape chain and weight transpose folded or kept;
        // far fewer steps than the 22 nodes written.
        let cnn = try OnnxModel.load(path: Fixtures.path("cnn.onnx"))
        #expect(cnn.stepCount < 16)
        let mlp = try OnnxModel.load(path: Fixtures.path("mlp.onnx"))
        #expect(mlp.stepCount < 15)
    }

    @Test func outputsFilterAndPooledRun() throws {
        let mlp = try OnnxModel.load(path: Fixtures.path("mlp.onnx"))
        let c = try #require(try Fixtures.cases("mlp").first)
        let only = try mlp.run(c.inputs, outputs: ["gate"])
        #expect(Array(only.keys) == ["gate"])
        #expect(throws: InferenceError.self) { try mlp.run(c.inputs, outputs: ["nope"]) }
    }

    @Test func concurrentRunsOnOneModelAgree() async throws {
        let cnn = try OnnxModel.load(path: Fixtures.path("cnn.onnx"))
        let cases = try Fixtures.cases("cnn")
        let inputs = cases.map(\.inputs)
        let expected = try cases.map { c in try #require(c.outputs["output"]?["data"] as? [Double]).map(Float.init) }
        let results = try await withThrowingTaskGroup(of: [[Float]].self) { group in
            for _ in 0..<6 {
                group.addTask {
                    var seen: [[Float]] = []
                    for round in 0..<20 {
                        let k = round % inputs.count
                        seen.append(try cnn.run(inputs[k])["output"]?.floats ?? [])
                    }
                    return seen
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 6)
        for seen in results {
            for (round, got) in seen.enumerated() { expectClose(got, expected[round % expected.count], "concurrent run \(round)") }
        }
    }
}
