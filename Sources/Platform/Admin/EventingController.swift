import Eventing
import Foundation
import Hummingbird
import Store

/// A broker, trigger or ping source in and out of the API (Knative field names).
struct EventingResourceDTO<Spec: Codable & Sendable>: Codable, Sendable {
    var apiVersion: String?
    var kind: String?
    var metadata: MetadataDTO
    var spec: Spec
    var status: EventingStatus?
}

/// What the API needs to know per eventing kind.
protocol EventingKindDescriptor: Sendable {
    associatedtype Spec: Codable & Sendable
    static var kind: EventingKind { get }
    static var apiVersion: String { get }
    static var kindName: String { get }
    static var plural: String { get }
    static func validate(_ spec: Spec, annotations: [String: String]) throws(EventingError)
}

enum BrokerKind: EventingKindDescriptor {
    static let kind = EventingKind.broker
    static let apiVersion = "eventing.knative.dev/v1"
    static let kindName = "Broker"
    static let plural = "brokers"
    static func validate(_ spec: BrokerSpec, annotations: [String: String]) throws(EventingError) {
        try spec.validate()
    }
}

enum TriggerKind: EventingKindDescriptor {
    static let kind = EventingKind.trigger
    static let apiVersion = "eventing.knative.dev/v1"
    static let kindName = "Trigger"
    static let plural = "triggers"
    static func validate(_ spec: TriggerSpec, annotations: [String: String]) throws(EventingError) {
        try spec.validate()
        _ = try TriggerAnnotations.options(annotations)
    }
}

enum PingSourceKind: EventingKindDescriptor {
    static let kind = EventingKind.pingSource
    static let apiVersion = "sources.knative.dev/v1"
    static let kindName = "PingSource"
    static let plural = "pingsources"
    static func validate(_ spec: PingSourceSpec, annotations: [String: String]) throws(EventingError) {
        try spec.validate()
    }
}

/// `/api/v1/namespaces/{namespace}/{brokers|triggers|pingsources}[/{name}]`: create (POST),
/// list, get, replace (PUT, with `metadata.resourceVersion` for optimistic concurrency) and
/// delete.
struct EventingResourceController<Descriptor: EventingKindDescriptor, Context: RequestContext>: Sendable {
    let store: Store

    static var maxBodyBytes: Int { 1 << 20 }

    func addRoutes(to group: RouterGroup<Context>) {
        let base = "namespaces/:namespace/\(Descriptor.plural)"
        group.get(RouterPath(base), use: list)
        group.post(RouterPath(base), use: create)
        group.get(RouterPath(base + "/:name"), use: get)
        group.put(RouterPath(base + "/:name"), use: replace)
        group.delete(RouterPath(base + "/:name"), use: delete)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let resources = try storeCall { try store.eventingResources(Descriptor.kind, namespace: namespace) }
        return try jsonResponse(ListDTO(items: try resources.map(dto)))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        guard let resource = try storeCall({ try store.eventingResource(Descriptor.kind, namespace: namespace, name: name) }) else {
            throw APIError(.notFound, code: "NotFound", "\(Descriptor.kind.displayName) \(namespace)/\(name) not found")
        }
        return try jsonResponse(try dto(resource))
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let input = try await parse(request, namespace: namespace, pathName: nil)
        let resource = try storeCall {
            try store.createEventingResource(
                Descriptor.kind, namespace: namespace, name: input.name, annotations: input.annotations, spec: input.spec)
        }
        return try jsonResponse(try dto(resource), status: .created)
    }

    @Sendable func replace(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let input = try await parse(request, namespace: namespace, pathName: name)
        let resource = try storeCall {
            try store.replaceEventingResource(
                Descriptor.kind, namespace: namespace, name: name, annotations: input.annotations, spec: input.spec,
                expectedResourceVersion: input.resourceVersion)
        }
        return try jsonResponse(try dto(resource))
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        try storeCall { try store.deleteEventingResource(Descriptor.kind, namespace: namespace, name: name) }
        return try jsonResponse(DeletedDTO(name: name, namespace: namespace, revisions: []))
    }

    private struct Input {
        var name: String
        var annotations: [String: String]
        var spec: String
        var resourceVersion: Int64?
    }

    private func parse(_ request: Request, namespace: String, pathName: String?) async throws -> Input {
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, code: "TooLarge", "the body must be at most \(Self.maxBodyBytes) bytes")
        }
        let resource: EventingResourceDTO<Descriptor.Spec>
        do {
            resource = try APIJSON.decoder().decode(EventingResourceDTO<Descriptor.Spec>.self, from: Data(body.readableBytesView))
        } catch {
            throw APIError(.badRequest, code: "Invalid", "the body does not describe a \(Descriptor.kindName): \(DecodingProblem(error))")
        }
        if let kind = resource.kind, kind != Descriptor.kindName {
            throw APIError(.badRequest, code: "Invalid", "kind must be \(Descriptor.kindName), not \(kind)", field: "kind")
        }
        let checked: (name: String, resourceVersion: Int64?)
        do {
            checked = try ResourceBody.checkedMetadata(resource.metadata, pathNamespace: namespace, pathName: pathName)
        } catch {
            throw APIError(error)
        }
        let annotations = resource.metadata.annotations ?? [:]
        do {
            try Descriptor.validate(resource.spec, annotations: annotations)
        } catch {
            throw APIError(.badRequest, code: "Invalid", error.message)
        }
        let spec: String
        do { spec = try EventingJSON.encode(resource.spec) } catch { throw APIError(.badRequest, code: "Invalid", "\(error)") }
        return Input(name: checked.name, annotations: annotations, spec: spec, resourceVersion: checked.resourceVersion)
    }

    private func dto(_ resource: EventingResource) throws -> EventingResourceDTO<Descriptor.Spec> {
        EventingResourceDTO(
            apiVersion: Descriptor.apiVersion, kind: Descriptor.kindName, metadata: MetadataDTO(resource.meta),
            spec: try EventingJSON.decode(Descriptor.Spec.self, resource.spec),
            status: try? EventingJSON.decode(EventingStatus.self, resource.status))
    }
}

/// A decoding error as a sentence that names the field.
struct DecodingProblem: CustomStringConvertible {
    let error: any Error
    init(_ error: any Error) { self.error = error }

    var description: String {
        func path(_ context: DecodingError.Context, _ key: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath.map(\.stringValue) + (key.map { [$0.stringValue] } ?? [])
            return keys.isEmpty ? "the body" : keys.joined(separator: ".")
        }
        switch error {
        case DecodingError.keyNotFound(let key, let context): return "\(path(context, key)) is required"
        case DecodingError.typeMismatch(_, let context): return "\(path(context)): \(context.debugDescription)"
        case DecodingError.valueNotFound(_, let context): return "\(path(context)) must not be null"
        case DecodingError.dataCorrupted(let context): return "\(path(context)): \(context.debugDescription)"
        default: return "\(error)"
        }
    }
}
