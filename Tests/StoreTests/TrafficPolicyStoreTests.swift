import Foundation
import GRDB
@testable import Store
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

@Suite struct RateLimitMigrationTests {
    @Test func policiesStoredBeforeTheNewDefaultKeepTheirRefill() throws {
        let queue = try DatabaseQueue()
        try Migrations.migrator.migrate(queue, upTo: "v7-event-log-rowid")
        try queue.write { db in
            for (name, spec) in [
                ("old", #"{"rateLimit":{"maxTokens":100,"fillInterval":"1s"}}"#),
                ("explicit", #"{"rateLimit":{"maxTokens":100,"tokensPerFill":5,"fillInterval":"1s"}}"#),
                ("none", #"{"http":[]}"#),
            ] {
                try db.execute(sql: """
                    INSERT INTO trafficPolicy (namespace, name, uid, generation, resourceVersion, spec, createdAt, updatedAt)
                    VALUES ('default', ?, ?, 1, 1, ?, 0, 0)
                    """, arguments: [name, "uid-\(name)", spec])
            }
        }
        try Migrations.migrator.migrate(queue)
        let specs = try queue.read { db in
            try Dictionary(uniqueKeysWithValues: Row.fetchAll(db, sql: "SELECT name, spec FROM trafficPolicy").map { ($0[0] as String, $0[1] as String) })
        }
        func fill(_ name: String) throws -> Int? {
            let json = try JSONSerialization.jsonObject(with: Data(try #require(specs[name]).utf8)) as? [String: Any]
            return (json?["rateLimit"] as? [String: Any])?["tokensPerFill"] as? Int
        }
        #expect(try fill("old") == 100)
        #expect(try fill("explicit") == 5)
        #expect(try fill("none") == nil)
    }
}
