import Foundation
import GRDB
@testable import Store
import TestSupport
import Testing

@Suite struct StoreTransactionTests {
    let store: Store
    init() throws { store = try Store(inMemory: ()) }

    func spec(_ command: String = "/bin/echo", args: [String] = []) -> ServiceSpec {
        ServiceSpec(template: RevisionTemplate(command: command, args: args))
    }

    @Test func createCutsFirstRevisionAndRoute() throws {
        let service = try store.createService(namespace: "default", name: "hello", spec: spec())
        #expect(service.meta.generation == 1)
        let revisions = try store.revisions(namespace: "default", service: "hello")
        #expect(revisions.map(\.meta.name) == ["hello-00001"])
        #expect(revisions[0].spec.command == "/bin/echo")
        #expect(revisions[0].configurationGeneration == 1)
        let route = try #require(try store.route(namespace: "default", name: "hello"))
        #expect(route.traffic == TrafficTarget.allToLatest)
    }

    @Test func duplicateNameIsRejectedPerNamespace() throws {
        _ = try store.createService(namespace: "default", name: "hello", spec: spec())
        #expect(throws: StoreError(.alreadyExists, "service default/hello already exists")) {
            try store.createService(namespace: "default", name: "hello", spec: spec())
        }
        _ = try store.createService(namespace: "other", name: "hello", spec: spec())
        #expect(try store.services().count == 2)
        #expect(try store.services(namespace: "other").count == 1)
    }

    @Test func templateChangeCutsNextRevisionAndKeepsOldOneImmutable() throws {
        let created = try store.createService(namespace: "default", name: "hello", spec: spec(args: ["a"]))
        let updated = try store.updateService(
            namespace: "default", name: "hello", annotations: [:], spec: spec(args: ["b"]),
            expectedResourceVersion: created.meta.resourceVersion)
        #expect(updated.meta.generation == 2)
        #expect(updated.meta.resourceVersion > created.meta.resourceVersion)
        let revisions = try store.revisions(namespace: "default", service: "hello")
        #expect(revisions.map(\.meta.name) == ["hello-00001", "hello-00002"])
        #expect(revisions[0].spec.args == ["a"])
        #expect(revisions[1].spec.args == ["b"])
    }

    @Test func unchangedUpdateWritesNothing() throws {
        let created = try store.createService(namespace: "default", name: "hello", spec: spec())
        let same = try store.updateService(namespace: "default", name: "hello", annotations: [:], spec: spec())
        #expect(same.meta.resourceVersion == created.meta.resourceVersion)
        #expect(try store.revisions(service: "hello").count == 1)
    }

    @Test func trafficOnlyChangeBumpsGenerationWithoutRevision() throws {
        _ = try store.createService(namespace: "default", name: "hello", spec: spec())
        var changed = spec()
        changed.traffic = [TrafficTarget(revisionName: "hello-00001", percent: 100)]
        let updated = try store.updateService(namespace: "default", name: "hello", annotations: [:], spec: changed)
        #expect(updated.meta.generation == 2)
        #expect(try store.revisions(service: "hello").count == 1)
        #expect(try store.route(namespace: "default", name: "hello")?.traffic == changed.traffic)
    }

    @Test func staleResourceVersionConflicts() throws {
        let created = try store.createService(namespace: "default", name: "hello", spec: spec())
        _ = try store.updateService(namespace: "default", name: "hello", annotations: [:], spec: spec(args: ["x"]))
        #expect {
            try store.updateService(
                namespace: "default", name: "hello", annotations: [:], spec: spec(args: ["y"]),
                expectedResourceVersion: created.meta.resourceVersion)
        } throws: { ($0 as? StoreError)?.code == .conflict }
        #expect(try store.revisions(service: "hello").count == 2)
    }

    @Test func deleteCascadesToRevisionsAndRoute() throws {
        _ = try store.createService(namespace: "default", name: "hello", spec: spec())
        _ = try store.updateService(namespace: "default", name: "hello", annotations: [:], spec: spec(args: ["x"]))
        let removed = try store.deleteService(namespace: "default", name: "hello")
        #expect(removed.map(\.meta.name) == ["hello-00001", "hello-00002"])
        #expect(try store.service(namespace: "default", name: "hello") == nil)
        #expect(try store.revisions().isEmpty)
        #expect(try store.route(namespace: "default", name: "hello") == nil)
        #expect { try store.deleteService(namespace: "default", name: "hello") } throws: { ($0 as? StoreError)?.code == .notFound }
    }

    @Test func statusWritesOnlyWhenChanged() throws {
        _ = try store.createService(namespace: "default", name: "hello", spec: spec())
        let now = Date(timeIntervalSince1970: 1_000)
        let markReady: (inout RevisionStatus) -> Void = { status in status.conditions.set("Ready", status: "True", now: now) }
        let first = try store.updateRevisionStatus(namespace: "default", name: "hello-00001", now: now, markReady)
        let second = try store.updateRevisionStatus(namespace: "default", name: "hello-00001", now: now, markReady)
        #expect(first)
        #expect(!second, "an unchanged status is not written")
        let revision = try #require(try store.revision(namespace: "default", name: "hello-00001"))
        #expect(revision.status.conditions["Ready"]?.status == "True")
        #expect(revision.status.conditions["Ready"]?.lastTransitionTime == now)
        let missing = try store.updateRevisionStatus(namespace: "default", name: "missing-00001") { status in status.actualReplicas = 1 }
        #expect(!missing)
    }

    @Test func changeStreamReportsCommittedWrites() async throws {
        let changes = store.changes()
        _ = try store.createService(namespace: "default", name: "hello", spec: spec())
        var iterator = changes.makeAsyncIterator()
        let first = await iterator.next()
        let second = await iterator.next()
        #expect(first == StoreChange(kind: .service, namespace: "default", name: "hello"))
        #expect(second == StoreChange(kind: .revision, namespace: "default", name: "hello-00001"))
    }

    @Test func revisionNamesArePaddedToFiveDigits() {
        #expect(Store.revisionName(service: "a", generation: 1) == "a-00001")
        #expect(Store.revisionName(service: "a", generation: 123456) == "a-123456")
    }
}

