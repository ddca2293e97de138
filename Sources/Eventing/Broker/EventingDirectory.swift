import Foundation
import Store
import Synchronization

/// Where a destination resolves to: the URL to POST to and the `Host` header to send.
///
/// A service reference goes through the gateway on loopback with the service's host, so it
/// gets traffic splitting and scale-from-zero like any request; a URI goes where it says.
struct ResolvedDestination: Sendable, Hashable {
    /// The URL the dispatcher connects to.
    var url: String
    /// `Host` header override (service references), else nil.
    var host: String?
    /// The address people see in statuses and `knativeerrordest`.
    var display: String
}

/// A trigger compiled for the data path.
struct TriggerRoute: Sendable {
    var ref: TriggerRef
    var namespace: String
    var broker: String
    var filter: CompiledFilter
    var subscriber: ResolvedDestination
    var deadLetterSink: ResolvedDestination?
    var delivery: ResolvedDelivery
    /// Per-`partitionkey` FIFO instead of parallel delivery.
    var ordered: Bool
    /// Most deliveries of this trigger in flight at once.
    var parallelism: Int
}

/// A broker compiled for the ingress: its triggers, indexed by the event type they require.
struct BrokerRoute: Sendable {
    var namespace: String
    var name: String
    var durability: BrokerDurability
    var triggers: [TriggerRoute]
    /// Trigger indexes by the exact `type` their filter requires.
    var triggersByType: [String: [Int]]
    /// Triggers whose filter does not pin the type.
    var triggersForAnyType: [Int]

    init(namespace: String, name: String, durability: BrokerDurability, triggers: [TriggerRoute]) {
        self.namespace = namespace
        self.name = name
        self.durability = durability
        self.triggers = triggers
        var byType: [String: [Int]] = [:]
        var any: [Int] = []
        for (index, trigger) in triggers.enumerated() {
            if let type = trigger.filter.exactType { byType[type, default: []].append(index) } else { any.append(index) }
        }
        triggersByType = byType
        triggersForAnyType = any
    }

    /// The triggers whose filters match `event`, each once, in trigger-name order.
    func matchingTriggers(_ event: CloudEvent) -> [TriggerRef] {
        var refs: [TriggerRef] = []
        let typed = triggersByType[event.type] ?? []
        if typed.isEmpty && triggersForAnyType.isEmpty { return refs }
        for index in typed where triggers[index].filter.matches(event) { refs.append(triggers[index].ref) }
        for index in triggersForAnyType where triggers[index].filter.matches(event) { refs.append(triggers[index].ref) }
        return refs
    }
}

/// Namespace and name of a broker.
struct BrokerKey: Hashable, Sendable {
    var namespace: String
    var name: String
}

/// An immutable view of every broker and trigger, swapped whole by the controller and read by
/// the ingress and the dispatcher without touching SQLite.
struct DirectorySnapshot: Sendable {
    var brokers: [BrokerKey: BrokerRoute] = [:]
    var triggers: [String: TriggerRoute] = [:]
}

/// Holds the current ``DirectorySnapshot``.
final class EventingDirectory: Sendable {
    private let snapshot = Mutex(DirectorySnapshot())

    func publish(_ new: DirectorySnapshot) {
        snapshot.withLock { $0 = new }
    }

    func broker(namespace: String, name: String) -> BrokerRoute? {
        snapshot.withLock { $0.brokers[BrokerKey(namespace: namespace, name: name)] }
    }

    func trigger(uid: String) -> TriggerRoute? {
        snapshot.withLock { $0.triggers[uid] }
    }

    /// The UIDs of every trigger that exists now.
    func triggerUIDs() -> Set<String> {
        snapshot.withLock { Set($0.triggers.keys) }
    }
}
