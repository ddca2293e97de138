import Foundation
import Logging
import Store

/// Annotations that tune a trigger's delivery (Outpost names; the Kafka broker's ordering
/// annotation is accepted too, so Knative manifests keep their meaning).
public enum TriggerAnnotations {
    /// `ordered` (one delivery in flight per `partitionkey`) or `unordered` (default).
    public static let deliveryOrder = "eventing.outpost.dev/delivery.order"
    /// The Knative Kafka broker's name for the same setting.
    public static let kafkaDeliveryOrder = "kafka.eventing.knative.dev/delivery.order"
    /// Most deliveries in flight at once (1–1000, default ``defaultParallelism``).
    public static let parallelism = "eventing.outpost.dev/parallelism"
    /// Default in-flight bound per trigger.
    public static let defaultParallelism = 32

    /// Reads and checks the annotations; the error names the one to fix.
    public static func options(_ annotations: [String: String]) throws(EventingError) -> (ordered: Bool, parallelism: Int) {
        var ordered = false
        if let order = annotations[deliveryOrder] ?? annotations[kafkaDeliveryOrder] {
            switch order {
            case "ordered": ordered = true
            case "unordered": ordered = false
            default: throw EventingError(invalid: "metadata.annotations[\(deliveryOrder)]: must be \"ordered\" or \"unordered\", not \"\(order)\"")
            }
        }
        var parallelism = defaultParallelism
        if let text = annotations[Self.parallelism] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw EventingError(invalid: "metadata.annotations[\(Self.parallelism)]: must be an integer from 1 to 1000, not \"\(text)\"")
            }
            parallelism = value
        }
        return (ordered, parallelism)
    }
}

/// Where the daemon's own endpoints are, for resolving destinations.
struct EventingAddresses: Sendable {
    /// The domain of service hosts (`localhost`).
    var domain: String
    /// Loopback base URL of the gateway, e.g. `http://127.0.0.1:8080`.
    var gatewayURL: String
    /// The gateway port people use in URLs.
    var publicPort: Int

    var brokerIngressHost: String { "broker-ingress.\(domain)" }

    private var portSuffix: String { publicPort == 80 ? "" : ":\(publicPort)" }

    func brokerURL(namespace: String, name: String) -> String {
        "http://\(brokerIngressHost)\(portSuffix)/\(namespace)/\(name)"
    }

    /// Resolves a destination of a resource in `namespace`.
    func resolve(_ destination: Destination, namespace: String) -> ResolvedDestination? {
        if let ref = destination.ref {
            let refNamespace = ref.namespace ?? namespace
            let path = destination.uri ?? ""
            switch ref.kind {
            case "Service":
                let host = "\(ref.name).\(refNamespace).\(domain)"
                let suffix = path.isEmpty ? "/" : path
                return ResolvedDestination(url: gatewayURL + suffix, host: host, display: "http://\(host)\(portSuffix)\(suffix)")
            case "Broker":
                return ResolvedDestination(
                    url: "\(gatewayURL)/\(refNamespace)/\(ref.name)", host: brokerIngressHost,
                    display: brokerURL(namespace: refNamespace, name: ref.name))
            default:
                return nil
            }
        }
        guard let uri = destination.uri else { return nil }
        return ResolvedDestination(url: uri, host: nil, display: uri)
    }
}

/// Compiles brokers and triggers into the ``EventingDirectory`` and writes their statuses.
/// Level-triggered: every pass reads all eventing resources (there are few) and rebuilds.
struct EventingReconciler: Sendable {
    let store: Store
    let directory: EventingDirectory
    let addresses: EventingAddresses
    let logger: Logger

