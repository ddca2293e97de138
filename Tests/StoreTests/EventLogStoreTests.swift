import Foundation
import GRDB
@testable import Store
import TestSupport
import Testing

@Suite struct EventLogStoreTests {
    let store: Store
    init() throws { store = try Store(inMemory: ()) }

    let a = TriggerRef(uid: "uid-a", name: "a")
    let b = TriggerRef(uid: "uid-b", name: "b")

    func event(_ id: String, triggers: [TriggerRef]) -> NewEvent {
        NewEvent(namespace: "default", broker: "main", eventId: id, source: "/s", type: "t", payload: Array(id.utf8), triggers: triggers)
    }

    @Test func commitCreatesOneDeliveryPerTriggerAndOpenRowsComeBack() throws {
        let seqs = try store.commitEventLog(
            appending: [event("1", triggers: [a, b]), event("2", triggers: [a]), event("3", triggers: [])],
            progress: [], durability: .full, now: 100)
        #expect(seqs.count == 3 && seqs == seqs.sorted())
        let open = try store.openDeliveries(limit: 10)
        #expect(open.map(\.eventSeq) == [seqs[0], seqs[0], seqs[1]])
        #expect(open.allSatisfy { $0.state == .pending && $0.attempts == 0 })
        #expect(open.first?.payload == Array("1".utf8))
        #expect(try store.openDeliveries(afterSeq: seqs[0], limit: 10).map(\.eventSeq) == [seqs[1]])
        // A page that ends inside one event's deliveries goes on with the rest of them.
        let first = try store.openDeliveries(limit: 1)
        let rest = try store.openDeliveries(afterSeq: first[0].eventSeq, afterTrigger: first[0].trigger.uid, limit: 10)
        #expect((first + rest).map { "\($0.eventSeq)/\($0.trigger.uid)" } == open.map { "\($0.eventSeq)/\($0.trigger.uid)" })
        #expect(try store.eventLogCounts() == (3, 3))
    }

    @Test func progressClosesRowsAndFailedOnesCanBeRedriven() throws {
        let seqs = try store.commitEventLog(appending: [event("1", triggers: [a, b])], progress: [], durability: .normal, now: 100)
        _ = try store.commitEventLog(appending: [], progress: [
            DeliveryProgress(eventSeq: seqs[0], triggerUID: a.uid, state: .delivered, attempts: 1, nextAttemptAt: 0, lastStatus: 202, lastError: nil),
            DeliveryProgress(eventSeq: seqs[0], triggerUID: b.uid, state: .deadLettered, attempts: 3, nextAttemptAt: 0, lastStatus: 500, lastError: "boom"),
        ], durability: .normal, now: 101)
        #expect(try store.openDeliveries(limit: 10).isEmpty)
        let failed = try store.failedDeliveries(namespace: "default", limit: 10)
        #expect(failed.count == 1 && failed[0].deliveries.first?.trigger == b && failed[0].deliveries.first?.lastError == "boom")
        let view = try #require(try store.storedEvent(seq: seqs[0]))
        #expect(view.deliveries.map(\.state) == [.delivered, .deadLettered])
        // A deleted trigger's delivery stays failed: nothing would send it.
        #expect(try store.redriveDeliveries(namespace: "default", triggerUIDs: [a.uid], now: 150).isEmpty)
        #expect(try store.failedDeliveries(namespace: "default", limit: 10).count == 1)
        let reopened = try store.redriveDeliveries(namespace: "default", triggerName: "b", triggerUIDs: [a.uid, b.uid], now: 200)
        #expect(reopened.count == 1 && reopened[0].trigger == b && reopened[0].nextAttemptAt == 200)
        #expect(try store.openDeliveries(limit: 10).count == 1)
        #expect(try store.failedDeliveries(namespace: "default", limit: 10).isEmpty)
    }

    @Test func retentionKeepsEventsWithOpenDeliveries() throws {
        let seqs = try store.commitEventLog(
            appending: [event("old-done", triggers: [a]), event("old-open", triggers: [b])], progress: [], durability: .normal, now: 10)
        _ = try store.commitEventLog(appending: [], progress: [
            DeliveryProgress(eventSeq: seqs[0], triggerUID: a.uid, state: .delivered, attempts: 1, nextAttemptAt: 0, lastStatus: 204, lastError: nil),
        ], durability: .normal, now: 11)
        _ = try store.commitEventLog(appending: [event("new", triggers: [])], progress: [], durability: .normal, now: 1_000)
        #expect(try store.pruneEvents(receivedBefore: 500) == 1)
        let left = try store.storedEvents(namespace: "default", broker: "main", limit: 10).map(\.eventId)
        #expect(left == ["new", "old-open"])
    }

