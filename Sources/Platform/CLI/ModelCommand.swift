import ArgumentParser
import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import Store

/// `outpost model ...`: KServe-style InferenceServices served in the daemon's own process.
struct ModelCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model", abstract: "Deploy, inspect, call and delete models (InferenceServices).",
        subcommands: [Deploy.self, List.self, Get.self, Delete.self, Upload.self, Infer.self, Promote.self, Rollback.self])
}

extension ModelCommand {
    struct Deploy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an InferenceService, or change it: another storage URI creates the next model revision.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Model name (DNS-1035); it is served at http://NAME.<namespace>.<domain>/v2/models/NAME/infer.") var name: String
        @Option(help: "The model file: file:///abs/path/model.onnx, an absolute or relative path, or a URI from `model upload`.")
        var storageUri: String
        @Option(help: "Model format (onnx).") var format = "onnx"
        // `.unconditional`: "-1" is read as the value (and refused as out of range), not as an option.
        @Option(parsing: .unconditional, help: "Fewest loaded instances; 0 unloads the model when idle (default 1).") var minReplicas: Int?
        @Option(parsing: .unconditional, help: "Most loaded instances (0 = no limit).") var maxReplicas: Int?
        @Option(parsing: .unconditional, help: "Requests in flight per instance the autoscaler aims for.") var scaleTarget: Int?
        @Option(parsing: .unconditional, help: "Hard limit of requests in flight per instance (0 = unlimited).") var containerConcurrency: Int?
        @Option(parsing: .unconditional, help: "Request timeout in seconds.") var timeout: Int?
        @Option(parsing: .unconditional, help: "Share of requests for the new revision while the previous one keeps the rest (0 pins the previous one).")
        var canaryTrafficPercent: Int?
        @Option(parsing: .unconditional, help: "Dynamic batching: most requests joined into one run.") var maxBatchSize: Int?
        @Option(parsing: .unconditional, help: "Dynamic batching: longest wait for a batch to fill, in milliseconds.") var maxLatency: Int?
        @OptionGroup var wait: WaitOptions

        func run() async throws {
            let client = try global.client()
            let collection = "/api/v1/namespaces/\(namespace)/inferenceservices"
            var uri = storageUri
            if !uri.contains("://") {
                uri = "file://" + (uri.hasPrefix("/") ? uri : URL(fileURLWithPath: uri).standardizedFileURL.path)
            }
            var batcher: InferenceServiceDTO.Batcher?
            if maxBatchSize != nil || maxLatency != nil { batcher = .init(maxBatchSize: maxBatchSize, maxLatency: maxLatency) }
            var body = InferenceServiceDTO(
                apiVersion: "serving.kserve.io/v1beta1", kind: "InferenceService",
                metadata: MetadataDTO(name: name, namespace: namespace),
                spec: .init(predictor: .init(
                    model: .init(modelFormat: .init(name: format), storageUri: uri),
                    minReplicas: minReplicas, maxReplicas: maxReplicas, scaleTarget: scaleTarget, scaleMetric: nil,
                    containerConcurrency: containerConcurrency, timeout: timeout,
                    canaryTrafficPercent: canaryTrafficPercent, batcher: batcher)))
            let data: Data
            if let existing = try? await client.call(.GET, "\(collection)/\(name)") {
                let current = try APIJSON.decoder().decode(InferenceServiceDTO.self, from: existing)
                body.metadata.resourceVersion = current.metadata.resourceVersion
                body.metadata.annotations = current.metadata.annotations
                data = try await client.call(.PUT, "\(collection)/\(name)", body: try APIJSON.encoder().encode(body))
            } else {
                data = try await client.call(.POST, collection, body: try APIJSON.encoder().encode(body))
            }
            try await settleModel(data, path: "\(collection)/\(name)", client: client, wait: wait, format: global.output)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List InferenceServices.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"

        func run() async throws {
            let data = try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/inferenceservices")
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<InferenceServiceDTO>.self, from: data)
            printTable(
                ["NAME", "URL", "READY", "PREV", "LATEST", "PREVROLLEDOUTREVISION", "LATESTREADYREVISION"],
                list.items.map { model in
                    let predictor = model.status?.components?["predictor"]
                    let traffic = predictor?.traffic ?? []
                    let latest = traffic.first { $0.revisionName == predictor?.latestReadyRevision }?.percent
                    let previous = traffic.first { $0.tag == InferenceServiceMapping.previousTag }?.percent
                    return [
                        model.metadata.name ?? "", model.status?.url ?? "",
                        model.status?.conditions?["Ready"]?.status ?? "Unknown",
                        previous.map { "\($0)" } ?? "", latest.map { "\($0)" } ?? "",
                        predictor?.previousRolledoutRevision ?? "", predictor?.latestReadyRevision ?? "",
                    ]
                })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one InferenceService.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Model name.") var name: String

        func run() async throws {
            try printModel(try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/inferenceservices/\(name)"), format: global.output)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete an InferenceService with its model revisions.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Model name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.DELETE, "/api/v1/namespaces/\(namespace)/inferenceservices/\(name)")
            if global.output == .json { return printRaw(data) }
            print("model \(namespace)/\(name) deleted")
        }
    }

    struct Promote: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Give the canary revision all the traffic.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Model name.") var name: String

        @OptionGroup var wait: WaitOptions

        func run() async throws {
            try await changeTraffic("promote", name: name, namespace: namespace, global: global, wait: wait)
        }
    }

    struct Rollback: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send all traffic back to the previous rolled-out revision.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Model name.") var name: String

        @OptionGroup var wait: WaitOptions