@Suite struct StoreMigrationTests {
    @Test func fileStoreUsesWALAndRecordsMigrations() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/outpost.db"
        do {
            let store = try Store(path: path)
            #expect(try store.journalMode() == "wal")
            #expect(try store.appliedMigrations() == ["v1-serving-resources", "v3-traffic-policies", "v4-admin-access", "v5-eventing", "v6-resource-documents", "v7-event-log-rowid", "v8-rate-limit-fill-default"])
            _ = try store.createService(namespace: "default", name: "hello", spec: ServiceSpec(template: RevisionTemplate(command: "/bin/true")))
        }
        // Reopening migrates nothing twice and keeps the data.
        let reopened = try Store(path: path)
        #expect(try reopened.appliedMigrations() == ["v1-serving-resources", "v3-traffic-policies", "v4-admin-access", "v5-eventing", "v6-resource-documents", "v7-event-log-rowid", "v8-rate-limit-fill-default"])
        #expect(try reopened.service(namespace: "default", name: "hello") != nil)
    }

    /// A log written under the v5 schema (AUTOINCREMENT, index on receivedAt) keeps its events,
    /// their numbers and their delivery rows through the rebuild; new events continue the count
    /// and deleting an event still takes its deliveries along.
    @Test func eventLogRebuildKeepsEventsAndDeliveries() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/outpost.db"
        do {
            let pool = try DatabasePool(path: path)
            try Migrations.migrator.migrate(pool, upTo: "v6-resource-documents")
            try pool.write { db in
                for seq in 1...3 {
                    try db.execute(sql: """
                        INSERT INTO event (namespace, broker, eventId, source, type, receivedAt, payload)
                        VALUES ('default', 'main', ?, '/s', 't', ?, x'0102')
                        """, arguments: ["e\(seq)", Double(seq)])
                    try db.execute(sql: """
                        INSERT INTO delivery (eventSeq, triggerUID, triggerName, state, attempts, nextAttemptAt, updatedAt)
                        VALUES (?, 'uid-a', 'a', 0, 0, 0, 0)
                        """, arguments: [seq])
                }
            }
        }
        let store = try Store(path: path)
        #expect(try store.appliedMigrations().contains("v7-event-log-rowid"))
        #expect(try store.storedEvents(namespace: "default", broker: "main", limit: 10).map(\.seq) == [3, 2, 1])
        #expect(try store.openDeliveries(limit: 10).map(\.eventSeq) == [1, 2, 3])
        let schema = try store.writer.read { db in
            try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE tbl_name = 'event' ORDER BY name")
        }
        #expect(schema == ["event", "event_by_broker"])
        let next = try store.commitEventLog(
            appending: [NewEvent(namespace: "default", broker: "main", eventId: "e4", source: "/s", type: "t", payload: [1], triggers: [])],
            progress: [], durability: .normal, now: 4)
        #expect(next == [4])
        try store.writer.write { db in try db.execute(sql: "DELETE FROM event WHERE seq = 1") }
        #expect(try store.openDeliveries(limit: 10).map(\.eventSeq) == [2, 3])
    }

    @Test func unreadableFileIsAStorageError() throws {
        #expect { try Store(path: "/proc/outpost-cannot-exist/outpost.db") } throws: { ($0 as? StoreError)?.code == .storage }
    }
}

@Suite struct AuditLogTests {
    @Test func theAuditLogKeepsItsNewestEntries() throws {
        let store = try Store(inMemory: ())
        for index in 0..<25 {
            try store.appendAudit(
                AuditEntry(at: Date(), actor: "anonymous", method: "GET", path: "/api/v1/x\(index)", status: 401, remoteAddress: ""),
                keeping: 10)
        }
        let kept = try store.auditEntries(limit: 100)
        #expect(kept.map(\.path) == (15..<25).reversed().map { "/api/v1/x\($0)" })
    }
}
