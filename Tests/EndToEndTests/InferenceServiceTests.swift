import Foundation
import TestSupport
import Testing

/// InferenceServices through the real binary: the CLI deploys, the gateway serves the Open
/// Inference Protocol from the daemon's own process, and stock clients (curl, tritonclient)
/// talk to it.
extension EndToEnd {
@Suite struct InferenceServiceTests {
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("InferenceTests/Fixtures").path
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    /// One recorded case of a fixture: inputs and onnxruntime's outputs.
    struct Case: @unchecked Sendable {  // immutable after parsing
        var inputs: [String: [String: Any]]
        var outputs: [String: [String: Any]]

        /// A V2 JSON request body for the case.
        var v2Body: Data {
            let inputs = self.inputs.map { name, tensor in
                ["name": name, "shape": tensor["shape"]!, "datatype": tensor["datatype"]!, "data": tensor["data"]!] as [String: Any]
            }
            return try! JSONSerialization.data(withJSONObject: ["inputs": inputs])
        }
    }

    static func cases(_ model: String) throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: "\(fixtures)/\(model).json"))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (json["cases"] as! [[String: Any]]).map {
            Case(inputs: $0["inputs"] as! [String: [String: Any]], outputs: $0["outputs"] as! [String: [String: Any]])
        }
    }

    /// Relative error of every float within 1e-4 (absolute 1e-5 near zero).
    static func matches(_ got: [Any]?, _ expected: [Any]?) -> Bool {
        guard let got = got?.compactMap({ ($0 as? NSNumber)?.doubleValue }),
              let expected = expected?.compactMap({ ($0 as? NSNumber)?.doubleValue }), got.count == expected.count else { return false }
        return zip(got, expected).allSatisfy { abs($0 - $1) <= max(1e-5, 1e-4 * abs($1)) }
    }

    static func infer(_ daemon: Daemon, model: String = "mlp", version: String? = nil, body: Data, headers: [(String, String)] = []) -> SimpleResponse {
        SimpleHTTP.request(
            port: daemon.gatewayPort, method: "POST", path: "/v2/models/\(model)\(version.map { "/versions/\($0)" } ?? "")/infer",
            host: "\(model).default.localhost", headers: headers, body: body)
    }

    static func outputs(_ response: SimpleResponse) -> [String: [String: Any]] {
        let list = response.json?["outputs"] as? [[String: Any]] ?? []
        return Dictionary(list.map { ($0["name"] as? String ?? "", $0) }, uniquingKeysWith: { a, _ in a })
    }

    static func deploy(_ daemon: Daemon, _ arguments: String...) throws {
        let result = try daemon.cli(["model", "deploy"] + arguments)
        #expect(result.status == 0, "deploy failed: \(result.stdout) \(result.stderr)")
    }

    @Test func deployInferV1AndV2AndRejectBadTensors() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-isvc")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            try Self.deploy(daemon, "mlp", "--storage-uri", "file://\(Self.fixtures)/mlp.onnx")

            // OpenBLAS runs kernels the CPU supports: where its detection falls back to generic
            // ones, the daemon restarted itself (same pid) with OPENBLAS_CORETYPE set.
            let cpu = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
            if ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, cpu.contains(" avx2") {
                let log = daemon.log()
                #expect(log.contains("openblas-core=") && !log.contains("openblas-core=Prescott"), "\(log.prefix(600))")
                #expect(!log.contains("OpenBLAS did not recognise this CPU"))
            }

            // V2 JSON at batch 1 and batch > 1 matches onnxruntime.
            for testCase in try Self.cases("mlp") {
                let response = Self.infer(daemon, body: testCase.v2Body)
                #expect(response.status == 200, "\(response.text)")
                #expect(response.json?["model_name"] as? String == "mlp")
                let outputs = Self.outputs(response)
                for (name, expected) in testCase.outputs {
                    #expect(Self.matches(outputs[name]?["data"] as? [Any], expected["data"] as? [Any]), "output \(name)")
                }
            }

            // V1 with curl.
            let first = try Self.cases("mlp")[0]
            let input = first.inputs["input"]!
            let width = (input["shape"] as! [Int]).last!
            let flat = input["data"] as! [Double]
            let rows = stride(from: 0, to: flat.count, by: width).map { Array(flat[$0..<($0 + width)]) }
            let v1Body = String(decoding: try JSONSerialization.data(withJSONObject: ["instances": rows]), as: UTF8.self)
            let curl = try run("/usr/bin/curl", [
                "-sS", "--fail-with-body", "-H", "Host: mlp.default.localhost", "-H", "Content-Type: application/json",
                "--data", v1Body, "http://127.0.0.1:\(daemon.gatewayPort)/v1/models/mlp:predict",
            ])
            #expect(curl.status == 0, "\(curl.stdout) \(curl.stderr)")
            let predictions = (try? JSONSerialization.jsonObject(with: Data(curl.stdout.utf8)) as? [String: Any])?["predictions"] as? [[Double]]
            #expect(Self.matches(predictions?.flatMap { $0 }, first.outputs["output"]?["data"] as? [Any]), "\(curl.stdout)")

            // Metadata and health.
            let metadata = SimpleHTTP.request(port: daemon.gatewayPort, path: "/v2/models/mlp", host: "mlp.default.localhost")
            #expect(metadata.status == 200 && (metadata.json?["inputs"] as? [[String: Any]])?.first?["name"] as? String == "input", "\(metadata.text)")
            #expect(SimpleHTTP.request(port: daemon.gatewayPort, path: "/v2/health/ready", host: "mlp.default.localhost").status == 200)

            // Malformed tensors get 400 with a message, an unknown model 404; the daemon lives on.
            func tensor(_ shape: [Int], _ datatype: String, _ data: [Any]) -> Data {
                try! JSONSerialization.data(withJSONObject: ["inputs": [["name": "input", "shape": shape, "datatype": datatype, "data": data]]])
            }
            let wrongShape = Self.infer(daemon, body: tensor([1, 15], "FP32", Array(repeating: 0.5, count: 15)))
            #expect(wrongShape.status == 400 && wrongShape.text.contains("shape"), "\(wrongShape.status) \(wrongShape.text)")
            let wrongType = Self.infer(daemon, body: tensor([1, 16], "INT64", Array(repeating: 1, count: 16)))
            #expect(wrongType.status == 400 && wrongType.text.contains("datatype"), "\(wrongType.status) \(wrongType.text)")
            let countMismatch = Self.infer(daemon, body: tensor([2, 16], "FP32", Array(repeating: 0.5, count: 16)))
            #expect(countMismatch.status == 400, "\(countMismatch.status) \(countMismatch.text)")
            var truncated = Data(#"{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","parameters":{"binary_data_size":64}}]}"#.utf8)
            let jsonLength = truncated.count
            truncated.append(Data(repeating: 0, count: 40))
            let binary = Self.infer(daemon, body: truncated, headers: [("Inference-Header-Content-Length", String(jsonLength))])
            #expect(binary.status == 400 && binary.text.contains("truncated"), "\(binary.status) \(binary.text)")
            let garbage = Self.infer(daemon, body: Data("{not json".utf8))
            #expect(garbage.status == 400, "\(garbage.status) \(garbage.text)")
            let unknown = SimpleHTTP.request(
                port: daemon.gatewayPort, method: "POST", path: "/v2/models/nope/infer", host: "mlp.default.localhost", body: first.v2Body)
            #expect(unknown.status == 404 && unknown.text.contains("nope"), "\(unknown.status) \(unknown.text)")
            #expect(processIsAlive(daemon.pid!))
            #expect(Self.infer(daemon, body: first.v2Body).status == 200)

            // A model that cannot be loaded fails its revision with the loader's reason.
            let broken = "\(directory.path)/broken.onnx"
            try Data("not a model".utf8).write(to: URL(fileURLWithPath: broken))
            let failed = try daemon.cli("model", "deploy", "broken", "--storage-uri", broken)
            #expect(failed.status != 0 && failed.stderr.contains("not ready"), "\(failed.stdout) \(failed.stderr)")
            let missing = try daemon.cli("model", "deploy", "missing", "--storage-uri", "/nonexistent/model.onnx")
            #expect(missing.status != 0 && missing.stderr.contains("no model file"), "\(missing.stderr)")
            // A device would be read without end.
            let device = try daemon.cli("model", "deploy", "device", "--storage-uri", "/dev/zero")
            #expect(device.status != 0 && device.stderr.contains("not a regular file"), "\(device.stderr)")
        }
    }

    @Test func tritonClientWithDefaultsAndBinaryTensors() async throws {
        try await onThread {
            let python = Self.testPython
            guard FileManager.default.isExecutableFile(atPath: python) else {
                Issue.record("no Python with tritonclient at \(python); run scripts/install-deps.sh")
                return
            }
            let directory = try TemporaryDirectory(prefix: "outpost-triton")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            try Self.deploy(daemon, "mlp", "--storage-uri", "\(Self.fixtures)/mlp.onnx")
            let result = try run(python, [
                "\(Self.repository)/scripts/interop/tritonclient_check.py", "--port", String(daemon.gatewayPort),
                "--host", "mlp.default.localhost", "--model", "mlp", "--fixture", "\(Self.fixtures)/mlp.json",
            ], timeout: .seconds(120))
            #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
            #expect(result.stdout.contains("json-defaults ok") && result.stdout.contains("binary ok"), "\(result.stdout)")
        }
    }

    /// The interpreter of the venv that `scripts/install-deps.sh` fills (tritonclient[http]).
    static var testPython: String {
        let environment = ProcessInfo.processInfo.environment
        if let python = environment["OUTPOST_TEST_PYTHON"] { return python }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return "\(home)/.cache/outpost-test-venv/bin/python"
    }

    @Test func canaryPromoteAndRollback() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-canary")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            try Self.deploy(daemon, "mlp", "--storage-uri", "\(Self.fixtures)/mlp.onnx")
            // The same bytes under another URI: a new model revision.
            let copy = "\(directory.path)/mlp-v2.onnx"
            try FileManager.default.copyItem(atPath: "\(Self.fixtures)/mlp.onnx", toPath: copy)
            try Self.deploy(daemon, "mlp", "--storage-uri", copy, "--canary-traffic-percent", "20")
            let body = try Self.cases("mlp")[0].v2Body

            func versions(_ count: Int) -> [String: Int] {
                let counts = Counter()
                DispatchQueue.concurrentPerform(iterations: 4) { _ in
                    for _ in 0..<(count / 4) {
                        counts.add(Self.infer(daemon, body: body).json?["model_version"] as? String ?? "error")
                    }
                }
                return counts.values
            }
            let split = versions(2000)
            let share = Double(split["mlp-00002", default: 0]) / 2000
            #expect(abs(share - 0.20) <= 0.04, "\(split)")
            #expect(split["mlp-00001", default: 0] + split["mlp-00002", default: 0] == 2000, "\(split)")
            // A repository unload frees the canary's instances too; later requests load both again.
            func replicas(_ revision: String) -> Int? {
                let status = daemon.api("GET", "/api/v1/namespaces/default/revisions/\(revision)").json?["status"] as? [String: Any]
                return status?["actualReplicas"] as? Int
            }
            let unload = SimpleHTTP.request(
                port: daemon.gatewayPort, method: "POST", path: "/v2/repository/models/mlp/unload", host: "mlp.default.localhost", body: Data())
            #expect(unload.status == 200, "\(unload.text)")
            #expect(eventually(timeout: .seconds(10)) { replicas("mlp-00001") == 0 && replicas("mlp-00002") == 0 },
                    "\(String(describing: replicas("mlp-00001"))) \(String(describing: replicas("mlp-00002")))")
            // A version in the path names its revision, whatever the split.
            for version in ["mlp-00001", "mlp-00002"] {
                let pinned = (0..<20).map { _ in Self.infer(daemon, version: version, body: body) }
                #expect(pinned.allSatisfy { $0.status == 200 && $0.json?["model_version"] as? String == version },
                        "\(version): \(pinned.map(\.status))")
            }

            #expect(try daemon.cli("model", "rollback", "mlp").status == 0)
            #expect(eventually(timeout: .seconds(10)) { versions(40) == ["mlp-00001": 40] })
            #expect(try daemon.cli("model", "promote", "mlp").status == 0)
            #expect(eventually(timeout: .seconds(10)) { versions(40) == ["mlp-00002": 40] })
            let get = try daemon.cli("model", "get", "mlp", "-o", "json")
            #expect(get.stdout.contains("\"latestReadyRevision\" : \"mlp-00002\""), "\(get.stdout)")
            #expect(get.stdout.contains("\"previousRolledoutRevision\" : \"mlp-00001\""), "\(get.stdout)")
            #expect(!get.stdout.contains("canaryTrafficPercent"), "promoted: no canary left")
            #expect(try daemon.cli("model", "promote", "mlp").status != 0, "no canary left to promote")
            // As in KServe, a promoted model can still go back to the revision it replaced.
            #expect(try daemon.cli("model", "rollback", "mlp").status == 0)
            #expect(eventually(timeout: .seconds(10)) { versions(40) == ["mlp-00001": 40] })
        }
    }

    @Test func scaledToZeroModelLoadsForTheNextRequest() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-isvc-zero")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path, extraArguments: ["--stable-window", "6s", "--scale-to-zero-grace-period", "500ms"])
            try daemon.start()
            defer { daemon.stop() }
            try Self.deploy(daemon, "cnn", "--storage-uri", "\(Self.fixtures)/cnn.onnx", "--min-replicas", "0")
            let testCase = try Self.cases("cnn")[0]
            #expect(Self.infer(daemon, model: "cnn", body: testCase.v2Body).status == 200)
            // Idle: the instance is unloaded.
            let unloaded = eventually(timeout: .seconds(30)) {
                let revision = daemon.api("GET", "/api/v1/namespaces/default/revisions/cnn-00001")
                return (revision.json?["status"] as? [String: Any])?["actualReplicas"] as? Int == 0
            }
            #expect(unloaded)
            let logs = try daemon.cli("service", "logs", "cnn")
            #expect(logs.stdout.contains("unloaded"), "\(logs.stdout)")
            // The next request waits for the load and gets the right answer.
            let response = Self.infer(daemon, model: "cnn", body: testCase.v2Body)
            #expect(response.status == 200, "\(response.text)")
            let outputs = Self.outputs(response)
            for (name, expected) in testCase.outputs {
                #expect(Self.matches(outputs[name]?["data"] as? [Any], expected["data"] as? [Any]), "output \(name)")
            }
        }
    }

    /// The repository extension's `unload` frees the model even with `minReplicas` 1, until the
    /// next request, which waits for the load.
    @Test func repositoryUnloadFreesTheModelUntilTheNextRequest() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-isvc-unload")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            try Self.deploy(daemon, "cnn", "--storage-uri", "\(Self.fixtures)/cnn.onnx")
            let testCase = try Self.cases("cnn")[0]
            #expect(Self.infer(daemon, model: "cnn", body: testCase.v2Body).status == 200)
            func status() -> [String: Any]? {
                daemon.api("GET", "/api/v1/namespaces/default/revisions/cnn-00001").json?["status"] as? [String: Any]
            }
            func replicas() -> Int? { status()?["actualReplicas"] as? Int }
            #expect(replicas() == 1)
            let unload = SimpleHTTP.request(
                port: daemon.gatewayPort, method: "POST", path: "/v2/repository/models/cnn/unload", host: "cnn.default.localhost", body: Data())
            #expect(unload.status == 200 && unload.json?["unload"] as? Bool == true, "\(unload.status) \(unload.text)")
            #expect(eventually(timeout: .seconds(10)) { replicas() == 0 })
            // Autoscaler ticks pass (min-replicas 1, recent traffic): it stays unloaded.
            Thread.sleep(forTimeInterval: 3)
            #expect(replicas() == 0)
            let reason = status()?["lastScaleReason"] as? String ?? ""
            #expect(reason.contains("unloaded through the repository API"), "\(reason)")
            #expect(try daemon.cli("service", "logs", "cnn").stdout.contains("unloaded"))
            let response = Self.infer(daemon, model: "cnn", body: testCase.v2Body)
            #expect(response.status == 200, "\(response.text)")
            let outputs = Self.outputs(response)
            for (name, expected) in testCase.outputs {
                #expect(Self.matches(outputs[name]?["data"] as? [Any], expected["data"] as? [Any]), "output \(name)")
            }
            #expect(eventually(timeout: .seconds(10)) { replicas() == 1 })
            // No access control of its own: an AuthorizationPolicy can deny it (README).
            let deny = try daemon.cli(
                "security", "authz", "set", "no-unload", "--service", "cnn", "--action", "DENY", "--path", "/v2/repository/*")
            #expect(deny.status == 0, "\(deny.stdout) \(deny.stderr)")
            #expect(eventually(timeout: .seconds(10)) {
                SimpleHTTP.request(
                    port: daemon.gatewayPort, method: "POST", path: "/v2/repository/models/cnn/unload", host: "cnn.default.localhost",
                    body: Data()).status == 403
            })
            #expect(Self.infer(daemon, model: "cnn", body: testCase.v2Body).status == 200)
            #expect(replicas() == 1)
        }
    }

    @Test func batcherAnswersEveryRequestCorrectly() async throws {
        try await onThread {
            let directory = try TemporaryDirectory(prefix: "outpost-batch")
            defer { directory.remove() }
            let daemon = Daemon(dataDirectory: directory.path)
            try daemon.start()
            defer { daemon.stop() }
            try Self.deploy(daemon, "mlp", "--storage-uri", "\(Self.fixtures)/mlp.onnx", "--max-batch-size", "8", "--max-latency", "20")
            let cases = try Self.cases("mlp")
            let failures = Counter()
            DispatchQueue.concurrentPerform(iterations: 16) { index in
                for round in 0..<8 {
                    let testCase = cases[(index + round) % cases.count]
                    let response = Self.infer(daemon, body: testCase.v2Body)
                    let outputs = Self.outputs(response)
                    let ok = response.status == 200 && testCase.outputs.allSatisfy { name, expected in
                        Self.matches(outputs[name]?["data"] as? [Any], expected["data"] as? [Any])
                    }
                    if !ok { failures.add("\(response.status) \(response.text.prefix(200))") }
                }
            }
            #expect(failures.values.isEmpty, "\(failures.values)")
        }
    }
}
}

/// Counts strings from several threads.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var counts: [String: Int] = [:]
    func add(_ key: String) { lock.lock(); counts[key, default: 0] += 1; lock.unlock() }
    var values: [String: Int] { lock.lock(); defer { lock.unlock() }; return counts }
}