        func run() async throws {
            try await changeTraffic("rollback", name: name, namespace: namespace, global: global, wait: wait)
        }
    }

    struct Upload: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy a model file into the daemon's store; prints the storage URI to deploy it with.")
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The model file.") var file: String

        func run() async throws {
            guard let bytes = FileManager.default.contents(atPath: file) else {
                throw CLIError("cannot read \(file)")
            }
            let data = try await global.client().call(.POST, "/api/v1/models", body: bytes, contentType: "application/octet-stream")
            if global.output == .json { return printRaw(data) }
            let uploaded = try JSONDecoder().decode(UploadedModelDTO.self, from: data)
            printFields([("Storage URI", uploaded.storageUri), ("SHA-256", uploaded.sha256), ("Size", "\(uploaded.size) bytes")])
        }
    }

    struct Infer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send one inference request through the gateway and print the answer.",
            discussion: "The body is a V2 inference request ({\"inputs\": [...]}), or with --v1 a V1 predict body ({\"instances\": [...]}).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Model name.") var name: String
        @Option(help: "The request body as JSON text.") var data: String?
        @Option(help: "A file holding the request body.") var file: String?
        @Flag(help: "Use V1 :predict instead of V2 infer.") var v1 = false

        func validate() throws {
            if (data == nil) == (file == nil) { throw ValidationError("give the request body with exactly one of --data or --file") }
        }

        func run() async throws {
            let client = try global.client()
            let model = try APIJSON.decoder().decode(
                InferenceServiceDTO.self, from: try await client.call(.GET, "/api/v1/namespaces/\(namespace)/inferenceservices/\(name)"))
            guard let url = model.status?.url, let gateway = URLComponents(string: url), let host = gateway.host,
                  let admin = URLComponents(string: client.baseURL)?.host else {
                throw CLIError("model \(name) has no URL yet")
            }
            let body: Data
            if let data { body = Data(data.utf8) } else if let file, let contents = FileManager.default.contents(atPath: file) {
                body = contents
            } else {
                throw CLIError("cannot read \(file ?? "")")
            }
            let path = v1 ? "/v1/models/\(name):predict" : "/v2/models/\(name)/infer"
            // The service host (<name>.<namespace>.<domain>) need not resolve: connect to the
            // daemon's address and name the service in Host.
            var request = HTTPClientRequest(url: "http://\(admin):\(gateway.port ?? 80)\(path)")
            request.method = .POST
            request.headers.add(name: "Host", value: gateway.port.map { "\(host):\($0)" } ?? host)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response: HTTPClientResponse
            do {
                response = try await HTTPClient.shared.execute(request, timeout: .seconds(Int64(model.spec.predictor.timeout ?? 300) + 5))
            } catch {
                throw CLIError("cannot reach the gateway at \(admin):\(gateway.port ?? 80): \(error)")
            }
            let answer = try await response.body.collect(upTo: 64 << 20)
            printRaw(Data(answer.readableBytesView))
            guard (200..<300).contains(Int(response.status.code)) else {
                throw CLIError("the model answered \(response.status.code) \(response.status.reasonPhrase)")
            }
        }
    }
}

/// POSTs `/inferenceservices/{name}/{action}` and prints the service once its traffic settled.
private func changeTraffic(_ action: String, name: String, namespace: String, global: GlobalOptions, wait: WaitOptions) async throws {
    let client = try global.client()
    let path = "/api/v1/namespaces/\(namespace)/inferenceservices/\(name)"
    let data = try await client.call(.POST, "\(path)/\(action)")
    try await settleModel(data, path: path, client: client, wait: wait, format: global.output)
}

/// Waits (unless `--no-wait`) until the InferenceService's status covers its generation, then prints it.
private func settleModel(_ data: Data, path: String, client: AdminClient, wait: WaitOptions, format: OutputFormat) async throws {
    let latest = try await wait.settle(data, path: path, client: client, kind: "model", format: format, print: printModel) { data in
        let model = try APIJSON.decoder().decode(InferenceServiceDTO.self, from: data)
        let current = (model.status?.observedGeneration ?? 0) >= (model.metadata.generation ?? 0)
        return (model.metadata.name ?? "", current, model.status?.conditions?["Ready"])
    }
    try printModel(latest, format: format)
}

/// Prints an InferenceService in the chosen format.
func printModel(_ data: Data, format: OutputFormat) throws {
    if format == .json { return printRaw(data) }
    let model = try APIJSON.decoder().decode(InferenceServiceDTO.self, from: data)
    let predictor = model.spec.predictor
    let component = model.status?.components?["predictor"]
    var fields: [(String, String)] = [
        ("Name", model.metadata.name ?? ""),
        ("Namespace", model.metadata.namespace ?? ""),
        ("URL", model.status?.url ?? ""),
        ("Storage URI", predictor.model.storageUri ?? ""),
        ("Replicas", "min \(predictor.minReplicas ?? 1), max \(predictor.maxReplicas.map { $0 == 0 ? "unlimited" : "\($0)" } ?? "unlimited")"),
        ("Latest ready", component?.latestReadyRevision ?? ""),
        ("Traffic", (component?.traffic ?? []).map { target in
            "\(target.percent ?? 0)% -> \(target.revisionName ?? "")" + (target.tag.map { " (tag \($0))" } ?? "")
        }.joined(separator: ", ")),
    ]
    if let percent = predictor.canaryTrafficPercent { fields.append(("Canary", "\(percent)%")) }
    fields += (model.status?.conditions ?? []).map { condition in
        (condition.type, [condition.status, condition.reason, condition.message].compactMap { $0 }.joined(separator: "  "))
    }
    printFields(fields)
}
