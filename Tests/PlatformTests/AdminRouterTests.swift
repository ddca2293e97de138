import Foundation
import Hummingbird
import HummingbirdTesting
@testable import Platform
import Store
import Testing

@Suite struct AdminRouterTests {
    let token = "test-token"

    func application(ready: Bool = true) throws -> some ApplicationProtocol {
        let store = try Store(inMemory: ())
        try AdminTokens.register(bootstrap: token, in: store)
        let router = buildAdminRouter(AdminDependencies(
            store: store, logDirectory: "/nonexistent", modelDirectory: "/nonexistent",
            serviceURL: { "http://\($1).\($0).localhost:8080" }, isReady: { ready }))
        return Application(router: router)
    }

    var auth: HTTPFields { [.authorization: "Bearer \(token)", .contentType: "application/json"] }
    let body = ByteBuffer(string: #"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/bin/echo"}}}}"#)

    func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test func healthNeedsNoTokenAndReadinessFollowsTheDaemon() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/healthz", method: .get) { #expect($0.status == .ok) }
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .ok) }
        }
        try await application(ready: false).test(.router) { client in
            try await client.execute(uri: "/readyz", method: .get) { #expect($0.status == .serviceUnavailable) }
        }
    }

    @Test func apiNeedsTheToken() async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: "/api/v1/namespaces/default/services", method: .get) { response in
                #expect(response.status == .unauthorized)
                #expect((json(response.body)["error"] as? [String: Any])?["code"] as? String == "Unauthorized")
            }
            try await client.execute(uri: "/api/v1/namespaces/default/services", method: .post, headers: [.authorization: "Bearer nope"], body: body) {
                #expect($0.status == .forbidden)
            }
            try await client.execute(uri: "/api/v1/namespaces/default/services", method: .get, headers: [.authorization: "Basic abc"]) {
                #expect($0.status == .unauthorized)
            }
        }
    }

    @Test func crudRoundTrip() async throws {
        try await application().test(.router) { client in
            let created = try await client.execute(uri: "/api/v1/namespaces/default/services", method: .post, headers: auth, body: body)
            #expect(created.status == .created)
            let metadata = json(created.body)["metadata"] as? [String: Any]
            #expect(metadata?["name"] as? String == "hello")
            let version = try #require(metadata?["resourceVersion"] as? String)

            try await client.execute(uri: "/api/v1/namespaces/default/services", method: .post, headers: auth, body: body) {
                #expect($0.status == .conflict, "duplicate name")
            }
            try await client.execute(uri: "/api/v1/namespaces/default/services/hello", method: .get, headers: auth) { response in
                #expect(response.status == .ok)
                #expect((json(response.body)["status"] as? [String: Any])?["url"] as? String == "http://hello.default.localhost:8080")
            }
            try await client.execute(uri: "/api/v1/namespaces/default/revisions", method: .get, headers: auth) { response in
                let items = json(response.body)["items"] as? [[String: Any]]
                #expect(items?.count == 1)
                #expect((items?.first?["metadata"] as? [String: Any])?["name"] as? String == "hello-00001")
            }

            let update = ByteBuffer(string: #"{"metadata":{"name":"hello","resourceVersion":"\#(version)"},"spec":{"template":{"spec":{"command":"/bin/echo","args":["x"]}}}}"#)
            try await client.execute(uri: "/api/v1/namespaces/default/services/hello", method: .put, headers: auth, body: update) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/api/v1/namespaces/default/services/hello", method: .put, headers: auth, body: update) { response in
                #expect(response.status == .conflict, "the same resourceVersion is stale now")
                #expect((json(response.body)["error"] as? [String: Any])?["code"] as? String == "Conflict")
            }
            try await client.execute(uri: "/api/v1/namespaces/default/revisions/hello-00002", method: .get, headers: auth) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/api/v1/namespaces/default/services/hello", method: .delete, headers: auth) {
                #expect($0.status == .ok)
            }
            try await client.execute(uri: "/api/v1/namespaces/default/services/hello", method: .get, headers: auth) {
                #expect($0.status == .notFound)
            }
            try await client.execute(uri: "/api/v1/namespaces/default/revisions/hello-00001", method: .get, headers: auth) {
                #expect($0.status == .notFound)
            }
        }
    }

    @Test func badInputGets400NamingTheField() async throws {
        try await application().test(.router) { client in
            let bad = ByteBuffer(string: #"{"metadata":{"name":"hello"},"spec":{"template":{"spec":{"command":"/x","prot":8080}}}}"#)
            try await client.execute(uri: "/api/v1/namespaces/default/services", method: .post, headers: auth, body: bad) { response in
                #expect(response.status == .badRequest)
                let error = json(response.body)["error"] as? [String: Any]
                #expect(error?["field"] as? String == "spec.template.spec.prot")
                #expect((error?["message"] as? String)?.contains("unknown field") == true)
            }
            try await client.execute(uri: "/api/v1/namespaces/Bad/services", method: .get, headers: auth) {
                #expect($0.status == .badRequest)
            }
        }
    }
}
