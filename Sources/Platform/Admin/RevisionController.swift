import Hummingbird
import Store

/// `/api/v1/namespaces/{namespace}/revisions[/{name}]`: read-only, as Knative has it.
struct RevisionController<Context: RequestContext>: Sendable {
    let store: Store

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("namespaces/:namespace/revisions", use: list)
        group.get("namespaces/:namespace/revisions/:name", use: get)
    }

    /// Lists revisions; `?service=NAME` narrows to one service.
    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let service = request.uri.queryParameters.get("service")
        let revisions = try storeCall { try store.revisions(namespace: namespace, service: service) }
        return try jsonResponse(ListDTO(items: revisions.map(RevisionDTO.init)))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        guard let revision = try storeCall({ try store.revision(namespace: namespace, name: name) }) else {
            throw APIError(.notFound, code: "NotFound", "revision \(namespace)/\(name) not found")
        }
        return try jsonResponse(RevisionDTO(revision))
    }
}
