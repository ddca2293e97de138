import Foundation
import Store
import Testing

@Suite struct TrafficPolicyStoreTests {
    let store: Store
    init() throws { store = try Store(inMemory: ()) }

    let spec = TrafficPolicySpec(
        http: [HTTPRouteSpec(match: [HTTPMatchSpec(uri: StringMatchSpec(prefix: "/api"))], retries: RetrySpec(attempts: 3))],
        rateLimit: LocalRateLimitSpec(maxTokens: 10, fillInterval: "1s"))

    @Test func setCreatesThenReplacesAndBumpsGeneration() async throws {
        var changes = store.changes().makeAsyncIterator()
        let created = try store.setTrafficPolicy(namespace: "default", name: "hello", spec: spec)
        #expect(created.meta.generation == 1)
        #expect(try store.trafficPolicy(namespace: "default", name: "hello")?.spec == spec)
        let same = try store.setTrafficPolicy(namespace: "default", name: "hello", spec: spec)
        #expect(same.meta.resourceVersion == created.meta.resourceVersion, "an unchanged spec writes nothing")
        var changed = spec
        changed.rateLimit = nil
        let updated = try store.setTrafficPolicy(
            namespace: "default", name: "hello", spec: changed, expectedResourceVersion: created.meta.resourceVersion)
        #expect(updated.meta.generation == 2)
        #expect(updated.meta.uid == created.meta.uid)
        #expect(await changes.next() == StoreChange(kind: .trafficPolicy, namespace: "default", name: "hello"))
    }

    @Test func staleResourceVersionConflicts() throws {
        let created = try store.setTrafficPolicy(namespace: "default", name: "hello", spec: spec)
        _ = try store.setTrafficPolicy(namespace: "default", name: "hello", spec: TrafficPolicySpec())
        #expect(throws: StoreError.self) {
            try store.setTrafficPolicy(namespace: "default", name: "hello", spec: spec, expectedResourceVersion: created.meta.resourceVersion)
        }
    }

    @Test func listAndDelete() throws {
        _ = try store.setTrafficPolicy(namespace: "default", name: "b", spec: spec)
        _ = try store.setTrafficPolicy(namespace: "default", name: "a", spec: spec)
        _ = try store.setTrafficPolicy(namespace: "other", name: "c", spec: spec)
        #expect(try store.trafficPolicies(namespace: "default").map(\.meta.name) == ["a", "b"])
        #expect(try store.trafficPolicies().count == 3)
        try store.deleteTrafficPolicy(namespace: "default", name: "a")
        #expect(try store.trafficPolicy(namespace: "default", name: "a") == nil)
        #expect(throws: StoreError.self) { try store.deleteTrafficPolicy(namespace: "default", name: "a") }
    }
}
