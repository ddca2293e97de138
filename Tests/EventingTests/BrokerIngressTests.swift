@testable import Eventing
import Foundation
import Gateway
import Logging
import Store
import Testing

/// The ingress against a real (in-memory) store and log writer: answers, trigger fan-out at
/// commit time, the hop budget.
@Suite struct BrokerIngressTests {
    let store: Store
    let directory = EventingDirectory()
    let writer: EventLogWriter

    init() throws {
        store = try Store(inMemory: ())
        writer = EventLogWriter(store: store, logger: Logger(label: "test")) { _ in }
        writer.start()
        var snapshot = DirectorySnapshot()
        let orders = TriggerRoute(
            ref: TriggerRef(uid: "u-orders", name: "orders"), namespace: "default", broker: "main",
            filter: try TriggerFilterSpec(filter: AttributesFilter(attributes: ["type": "order"])).compile(),
            subscriber: ResolvedDestination(url: "http://127.0.0.1:9/", host: nil, display: "x"), deadLetterSink: nil,
            delivery: ResolvedDelivery.resolve(trigger: nil, broker: nil), ordered: false, parallelism: 1)
        var all = orders
        all.ref = TriggerRef(uid: "u-all", name: "all")
        all.filter = try TriggerFilterSpec().compile()
        snapshot.brokers[BrokerKey(namespace: "default", name: "main")] = BrokerRoute(
            namespace: "default", name: "main", durability: .fsync, triggers: [all, orders])
        directory.publish(snapshot)
    }

    func send(_ path: String, method: String = "POST", headers: [(String, String)], body: String = "") async -> LocalResponse {
        let ingress = BrokerIngress(directory: directory, writer: writer)
        let request = LocalRequest(method: method, uri: path, headers: headers.map { HeaderField(name: $0.0, value: $0.1) }, body: Array(body.utf8))
        return await withCheckedContinuation { continuation in ingress.handle(request) { continuation.resume(returning: $0) } }
    }

    func event(_ id: String, _ type: String, extra: [(String, String)] = []) -> [(String, String)] {
        [("ce-specversion", "1.0"), ("ce-id", id), ("ce-source", "/test"), ("ce-type", type)] + extra
    }

    @Test func acceptedEventsAreCommittedWithOneDeliveryPerMatchingTrigger() async throws {
        #expect(await send("/default/main", headers: event("1", "order")).status == 202)
        #expect(await send("/default/main", headers: event("2", "other")).status == 202)
        // The 202 comes after the commit, so the rows are there now.
        let open = try store.openDeliveries(limit: 10)
        #expect(open.map { "\($0.trigger.name)" }.sorted() == ["all", "all", "orders"])
        let stored = try CloudEvent(storageBytes: try #require(open.first?.payload))
        #expect(stored.extensions[BrokerIngress.ttlExtension] == .integer(255))
        writer.stop()
    }

    @Test func answersForBadRequests() async {
        #expect(await send("/", headers: event("1", "order")).status == 404)
        #expect(await send("/default/main/extra", headers: event("1", "order")).status == 400)
        #expect(await send("/default", headers: event("1", "order")).status == 400)
        #expect(await send("/default/", headers: event("1", "order")).status == 400)
        #expect(await send("//main", headers: event("1", "order")).status == 404)
        #expect(await send("/default/nope", headers: event("1", "order")).status == 404)
        let get = await send("/default/main", method: "GET", headers: [])
        #expect(get.status == 405 && get.headers.contains { $0.name == "Allow" && $0.value == "POST, OPTIONS" })
        let missing = await send("/default/main", headers: [("ce-specversion", "1.0"), ("ce-id", "1"), ("ce-type", "t")])
        #expect(missing.status == 400 && String(decoding: missing.body, as: UTF8.self).contains("\"attribute\":\"source\""))
        let avro = await send("/default/main", headers: [("Content-Type", "application/cloudevents+avro")], body: "x")
        #expect(avro.status == 415)
        writer.stop()
    }

    @Test func theHopBudgetStopsLoops() async throws {
        #expect(await send("/default/main", headers: event("1", "t", extra: [("ce-knativebrokerttl", "1")])).status == 400)
        #expect(await send("/default/main", headers: event("2", "t", extra: [("ce-knativebrokerttl", "7")])).status == 202)
        let open = try store.openDeliveries(limit: 10)
        let stored = try CloudEvent(storageBytes: try #require(open.first?.payload))
        #expect(stored.extensions[BrokerIngress.ttlExtension] == .integer(6))
        writer.stop()
    }

    @Test func aFullWriteQueueAnswers429() async throws {
        let tiny = EventLogWriter(store: store, maxQueuedEvents: 1, logger: Logger(label: "test")) { _ in }
        // Not started: the first request waits in the queue, the second finds it full.
        let ingress = BrokerIngress(directory: directory, writer: tiny)
        let request = LocalRequest(method: "POST", uri: "/default/main", headers: event("1", "t").map { HeaderField(name: $0.0, value: $0.1) }, body: [])
        ingress.handle(request) { _ in }
        let second = await withCheckedContinuation { continuation in ingress.handle(request) { continuation.resume(returning: $0) } }
        #expect(second.status == 429 && second.headers.contains { $0.name == "Retry-After" })
        tiny.start()
        tiny.stop()
        writer.stop()
    }
}
