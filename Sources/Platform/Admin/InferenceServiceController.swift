import Foundation
import Hummingbird
import Inference
import Serving
import Store

/// `/api/v1/namespaces/{namespace}/inferenceservices[/{name}[/promote|/rollback]]`: KServe's
/// InferenceService over the service machinery (a model revision per `storageUri`).
struct InferenceServiceController<Context: RequestContext>: Sendable {
    let store: Store
    let url: @Sendable (_ namespace: String, _ name: String) -> String

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("namespaces/:namespace/inferenceservices", use: create)
        group.get("namespaces/:namespace/inferenceservices", use: list)
        group.get("namespaces/:namespace/inferenceservices/:name", use: get)
        group.put("namespaces/:namespace/inferenceservices/:name", use: replace)
        group.delete("namespaces/:namespace/inferenceservices/:name", use: delete)
        group.post("namespaces/:namespace/inferenceservices/:name/promote") { request, context in
            try await setTraffic(request, context, promote: true)
        }
        group.post("namespaces/:namespace/inferenceservices/:name/rollback") { request, context in
            try await setTraffic(request, context, promote: false)
        }
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        try checkWorkloadNamespace(namespace)
        let input = try await parse(request, namespace: namespace, name: nil)
        let service = try storeCall {
            try store.createService(
                namespace: namespace, name: input.name, annotations: input.annotations,
                spec: ServiceSpec(template: input.template))
        }
        return try jsonResponse(InferenceServiceMapping.view(service, url: url(namespace, service.meta.name)), status: .created)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let services = try storeCall { try store.services(namespace: namespace) }.filter { $0.spec.template.model != nil }
        return try jsonResponse(ListDTO(items: services.map { InferenceServiceMapping.view($0, url: url(namespace, $0.meta.name)) }))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let service = try existing(namespace: namespace, name: name)
        return try jsonResponse(InferenceServiceMapping.view(service, url: url(namespace, name)))
    }

    /// Replaces the spec. A changed model or predictor cuts the next revision; with
    /// `canaryTrafficPercent` it takes that share and the last rolled-out revision keeps the
    /// rest; without it the new revision takes everything (KServe's default rollout).
    @Sendable func replace(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let input = try await parse(request, namespace: namespace, name: name)
        let service = try storeCall {
            let current = try existing(namespace: namespace, name: name)
            var traffic = TrafficTarget.allToLatest
            if let percent = input.canaryTrafficPercent, let previous = InferenceServiceMapping.rolledOutRevision(of: current) {
                let templateChanges = current.spec.template != input.template
                // A canary needs something new to try; an unchanged spec keeps the split as it is.
                if templateChanges || InferenceServiceMapping.canaryPercent(current.spec.traffic) != nil {
                    traffic = InferenceServiceMapping.canaryTraffic(previous: previous, percent: percent)
                }
            }
            return try store.updateService(
                namespace: namespace, name: name, annotations: input.annotations,
                spec: ServiceSpec(template: input.template, traffic: traffic),
                expectedResourceVersion: input.resourceVersion)
        }
        return try jsonResponse(InferenceServiceMapping.view(service, url: url(namespace, name)))
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        _ = try existing(namespace: namespace, name: name)
        let removed = try storeCall { try store.deleteService(namespace: namespace, name: name) }
        return try jsonResponse(DeletedDTO(name: name, namespace: namespace, revisions: removed.map(\.meta.name)))
    }

    /// `promote` gives the canary all the traffic; `rollback` gives it back to the previous
    /// revision (KServe's `canaryTrafficPercent: 0`), also after a promotion.
    func setTraffic(_ request: Request, _ context: Context, promote: Bool) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let service = try storeCall {
            let current = try existing(namespace: namespace, name: name)
            guard let previous = current.spec.traffic.first(where: { $0.tag == InferenceServiceMapping.previousTag })?.revisionName,
                  !promote || InferenceServiceMapping.canaryPercent(current.spec.traffic) != nil else {
                throw APIError(
                    .conflict, code: "NoCanary",
                    promote ? "inference service \(namespace)/\(name) has no canary in progress; deploy a new model with a canary traffic percent first"
                        : "inference service \(namespace)/\(name) has no previous rolled-out revision to go back to")
            }
            let traffic = InferenceServiceMapping.canaryTraffic(previous: previous, percent: promote ? 100 : 0)
            return try store.updateService(
                namespace: namespace, name: name, annotations: current.meta.annotations,
                spec: ServiceSpec(template: current.spec.template, traffic: traffic),
                expectedResourceVersion: current.meta.resourceVersion)
        }
        return try jsonResponse(InferenceServiceMapping.view(service, url: url(namespace, name)))
    }

    private func existing(namespace: String, name: String) throws -> ServiceResource {
        guard let service = try storeCall({ try store.service(namespace: namespace, name: name) }),
              service.spec.template.model != nil else {
            throw APIError(.notFound, code: "NotFound", "inference service \(namespace)/\(name) not found")
        }
        return service
    }

    private func parse(_ request: Request, namespace: String, name: String?) async throws -> InferenceServiceInput {
        let body = try await collectBody(request)
        do {
            return try InferenceServiceValidation.parse(body: body, pathNamespace: namespace, pathName: name)
        } catch {
            throw APIError(error)
        }
    }
}

