import Foundation
import Hummingbird
import HummingbirdTesting
@testable import Platform
import Store
import Testing

@Suite struct TrafficPolicyAPITests {
    let token = "test-token"
    var auth: HTTPFields { [.authorization: "Bearer \(token)", .contentType: "application/json"] }
    let path = "/api/v1/namespaces/default/trafficpolicies/hello"

    func application() throws -> some ApplicationProtocol {
        let store = try Store(inMemory: ())
        try AdminTokens.register(bootstrap: token, in: store)
        let router = buildAdminRouter(AdminDependencies(
            store: store, logDirectory: "/nonexistent", modelDirectory: "/nonexistent",
            serviceURL: { "http://\($1).\($0).localhost:8080" }, isReady: { true }))
        return Application(router: router)
    }

    func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test func putGetDeleteRoundTrip() async throws {
        let body = #"{"spec":{"http":[{"retries":{"attempts":3,"perTryTimeout":"1s","retryOn":"5xx"},"fault":{"abort":{"percentage":{"value":12.5},"httpStatus":503}}}],"rateLimit":{"maxTokens":5,"fillInterval":"1s"},"trafficPolicy":{"outlierDetection":{"consecutive5xxErrors":3}}}}"#
        try await application().test(.router) { client in
            try await client.execute(uri: path, method: .put, headers: auth, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .ok)
                let object = json(response.body)
                #expect(object["kind"] as? String == "TrafficPolicy")
                #expect((object["metadata"] as? [String: Any])?["name"] as? String == "hello")
            }
            try await client.execute(uri: path, method: .get, headers: auth) { response in
                let spec = json(response.body)["spec"] as? [String: Any]
                let http = (spec?["http"] as? [[String: Any]])?.first
                let abort = (http?["fault"] as? [String: Any])?["abort"] as? [String: Any]
                #expect((abort?["percentage"] as? [String: Any])?["value"] as? Double == 12.5)
            }
            try await client.execute(uri: "/api/v1/namespaces/default/trafficpolicies", method: .get, headers: auth) { response in
                #expect((json(response.body)["items"] as? [Any])?.count == 1)
            }
            try await client.execute(uri: path, method: .delete, headers: auth) { #expect($0.status == .ok) }
            try await client.execute(uri: path, method: .get, headers: auth) { #expect($0.status == .notFound) }
        }
    }

    @Test(arguments: [
        (#"{"spec":{"http":[{"retry":{"attempts":1}}]}}"#, "spec.http[0].retry"),
        (#"{"spec":{"http":[{"timeout":"soon"}]}}"#, "spec.http[0].timeout"),
        (#"{"spec":{"http":[{"retries":{"attempts":2,"retryOn":"5xx,never"}}]}}"#, "spec.http[0].retries.retryOn"),
        (#"{"spec":{"http":[{"fault":{"delay":{"percentage":{"value":150},"fixedDelay":"1s"}}}]}}"#, "spec.http[0].fault.delay.percentage.value"),
        (#"{"spec":{"http":[{"match":[{"uri":{"regex":"(oops"}}]}]}}"#, "spec.http[0].match[0].uri.regex"),
        (#"{"spec":{"http":[{"match":[{"uri":{"exact":"/a","prefix":"/b"}}]}]}}"#, "spec.http[0].match[0].uri"),
        (#"{"spec":{"rateLimit":{"maxTokens":0,"fillInterval":"1s"}}}"#, "spec.rateLimit.maxTokens"),
        (#"{"spec":{"trafficPolicy":{"loadBalancer":{"simple":"FASTEST"}}}}"#, "spec.trafficPolicy.loadBalancer.simple"),
        (#"{"spec":{"trafficPolicy":{"outlierDetection":{"maxEjectionPercent":101}}}}"#, "spec.trafficPolicy.outlierDetection.maxEjectionPercent"),
        (#"{"spec":{"http":[{"mirrorPercentage":{"value":"half"}}]}}"#, "spec.http[0].mirrorPercentage.value"),
        (#"{"metadata":{"name":"other"},"spec":{}}"#, "metadata.name"),
    ])
    func badFieldsAreNamed(body: String, field: String) async throws {
        try await application().test(.router) { client in
            try await client.execute(uri: path, method: .put, headers: auth, body: ByteBuffer(string: body)) { response in
                #expect(response.status == .badRequest)
                let error = json(response.body)["error"] as? [String: Any]
                #expect(error?["field"] as? String == field, "\(String(buffer: response.body))")
            }
        }
    }
}
