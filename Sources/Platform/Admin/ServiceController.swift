import Eventing
import Foundation
import Hummingbird
import Serving
import Store

/// `/api/v1/namespaces/{namespace}/services[/{name}]`.
struct ServiceController<Context: RequestContext>: Sendable {
    let store: Store
    /// Builds the public URL of a service.
    let url: @Sendable (_ namespace: String, _ name: String) -> String
    let logDirectory: String
    /// Resolves a workload's event sink to the URL it gets in `K_SINK`; nil serves no sinks.
    var sinkURL: (@Sendable (_ destination: Destination, _ namespace: String) -> String?)? = nil

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("namespaces/:namespace/services", use: create)
        group.get("namespaces/:namespace/services", use: list)
        group.get("namespaces/:namespace/services/:name", use: get)
        group.put("namespaces/:namespace/services/:name", use: replace)
        group.delete("namespaces/:namespace/services/:name", use: delete)
        group.post("namespaces/:namespace/services/:name/stop") { request, context in try await setStopped(true, request, context) }
        group.post("namespaces/:namespace/services/:name/resume") { request, context in try await setStopped(false, request, context) }
        group.get("namespaces/:namespace/services/:name/logs", use: LogsEndpoint(store: store, logDirectory: logDirectory).logs)
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        try checkWorkloadNamespace(namespace)
        let input = try await parse(request, context: context, namespace: namespace, name: nil)
        let service = try storeCall {
            // A new service has no revisions yet: only @latest can take traffic.
            try checkRevisionsExist(input.spec.traffic, namespace: namespace, service: input.name)
            return try store.createService(namespace: namespace, name: input.name, annotations: input.annotations, spec: input.spec)
        }
        return try jsonResponse(ServiceDTO(service, url: url(namespace, service.meta.name)), status: .created)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let services = try storeCall { try store.services(namespace: namespace) }
        return try jsonResponse(ListDTO(items: services.map { ServiceDTO($0, url: url(namespace, $0.meta.name)) }))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        guard let service = try storeCall({ try store.service(namespace: namespace, name: name) }) else {
            throw APIError(.notFound, code: "NotFound", "service \(namespace)/\(name) not found")
        }
        return try jsonResponse(ServiceDTO(service, url: url(namespace, name)))
    }

    @Sendable func replace(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let input = try await parse(request, context: context, namespace: namespace, name: name)
        let service = try storeCall {
            if try store.service(namespace: namespace, name: name)?.spec.template.model != nil {
                throw APIError(.conflict, code: "InferenceService", "\(namespace)/\(name) is an inference service; change it with `outpost model deploy` or the inferenceservices API")
            }
            try checkRevisionsExist(input.spec.traffic, namespace: namespace, service: name)
            return try store.updateService(
                namespace: namespace, name: name, annotations: input.annotations, spec: input.spec,
                expectedResourceVersion: input.resourceVersion)
        }
        return try jsonResponse(ServiceDTO(service, url: url(namespace, name)))
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let removed = try storeCall { try store.deleteService(namespace: namespace, name: name) }
        return try jsonResponse(DeletedDTO(name: name, namespace: namespace, revisions: removed.map(\.meta.name)))
    }

    /// `stop` holds every revision of the service at zero; `resume` lets requests start it again.
    func setStopped(_ stopped: Bool, _ request: Request, _ context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let service = try storeCall {
            guard let current = try store.service(namespace: namespace, name: name) else {
                throw StoreError(.notFound, "service \(namespace)/\(name) not found")
            }
            var annotations = current.meta.annotations
            if stopped { annotations[ServingAnnotations.stopped] = "true" } else { annotations.removeValue(forKey: ServingAnnotations.stopped) }
            return try store.updateService(
                namespace: namespace, name: name, annotations: annotations, spec: current.spec,
                expectedResourceVersion: current.meta.resourceVersion)
        }
        return try jsonResponse(ServiceDTO(service, url: url(namespace, name)))
    }

    /// A traffic target (or tag) naming a revision the service does not have is refused: the
    /// route would otherwise drop that share and send it all to the others.
    private func checkRevisionsExist(_ traffic: [TrafficTarget], namespace: String, service: String) throws {
        let named = traffic.enumerated().compactMap { index, target in target.revisionName.map { (index, $0) } }
        guard !named.isEmpty else { return }
        let existing = Set(try store.revisions(namespace: namespace, service: service).map(\.meta.name))
        for (index, name) in named where !existing.contains(name) {
            let known = existing.sorted().joined(separator: ", ")
            throw APIError(
                .badRequest, code: "Invalid",
                "spec.traffic[\(index)].revisionName: service \(namespace)/\(service) has no revision \"\(name)\""
                    + (known.isEmpty ? "" : " (it has \(known))"),
                field: "spec.traffic[\(index)].revisionName")
        }
    }

    private func parse(_ request: Request, context: Context, namespace: String, name: String?) async throws -> ServiceInput {
        let body = try await collectBody(request)
        var input: ServiceInput
        do {
            input = try ServiceValidation.parse(body: body, pathNamespace: namespace, pathName: name)
        } catch {
            throw APIError(error)
        }
        try SinkBinding.bind(&input.spec.template, namespace: namespace, resolve: sinkURL)
        return input
    }
}