/// A checked InferenceService body, already mapped onto a service.
struct InferenceServiceInput {
    var name: String
    var annotations: [String: String]
    var template: RevisionTemplate
    var canaryTrafficPercent: Int?
    var resourceVersion: Int64?
}

enum InferenceServiceValidation {
    static let shape: JSONShape = {
        let metadata: JSONShape = .object([
            "name": .string, "namespace": .string, "annotations": .map(.string), "labels": .map(.string),
            "resourceVersion": .string, "uid": .string, "generation": .integer, "creationTimestamp": .string,
        ])
        let predictor: JSONShape = .object([
            "model": .object([
                "modelFormat": .object(["name": .string, "version": .string]),
                "storageUri": .string,
            ]),
            "minReplicas": .integer, "maxReplicas": .integer, "scaleTarget": .integer, "scaleMetric": .string,
            "containerConcurrency": .integer, "timeout": .integer, "canaryTrafficPercent": .integer,
            "batcher": .object(["maxBatchSize": .integer, "maxLatency": .integer]),
        ])
        return .object([
            "apiVersion": .string, "kind": .string, "metadata": metadata,
            "spec": .object(["predictor": predictor]),
            "status": .map(.object([:])),
        ])
    }()

    /// Parses and checks a body with KServe's rules (`minReplicas` ≥ 0 and ≤ `maxReplicas`
    /// unless that is 0; `canaryTrafficPercent` 0–100) and the model file's presence.
    static func parse(body: Data, pathNamespace: String, pathName: String?) throws(FieldError) -> InferenceServiceInput {
        guard var json = try? JSONSerialization.jsonObject(with: body, options: [.fragmentsAllowed]) as? [String: Any] else {
            throw FieldError(field: "", "the body is not a JSON object", code: "MalformedJSON")
        }
        json.removeValue(forKey: "status")
        if let problem = shape.problem(in: json, at: "") { throw problem }
        guard json["spec"] != nil else { throw FieldError(field: "spec", "spec is required", code: "MissingField") }
        if json["metadata"] == nil { json["metadata"] = [String: Any]() }
        let dto = try ResourceBody.decode(InferenceServiceDTO.self, from: json, kind: "inference service")
        let (name, resourceVersion) = try ResourceBody.checkedMetadata(dto.metadata, pathNamespace: pathNamespace, pathName: pathName)

        let predictor = dto.spec.predictor
        let format = predictor.model.modelFormat.name.lowercased()
        guard format == "onnx" else {
            throw FieldError(field: "spec.predictor.model.modelFormat.name", "spec.predictor.model.modelFormat.name \"\(predictor.model.modelFormat.name)\" is not served here; Outpost runs onnx models")
        }
        guard let uri = predictor.model.storageUri, !uri.isEmpty else {
            throw FieldError(field: "spec.predictor.model.storageUri", "spec.predictor.model.storageUri is required: file:///absolute/path/model.onnx", code: "MissingField")
        }
        let spec = ModelSpec(modelFormat: format, storageUri: uri, name: name)
        if uri.contains("://") && !uri.hasPrefix("file://") {
            throw FieldError(field: "spec.predictor.model.storageUri", "spec.predictor.model.storageUri \"\(uri)\" uses a scheme Outpost cannot fetch; use file:///absolute/path or upload the model with `outpost model upload`")
        }
        guard spec.path.hasPrefix("/") else {
            throw FieldError(field: "spec.predictor.model.storageUri", "spec.predictor.model.storageUri must be an absolute path or file:///absolute/path, got \"\(uri)\"")
        }
        // A regular file (after symlinks) of bounded size: a device (/dev/zero) or a FIFO would
        // be read without end, or block the load forever.
        if let problem = ModelFile.problem(spec.path) {
            let message = problem == "no such file" ? "no model file at \(spec.path)" : "\(spec.path) is \(problem)"
            throw FieldError(field: "spec.predictor.model.storageUri", message)
        }

        let minReplicas = predictor.minReplicas ?? 1
        let maxReplicas = predictor.maxReplicas ?? 0
        if minReplicas < 0 {
            throw FieldError(field: "spec.predictor.minReplicas", "spec.predictor.minReplicas must be 0 or more, got \(minReplicas)")
        }
        if maxReplicas < 0 {
            throw FieldError(field: "spec.predictor.maxReplicas", "spec.predictor.maxReplicas must be 0 (no limit) or more, got \(maxReplicas)")
        }
        if maxReplicas != 0, minReplicas > maxReplicas {
            throw FieldError(field: "spec.predictor.minReplicas", "spec.predictor.minReplicas (\(minReplicas)) must not exceed maxReplicas (\(maxReplicas))")
        }
        if let percent = predictor.canaryTrafficPercent, !(0...100).contains(percent) {
            throw FieldError(field: "spec.predictor.canaryTrafficPercent", "spec.predictor.canaryTrafficPercent must be between 0 and 100, got \(percent)")
        }
        let concurrency = predictor.containerConcurrency ?? 0
        if !(0...1000).contains(concurrency) {
            throw FieldError(field: "spec.predictor.containerConcurrency", "spec.predictor.containerConcurrency must be between 0 (unlimited) and 1000, got \(concurrency)")
        }
        let timeout = predictor.timeout ?? RevisionTemplate.defaultTimeoutSeconds
        if !(1...600).contains(timeout) {
            throw FieldError(field: "spec.predictor.timeout", "spec.predictor.timeout must be between 1 and 600 seconds, got \(timeout)")
        }
        var annotations: [String: String] = [InferenceServiceMapping.minScale: String(minReplicas)]
        if maxReplicas > 0 { annotations[InferenceServiceMapping.maxScale] = String(maxReplicas) }
        if let target = predictor.scaleTarget { annotations[InferenceServiceMapping.target] = String(target) }
        if let metric = predictor.scaleMetric { annotations[InferenceServiceMapping.metric] = metric }
        if let problem = ServingAnnotations.problem(annotations) {
            let field = switch problem.key {
            case InferenceServiceMapping.target: "spec.predictor.scaleTarget"
            case InferenceServiceMapping.metric: "spec.predictor.scaleMetric"
            case InferenceServiceMapping.maxScale: "spec.predictor.maxReplicas"
            default: "spec.predictor.minReplicas"
            }
            throw FieldError(field: field, "\(field): \(problem.message)")
        }
        var model = spec
        if let batcher = predictor.batcher {
            let size = batcher.maxBatchSize ?? ModelBatcher.defaultMaxBatchSize
            let latency = batcher.maxLatency ?? ModelBatcher.defaultMaxLatency
            if !(1...4096).contains(size) {
                throw FieldError(field: "spec.predictor.batcher.maxBatchSize", "spec.predictor.batcher.maxBatchSize must be between 1 and 4096, got \(size)")
            }
            if !(1...10_000).contains(latency) {
                throw FieldError(field: "spec.predictor.batcher.maxLatency", "spec.predictor.batcher.maxLatency must be between 1 and 10000 milliseconds, got \(latency)")
            }
            model.batcher = ModelBatcher(maxBatchSize: size, maxLatency: latency)
        }
        var serviceAnnotations = dto.metadata.annotations ?? [:]
        serviceAnnotations[InferenceServiceMapping.kindAnnotation] = "true"
        let template = RevisionTemplate(
            annotations: annotations, command: "", containerConcurrency: concurrency, timeoutSeconds: timeout, model: model)
        return InferenceServiceInput(
            name: name, annotations: serviceAnnotations, template: template,
            canaryTrafficPercent: predictor.canaryTrafficPercent, resourceVersion: resourceVersion)
    }
}
