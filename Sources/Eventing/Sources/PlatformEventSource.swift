import Foundation
import Logging
import ServiceLifecycle
import Store

/// Turns changes of the platform's own resources into CloudEvents, sent to every broker that
/// asks for them with the annotation `eventing.outpost.dev/platform-events: "true"` (the
/// host's equivalent of Knative's ApiServerSource).
///
/// Event types: `dev.outpost.service.created|deleted`, `dev.outpost.revision.created|ready|
/// failed|scaledtozero|deleted`, `dev.outpost.broker|trigger|pingsource.created|deleted`.
/// `source` is the resource's API path, `subject` its name; `data` is a small JSON object.
struct PlatformEventSource: Sendable {
    let store: Store
    let logger: Logger
    let publish: @Sendable ([CloudEvent], BrokerKey) async -> String?

    /// The broker annotation that subscribes a broker to platform events.
    static let annotation = "eventing.outpost.dev/platform-events"

    /// What was last seen of a resource, to tell which transition a change was.
    private struct Seen: Equatable {
        var ready: String?
        var scale: Int?
    }

    func run() async {
        var seen = (try? snapshot()) ?? [:]
        let changes = store.changes()
        await withTaskCancellationOrGracefulShutdownHandler {
            for await change in changes {
                guard let events = try? events(for: change, seen: &seen), !events.isEmpty else { continue }
                for broker in subscribedBrokers() {
                    if let problem = await publish(events, broker) {
                        logger.warning("platform event not stored", metadata: ["broker": "\(broker.namespace)/\(broker.name)", "error": "\(problem)"])
                    }
                }
            }
        } onCancelOrGracefulShutdown: {}
    }

    private func subscribedBrokers() -> [BrokerKey] {
        ((try? store.documents(EventingKind.broker)) ?? [])
            .filter { $0.meta.annotations[Self.annotation] == "true" }
            .map { BrokerKey(namespace: $0.meta.namespace, name: $0.meta.name) }
    }

    private func key(_ kind: StoreChange.Kind, _ namespace: String, _ name: String) -> String { "\(kind.rawValue)/\(namespace)/\(name)" }

    /// The state of every resource at start, so the first change after a restart is not
    /// mistaken for a creation.
    private func snapshot() throws -> [String: Seen] {
        var seen: [String: Seen] = [:]
        for service in try store.services() { seen[key(.service, service.meta.namespace, service.meta.name)] = Seen() }
        for revision in try store.revisions() {
            seen[key(.revision, revision.meta.namespace, revision.meta.name)] = Seen(
                ready: revision.status.conditions.first { $0.type == "Ready" }?.status, scale: revision.status.actualReplicas)
        }
        for kind in EventingKind.allCases {
            for resource in try store.documents(kind) {
                seen[key(kind.changeKind, resource.meta.namespace, resource.meta.name)] = Seen()
            }
        }
        return seen
    }

    private func events(for change: StoreChange, seen: inout [String: Seen]) throws -> [CloudEvent] {
        let id = key(change.kind, change.namespace, change.name)
        let before = seen[id]
        var types: [String] = []
        var data: [String: String] = ["namespace": change.namespace, "name": change.name]
        switch change.kind {
        case .service:
            let exists = try store.service(namespace: change.namespace, name: change.name) != nil
            if exists && before == nil { types.append("dev.outpost.service.created") }
            if !exists && before != nil { types.append("dev.outpost.service.deleted") }
            seen[id] = exists ? Seen() : nil
        case .revision:
            guard let revision = try store.revision(namespace: change.namespace, name: change.name) else {
                if before != nil { types.append("dev.outpost.revision.deleted") }
                seen[id] = nil
                break
            }
            let ready = revision.status.conditions.first { $0.type == "Ready" }
            let now = Seen(ready: ready?.status, scale: revision.status.actualReplicas)
            if before == nil { types.append("dev.outpost.revision.created") }
            if now.ready != before?.ready {
                if now.ready == "True" { types.append("dev.outpost.revision.ready") }
                if now.ready == "False" {
                    types.append("dev.outpost.revision.failed")
                    if let reason = ready?.reason { data["reason"] = reason }
                    if let message = ready?.message { data["message"] = message }
                }
            }
            if now.scale == 0, let old = before?.scale, old > 0 { types.append("dev.outpost.revision.scaledtozero") }
            data["actualReplicas"] = String(revision.status.actualReplicas)
            seen[id] = now
        case .broker, .trigger, .pingSource:
            guard let kind = EventingKind(change.kind) else { return [] }
            let exists = try store.document(kind, namespace: change.namespace, name: change.name) != nil
            let noun = change.kind.rawValue.lowercased()
            if exists && before == nil { types.append("dev.outpost.\(noun).created") }
            if !exists && before != nil { types.append("dev.outpost.\(noun).deleted") }
            seen[id] = exists ? Seen() : nil
        case .trafficPolicy, .authorizationPolicy, .peerAuthentication:
            return []
        }
        let body = (try? JSONSerialization.data(withJSONObject: data, options: [.sortedKeys])).map { [UInt8]($0) }
        let plural = change.kind == .pingSource ? "pingsources" : "\(change.kind.rawValue.lowercased())s"
        return types.map { type in
            CloudEvent(
                id: UUID().uuidString.lowercased(), source: "/apis/v1/namespaces/\(change.namespace)/\(plural)/\(change.name)",
                type: type, datacontenttype: "application/json", subject: change.name, time: rfc3339(Date()),
                extensions: [:], data: body)
        }
    }
}