/// The largest JSON body a resource call accepts.
let maxResourceBodyBytes = 1 << 20

/// A resource call's JSON body, at most ``maxResourceBodyBytes``.
func collectBody(_ request: Request) async throws -> Data {
    do {
        return Data(try await request.body.collect(upTo: maxResourceBodyBytes).readableBytesView)
    } catch {
        throw APIError(.contentTooLarge, code: "TooLarge", "the body must be at most \(maxResourceBodyBytes) bytes")
    }
}

/// What a successful delete answers (a Kubernetes-style `Status`).
struct DeletedDTO: Encodable {
    var kind = "Status"
    var status = "Success"
    var name: String
    var namespace: String
    var revisions: [String]
}

/// The `{namespace}` path parameter, checked.
func namespaceParameter(_ context: some RequestContext) throws -> String {
    let namespace = try context.parameters.require("namespace")
    if let problem = Names.dns1035Problem(namespace) {
        throw APIError(.badRequest, code: "InvalidField", "namespace \(problem)", field: "metadata.namespace")
    }
    return namespace
}

/// The `{namespace}` and `{name}` path parameters.
func nameParameters(_ context: some RequestContext) throws -> (String, String) {
    (try namespaceParameter(context), try context.parameters.require("name"))
}

/// Knative's SinkBinding for services: a template annotation names where the workload sends
/// events, and its workers get the resolved URL in `K_SINK`; a second one holds the source's
/// `ceOverrides`, passed on in `K_CE_OVERRIDES` as Knative does. Both are written into the
/// template's environment, so changing them cuts a new revision like any template change.
enum SinkBinding {
    /// The template annotation: `broker:NAME`, `service:NAME` or an absolute URL.
    static let annotation = "eventing.outpost.dev/sink"
    /// The template annotation with Knative's `ceOverrides` as JSON: `{"extensions":{"k":"v"}}`.
    static let overridesAnnotation = "eventing.outpost.dev/ce-overrides"

    static func bind(
        _ template: inout RevisionTemplate, namespace: String,
        resolve: (@Sendable (_ destination: Destination, _ namespace: String) -> String?)?
    ) throws {
        let bound = template.annotations[annotation] != nil
        template.env.removeAll { bound && ($0.name == "K_SINK" || $0.name == "K_CE_OVERRIDES") }
        if let raw = template.annotations[overridesAnnotation] {
            let field = "spec.template.metadata.annotations[\(overridesAnnotation)]"
            guard bound else {
                throw APIError(.badRequest, code: "Invalid", "\(field) needs a sink in \(annotation) too", field: field)
            }
            let overrides: CloudEventOverrides
            do {
                overrides = try JSONDecoder().decode(CloudEventOverrides.self, from: Data(raw.utf8))
            } catch {
                throw APIError(.badRequest, code: "Invalid", "\(field): not {\"extensions\": {\"name\": \"value\"}} (\(DecodingProblem(error)))", field: field)
            }
            if let problem = overrides.problem(path: field) { throw APIError(.badRequest, code: "Invalid", problem, field: field) }
            template.env.append(EnvVar(name: "K_CE_OVERRIDES", value: overrides.environmentValue))
        }
        guard let value = template.annotations[annotation] else { return }
        let field = "spec.template.metadata.annotations[\(annotation)]"
        let destination: Destination
        do {
            destination = try Destination(cliValue: value, path: field)
        } catch {
            throw APIError(.badRequest, code: "Invalid", "\(error)", field: field)
        }
        guard let resolve, let url = resolve(destination, namespace) else {
            throw APIError(.badRequest, code: "Invalid", "\(field): \"\(value)\" has no address", field: field)
        }
        template.env.append(EnvVar(name: "K_SINK", value: url))
    }
}