    func reconcile(now: Date = Date()) throws {
        let brokers = try store.documents(EventingKind.broker)
        let triggers = try store.documents(EventingKind.trigger)
        var snapshot = DirectorySnapshot()
        var byBroker: [BrokerKey: [TriggerRoute]] = [:]
        var brokerSpecs: [BrokerKey: BrokerSpec] = [:]
        for broker in brokers {
            guard let spec = try? EventingJSON.decode(BrokerSpec.self, broker.spec) else { continue }
            brokerSpecs[BrokerKey(namespace: broker.meta.namespace, name: broker.meta.name)] = spec
        }
        for trigger in triggers {
            var status = EventingStatus()
            status.observedGeneration = trigger.meta.generation
            defer { writeStatus(trigger, status, now: now) }
            guard let spec = try? EventingJSON.decode(TriggerSpec.self, trigger.spec) else {
                status.conditions.set("Ready", status: "False", reason: "InvalidSpec", message: "the stored spec cannot be read", now: now)
                continue
            }
            let key = BrokerKey(namespace: trigger.meta.namespace, name: spec.broker)
            let filter: CompiledFilter
            let options: (ordered: Bool, parallelism: Int)
            do {
                filter = try spec.filterSpec.compile()
                options = try TriggerAnnotations.options(trigger.meta.annotations)
            } catch {
                status.conditions.set("Ready", status: "False", reason: "InvalidSpec", message: "\(error)", now: now)
                continue
            }
            guard let subscriber = addresses.resolve(spec.subscriber, namespace: trigger.meta.namespace) else {
                status.conditions.set("Ready", status: "False", reason: "SubscriberResolveFailed", message: "the subscriber has no address", now: now)
                continue
            }
            let delivery = ResolvedDelivery.resolve(trigger: spec.delivery, broker: brokerSpecs[key]?.delivery)
            let deadLetterSink = delivery.deadLetterSink.flatMap { addresses.resolve($0, namespace: trigger.meta.namespace) }
            status.subscriberUri = subscriber.display
            status.deadLetterSinkUri = deadLetterSink?.display
            let route = TriggerRoute(
                ref: TriggerRef(uid: trigger.meta.uid, name: trigger.meta.name), namespace: trigger.meta.namespace, broker: spec.broker,
                filter: filter, subscriber: subscriber, deadLetterSink: deadLetterSink, delivery: delivery,
                ordered: options.ordered, parallelism: options.parallelism)
            snapshot.triggers[trigger.meta.uid] = route
            if brokerSpecs[key] == nil {
                status.conditions.set(
                    "Ready", status: "False", reason: "BrokerDoesNotExist",
                    message: "broker \(key.namespace)/\(key.name) does not exist; events reach this trigger once it does", now: now)
                continue
            }
            byBroker[key, default: []].append(route)
            if let problem = try subscriberProblem(spec.subscriber, namespace: trigger.meta.namespace) {
                status.conditions.set("Ready", status: "False", reason: "SubscriberResolveFailed", message: problem, now: now)
            } else {
                status.conditions.set("Ready", status: "True", now: now)
            }
        }
        for broker in brokers {
            let key = BrokerKey(namespace: broker.meta.namespace, name: broker.meta.name)
            var status = EventingStatus()
            status.observedGeneration = broker.meta.generation
            if let spec = brokerSpecs[key] {
                snapshot.brokers[key] = BrokerRoute(
                    namespace: key.namespace, name: key.name, durability: spec.durability ?? .grouped,
                    triggers: (byBroker[key] ?? []).sorted { $0.ref.name < $1.ref.name })
                status.address = EventingStatus.Address(url: addresses.brokerURL(namespace: key.namespace, name: key.name))
                status.conditions.set("Ready", status: "True", now: now)
            } else {
                status.conditions.set("Ready", status: "False", reason: "InvalidSpec", message: "the stored spec cannot be read", now: now)
            }
            writeStatus(broker, status, now: now)
        }
        directory.publish(snapshot)
    }

    /// Why a subscriber cannot be reached right now (a missing service), or nil.
    private func subscriberProblem(_ destination: Destination, namespace: String) throws -> String? {
        guard let ref = destination.ref else { return nil }
        let refNamespace = ref.namespace ?? namespace
        switch ref.kind {
        case "Service":
            return try store.service(namespace: refNamespace, name: ref.name) == nil
                ? "service \(refNamespace)/\(ref.name) does not exist; deliveries are retried until it does" : nil
        case "Broker":
            return try store.document(EventingKind.broker, namespace: refNamespace, name: ref.name) == nil
                ? "broker \(refNamespace)/\(ref.name) does not exist" : nil
        default:
            return nil
        }
    }
    func writeStatus(_ resource: EventingResource, _ status: EventingStatus, now: Date) {
        store.writeStatus(of: resource, status, now: now, logger: logger)
    }
}

extension Store {
    /// Writes an eventing resource's status, keeping the transition times of conditions that
    /// did not change, and skipping the write when nothing changed (a write wakes the
    /// controllers, so an unchanged status must not be written).
    func writeStatus(of resource: EventingResource, _ status: EventingStatus, now: Date, logger: Logger) {
        var merged = status
        if let old = try? EventingJSON.decode(EventingStatus.self, resource.status) {
            merged.conditions = old.conditions
            for condition in status.conditions {
                merged.conditions.set(condition.type, status: condition.status, reason: condition.reason, message: condition.message, now: now)
            }
            merged.lastScheduleTime = merged.lastScheduleTime ?? old.lastScheduleTime
            if merged == old { return }
        }
        do {
            try setDocumentStatus(resource.kind, namespace: resource.meta.namespace, name: resource.meta.name, status: try EventingJSON.encode(merged), now: now)
        } catch {
            logger.warning("cannot write status", metadata: ["resource": "\(resource.meta.namespace)/\(resource.meta.name)", "error": "\(error)"])
        }
    }
}

/// JSON of specs and statuses as the store keeps them (sorted keys, so an unchanged value
/// compares equal as text).
public enum EventingJSON {
    /// Encodes a spec or status.
    public static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Decodes a spec or status.
    public static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(text.utf8))
    }
}