    /// Retention keeps the newest event, so a sequence number is never handed out twice, and
    /// stops at the first event inside the retention window.
    @Test func retentionKeepsTheNewestEventSoNumbersOnlyGrow() throws {
        let seqs = try store.commitEventLog(
            appending: (0..<3).map { event("old\($0)", triggers: []) }, progress: [], durability: .normal, now: 10)
        #expect(try store.pruneEvents(receivedBefore: 500) == 2)
        #expect(try store.storedEvents(namespace: "default", broker: "main", limit: 10).map(\.seq) == [seqs[2]])
        let later = try store.commitEventLog(appending: [event("later", triggers: [])], progress: [], durability: .normal, now: 20)
        #expect(later[0] == seqs[2] + 1)
        _ = try store.commitEventLog(appending: [event("recent", triggers: []), event("newest", triggers: [])], progress: [], durability: .normal, now: 900)
        #expect(try store.pruneEvents(receivedBefore: 500) == 2)
        #expect(try store.storedEvents(namespace: "default", broker: "main", limit: 10).map(\.eventId) == ["newest", "recent"])
        #expect(try store.pruneEvents(receivedBefore: 500, limit: 1) == 0)
    }

    /// A commit runs at the synchronous level of its durability, and the level follows the
    /// durability from one commit to the next.
    @Test func commitsSetTheSynchronousLevelOfTheirDurability() throws {
        let level = { try self.store.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA synchronous") } }
        _ = try store.commitEventLog(appending: [event("a", triggers: [])], progress: [], durability: .full, now: 1)
        #expect(try level() == 2)
        _ = try store.commitEventLog(appending: [event("b", triggers: [])], progress: [], durability: .normal, now: 2)
        #expect(try level() == 1)
        _ = try store.commitEventLog(appending: [], progress: [], durability: .full, now: 3)
        #expect(try level() == 2)
    }

    @Test func listingFiltersByTypeAndPagesBackwards() throws {
        var events = (0..<5).map { event("e\($0)", triggers: []) }
        events[2].type = "special"
        let seqs = try store.commitEventLog(appending: events, progress: [], durability: .normal, now: 1)
        #expect(try store.storedEvents(namespace: "default", broker: "main", type: "special", limit: 10).map(\.eventId) == ["e2"])
        #expect(try store.storedEvents(namespace: "default", broker: "main", beforeSeq: seqs[3], limit: 2).map(\.eventId) == ["e2", "e1"])
        #expect(try store.storedEvents(namespace: "default", broker: "other", limit: 10).isEmpty)
    }

    @Test func eventingResourcesKeepConcurrencyRules() throws {
        let created = try store.createDocument(EventingKind.broker, namespace: "default", name: "main", spec: "{}")
        #expect(created.meta.generation == 1 && created.status == "{}")
        #expect(throws: StoreError.self) { try store.createDocument(EventingKind.broker, namespace: "default", name: "main", spec: "{}") }
        // The same name may be used by another kind.
        _ = try store.createDocument(EventingKind.trigger, namespace: "default", name: "main", spec: "{}")
        let replaced = try store.replaceDocument(EventingKind.broker, namespace: "default", name: "main", annotations: [:], spec: "{\"a\":1}")
        #expect(replaced.meta.generation == 2)
        #expect(throws: StoreError.self) {
            try store.replaceDocument(EventingKind.broker, namespace: "default", name: "main", annotations: [:], spec: "{}", expectedResourceVersion: created.meta.resourceVersion)
        }
        try store.setDocumentStatus(EventingKind.broker, namespace: "default", name: "main", status: "{\"ready\":true}")
        #expect(try store.document(EventingKind.broker, namespace: "default", name: "main")?.meta.generation == 2)
        try store.deleteDocument(EventingKind.broker, namespace: "default", name: "main")
        #expect(try store.documents(EventingKind.broker).isEmpty)
        #expect(try store.documents(EventingKind.trigger).count == 1)
    }
}
