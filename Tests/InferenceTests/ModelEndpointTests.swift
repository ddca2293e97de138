import Foundation
import Testing
@testable import Inference

/// Routing and answers of the protocol endpoints that do not run the model.
@Suite struct ModelEndpointTests {
    let endpoint: ModelEndpoint

    init() throws {
        endpoint = ModelEndpoint(name: "mlp", version: "mlp-00002", model: try OnnxModel.load(path: Fixtures.path("mlp.onnx")))
    }

    func respond(_ method: String, _ path: String, body: String = "", header: String? = nil) -> EndpointResponse? {
        if case .respond(let response) = endpoint.route(method: method, path: path[...], inferenceHeaderLength: header, body: Array(body.utf8)) {
            return response
        }
        return nil
    }

    func json(_ response: EndpointResponse?) -> [String: Any]? {
        response.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }
    }

    @Test func healthServerAndModelMetadata() {
        #expect(json(respond("GET", "/v2/health/live"))?["live"] as? Bool == true)
        #expect(json(respond("GET", "/v2/health/ready"))?["ready"] as? Bool == true)
        let server = json(respond("GET", "/v2"))
        #expect((server?["extensions"] as? [String])?.contains("binary_tensor_data") == true)
        #expect(json(respond("GET", "/v2/models"))?["models"] as? [String] == ["mlp"])
        let metadata = json(respond("GET", "/v2/models/mlp/versions/mlp-00002"))
        #expect(metadata?["versions"] as? [String] == ["mlp-00002"])
        #expect(json(respond("GET", "/v2/models/mlp/ready"))?["ready"] as? Bool == true)
        #expect(json(respond("GET", "/v1/models/mlp"))?["ready"] as? Bool == true)
        let index = respond("POST", "/v2/repository/index")
        #expect(index?.status == 200 && String(decoding: index!.body, as: UTF8.self).contains("READY"))
    }

    @Test func repositoryLoadAnswersAndUnloadAsksForTheUnload() {
        let load = respond("POST", "/v2/repository/models/mlp/load")
        #expect(load?.status == 200 && json(load)?["load"] as? Bool == true)
        guard case .unload(let unload) = endpoint.route(method: "POST", path: "/v2/repository/models/mlp/unload", inferenceHeaderLength: nil, body: []) else {
            Issue.record("unload is not an unload action")
            return
        }
        #expect(unload.status == 200 && json(unload)?["name"] as? String == "mlp" && json(unload)?["unload"] as? Bool == true)
        #expect(respond("POST", "/v2/repository/models/other/unload")?.status == 404, "another model's unload is refused here")
        #expect(respond("GET", "/v2/repository/models/mlp/unload")?.status == 405)
    }

    @Test func errorsUseKServeShapesAndCodes() {
        let unknown = respond("POST", "/v2/models/other/infer", body: "{}")
        #expect(unknown?.status == 404 && json(unknown)?["error"] as? String == "Model with name other does not exist.")
        #expect(respond("GET", "/v2/models/mlp/infer")?.status == 405)
        #expect(respond("POST", "/v2/health/live")?.status == 405)
        #expect(respond("GET", "/v2/models/mlp/versions/mlp-00001")?.status == 404)
        #expect(respond("GET", "/elsewhere")?.status == 404)
        #expect(respond("POST", "/v1/models/mlp:explain", body: "{}")?.status == 404)
        #expect(respond("POST", "/v2/models/mlp/infer", body: "{", header: nil)?.status == 400)
        #expect(respond("POST", "/v2/models/mlp/infer", body: "{}", header: "x")?.status == 400)
        let badOutput = respond("POST", "/v2/models/mlp/infer", body: #"{"inputs":[],"outputs":[{"name":"nope"}]}"#)
        #expect(badOutput?.status == 400 && json(badOutput)?["error"] as? String == "unknown output 'nope'; the model's outputs are [\"output\", \"gate\"]")
    }

    @Test func rawBinaryRequestAnswersInBinary() throws {
        let floats = [Float](repeating: 0.25, count: 16)
        let bytes = floats.withUnsafeBytes { Array($0) }
        guard case .infer(let call) = endpoint.route(method: "POST", path: "/v2/models/mlp/infer", inferenceHeaderLength: "0", body: bytes) else {
            Issue.record("a raw binary request should run")
            return
        }
        #expect(call.batchRows == 1)
        let response = call.response(outputs: try endpoint.model.run(call.inputs))
        #expect(response.status == 200)
        let jsonLength = try #require(response.headers["Inference-Header-Content-Length"].flatMap(Int.init))
        #expect(response.body.count == jsonLength + 2 * 4 * 4, "both outputs follow the JSON as binary")
    }

    @Test func v1AnswersWithTheFirstOutput() throws {
        let row = "[" + Array(repeating: "0.5", count: 16).joined(separator: ",") + "]"
        guard case .infer(let call) = endpoint.route(
            method: "POST", path: "/v1/models/mlp:predict", inferenceHeaderLength: nil, body: Array("{\"instances\":[\(row),\(row)]}".utf8)) else {
            Issue.record("a V1 predict should run")
            return
        }
        let response = call.response(outputs: try endpoint.model.run(call.inputs))
        let predictions = try #require(json(response)?["predictions"] as? [[Double]])
        #expect(predictions.count == 2 && predictions[0].count == 4)
    }

    @Test func batchJoinAndSplitRoundTrip() throws {
        let a = try Tensor(shape: [1, 3], floats: [1, 2, 3])
        let b = try Tensor(shape: [2, 3], floats: [4, 5, 6, 7, 8, 9])
        let joined = try Tensor.concatenated([a, b])
        #expect(joined.shape == [3, 3])
        #expect(try joined.rows(0..<1) == a)
        #expect(try joined.rows(1..<3) == b)
        #expect(throws: InferenceError.self) { try Tensor.concatenated([a, try Tensor(shape: [1, 2], floats: [1, 2])]) }
    }
}
