import Foundation
import Hummingbird
import Store

/// `/api/v1/namespaces/{namespace}/trafficpolicies[/{name}]`: one policy per service, named
/// after it. PUT creates or replaces; the serving controller compiles it into the route table.
struct TrafficPolicyController<Context: RequestContext>: Sendable {
    let store: Store

    static var maxBodyBytes: Int { 1 << 20 }

    func addRoutes(to group: RouterGroup<Context>) {
        group.get("namespaces/:namespace/trafficpolicies", use: list)
        group.get("namespaces/:namespace/trafficpolicies/:name", use: get)
        group.put("namespaces/:namespace/trafficpolicies/:name", use: replace)
        group.delete("namespaces/:namespace/trafficpolicies/:name", use: delete)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let policies = try storeCall { try store.trafficPolicies(namespace: namespace) }
        return try jsonResponse(ListDTO(items: policies.map(TrafficPolicyDTO.init)))
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        guard let policy = try storeCall({ try store.trafficPolicy(namespace: namespace, name: name) }) else {
            throw APIError(.notFound, code: "NotFound", "traffic policy \(namespace)/\(name) not found")
        }
        return try jsonResponse(TrafficPolicyDTO(policy))
    }

    @Sendable func replace(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: Self.maxBodyBytes)
        } catch {
            throw APIError(.contentTooLarge, code: "TooLarge", "the body must be at most \(Self.maxBodyBytes) bytes")
        }
        let input: TrafficPolicyInput
        do {
            input = try TrafficPolicyValidation.parse(body: Data(body.readableBytesView), pathNamespace: namespace, pathName: name)
        } catch {
            throw APIError(error)
        }
        let policy = try storeCall {
            try store.setTrafficPolicy(
                namespace: namespace, name: name, spec: input.spec, expectedResourceVersion: input.resourceVersion)
        }
        return try jsonResponse(TrafficPolicyDTO(policy))
    }

    @Sendable func delete(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        try storeCall { try store.deleteTrafficPolicy(namespace: namespace, name: name) }
        return try jsonResponse(DeletedDTO(name: name, namespace: namespace, revisions: []))
    }
}
