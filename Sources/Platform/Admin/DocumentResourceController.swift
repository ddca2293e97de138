import Foundation
import Hummingbird
import Store

/// A resource of a document kind in and out of the API (`apiVersion`, `kind`, `metadata`,
/// `spec`, `status`, with the field names of the system the kind comes from).
struct DocumentDTO<Spec: Codable & Sendable, Status: Codable & Sendable>: Codable, Sendable {
    var apiVersion: String?
    var kind: String?
    var metadata: MetadataDTO
    var spec: Spec
    var status: Status?
}

/// What the API needs to know per document kind.
protocol DocumentKindDescriptor: Sendable {
    associatedtype Kind: DocumentKind
    associatedtype Spec: Codable & Sendable
    associatedtype Status: Codable & Sendable
    static var kind: Kind { get }
    static var apiVersion: String { get }
    static var kindName: String { get }
    static var plural: String { get }
    /// Checks a spec; a 400 names what to fix.
    static func validate(_ spec: Spec, annotations: [String: String]) throws(APIError)
    static func encode(_ spec: Spec) throws -> String
    static func decodeSpec(_ text: String) throws -> Spec
    static func decodeStatus(_ text: String) -> Status?
}

/// `/api/v1/namespaces/{namespace}/{plural}[/{name}]` for a document kind (brokers, triggers,
/// ping sources, authorization policies): create (POST), list, get, replace (PUT, with
/// `metadata.resourceVersion` for optimistic concurrency) and delete.
struct DocumentResourceController<Descriptor: DocumentKindDescriptor, Context: RequestContext>: Sendable {
    let store: Store
    /// Runs after every successful write, before the answer (a consumer that must see the
    /// change before the client goes on, like the gateway's security table).
    var didChange: (@Sendable () throws -> Void)? = nil

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
        let resources = try storeCall { try store.documents(Descriptor.kind, namespace: namespace) }
        return try jsonResponse(ListDTO(items: try resources.map(dto)))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        guard let resource = try storeCall({ try store.document(Descriptor.kind, namespace: namespace, name: name) }) else {
            throw APIError(.notFound, code: "NotFound", "\(Descriptor.kind.displayName) \(namespace)/\(name) not found")
        }
        return try jsonResponse(try dto(resource))
    }

    @Sendable func create(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let input = try await parse(request, namespace: namespace, pathName: nil)
        let resource = try storeCall {
            try store.createDocument(
                Descriptor.kind, namespace: namespace, name: input.name, annotations: input.annotations, spec: input.spec)
        }
        try didChange?()
        return try jsonResponse(try dto(resource), status: .created)
    }

    @Sendable func replace(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let input = try await parse(request, namespace: namespace, pathName: name)
        let resource = try storeCall {
            try store.replaceDocument(
                Descriptor.kind, namespace: namespace, name: name, annotations: input.annotations, spec: input.spec,
                expectedResourceVersion: input.resourceVersion)
        }
        try didChange?()
        return try jsonResponse(try dto(resource))
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        try storeCall { try store.deleteDocument(Descriptor.kind, namespace: namespace, name: name) }
        try didChange?()
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
        let resource: DocumentDTO<Descriptor.Spec, Descriptor.Status>
        do {
            resource = try APIJSON.decoder().decode(DocumentDTO<Descriptor.Spec, Descriptor.Status>.self, from: Data(body.readableBytesView))
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
        try Descriptor.validate(resource.spec, annotations: annotations)
        let spec: String
        do { spec = try Descriptor.encode(resource.spec) } catch { throw APIError(.badRequest, code: "Invalid", "\(error)") }
        return Input(name: checked.name, annotations: annotations, spec: spec, resourceVersion: checked.resourceVersion)
    }

    private func dto(_ resource: StoredDocument<Descriptor.Kind>) throws -> DocumentDTO<Descriptor.Spec, Descriptor.Status> {
        DocumentDTO(
            apiVersion: Descriptor.apiVersion, kind: Descriptor.kindName, metadata: MetadataDTO(resource.meta),
            spec: try Descriptor.decodeSpec(resource.spec), status: Descriptor.decodeStatus(resource.status))
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
