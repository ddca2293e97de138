import Foundation
import Logging
import ServiceLifecycle
import Store
import Synchronization

/// Runs every ping source: at each time its cron schedule names, one CloudEvent of type
/// `dev.knative.sources.ping` goes to its sink. A sink that is a broker of this daemon gets the
/// event through the durable log directly; any other sink gets an HTTP POST (one attempt, as a
/// missed ping is replaced by the next one), each tick on its own. Ticks missed while the daemon was down are not
/// replayed.
struct PingScheduler: Sendable {
    let store: Store
    let addresses: EventingAddresses
    let sender: EventSender
    let logger: Logger
    let publish: @Sendable ([CloudEvent], BrokerKey) async -> String?

    /// Knative's event type for ping events.
    static let eventType = "dev.knative.sources.ping"

    private struct Entry {
        var resource: EventingResource
        var spec: PingSourceSpec
        var schedule: CronSchedule
        var next: Date?
    }

    func run() async {
        let dirty = Atomic<Bool>(true)
        let changes = store.changes()
        let feeder = Task {
            for await change in changes where change.kind == .pingSource { dirty.store(true, ordering: .relaxed) }
        }
        defer { feeder.cancel() }
        var entries: [String: Entry] = [:]
        // Each tick is sent in a task of its own: a slow sink (up to the 10 s timeout) must not
        // hold up other sources' ticks.
        await withDiscardingTaskGroup { group in
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                if dirty.exchange(false, ordering: .relaxed) { entries = load(previous: entries, now: Date()) }
                let now = Date()
                for (uid, entry) in entries {
                    guard let due = entry.next, due <= now else { continue }
                    entries[uid]?.next = entry.schedule.next(after: max(due, now))
                    group.addTask { await fire(entry, at: due) }
                }
                // Changes are picked up within a second; ticks fire on time.
                let earliest = entries.values.compactMap(\.next).min() ?? now.addingTimeInterval(1)
                try? await Task.sleep(for: .seconds(min(max(earliest.timeIntervalSinceNow, 0.001), 1)))
            }
        }
    }

    /// Reads every ping source; a source whose spec did not change keeps its next tick.
    private func load(previous: [String: Entry], now: Date) -> [String: Entry] {
        guard let resources = try? store.documents(EventingKind.pingSource) else { return previous }
        var entries: [String: Entry] = [:]
        for resource in resources {
            guard let spec = try? EventingJSON.decode(PingSourceSpec.self, resource.spec),
                  let schedule = try? CronSchedule(spec.effectiveSchedule, timeZone: spec.timezone) else { continue }
            if let old = previous[resource.meta.uid], old.spec == spec {
                entries[resource.meta.uid] = Entry(resource: resource, spec: spec, schedule: schedule, next: old.next)
            } else {
                entries[resource.meta.uid] = Entry(resource: resource, spec: spec, schedule: schedule, next: schedule.next(after: now))
                writeStatus(resource, spec: spec, lastScheduleTime: nil)
            }
        }
        return entries
    }

    private func fire(_ entry: Entry, at time: Date) async {
        let namespace = entry.resource.meta.namespace
        let event = Self.event(for: entry.spec, namespace: namespace, name: entry.resource.meta.name, time: time)
        var problem: String?
        if let ref = entry.spec.sink.ref, ref.kind == "Broker", entry.spec.sink.uri == nil {
            problem = await publish([event], BrokerKey(namespace: ref.namespace ?? namespace, name: ref.name))
        } else if let destination = addresses.resolve(entry.spec.sink, namespace: namespace) {
            let result = await sender.send(event, to: destination, timeout: .seconds(10), wantsReply: false)
            if let status = result.status, (200..<300).contains(status) {} else { problem = result.error ?? "HTTP \(result.status ?? 0)" }
        } else {
            problem = "the sink has no address"
        }
        if let problem {
            logger.warning("ping not delivered", metadata: ["pingsource": "\(namespace)/\(entry.resource.meta.name)", "error": "\(problem)"])
        }
        writeStatus(entry.resource, spec: entry.spec, lastScheduleTime: time, problem: problem)
    }

    static func event(for spec: PingSourceSpec, namespace: String, name: String, time: Date) -> CloudEvent {
        var data: [UInt8]?
        if let text = spec.data { data = Array(text.utf8) }
        if let base64 = spec.dataBase64 { data = Data(base64Encoded: base64).map { [UInt8]($0) } }
        var extensions: [String: CloudEventValue] = [:]
        for (key, value) in spec.ceOverrides?.extensions ?? [:] { extensions[key] = .string(value) }
        return CloudEvent(
            id: UUID().uuidString.lowercased(), source: "/apis/v1/namespaces/\(namespace)/pingsources/\(name)",
            type: eventType, datacontenttype: data == nil ? nil : (spec.contentType ?? "text/plain"), time: rfc3339(time),
            extensions: extensions, data: data)
    }

    private func writeStatus(_ resource: EventingResource, spec: PingSourceSpec, lastScheduleTime: Date?, problem: String? = nil) {
        var status = EventingStatus()
        status.observedGeneration = resource.meta.generation
        status.sinkUri = addresses.resolve(spec.sink, namespace: resource.meta.namespace)?.display
        status.lastScheduleTime = lastScheduleTime
        if let problem {
            status.conditions.set("Ready", status: "False", reason: "SinkUnreachable", message: problem, now: Date())
        } else {
            status.conditions.set("Ready", status: "True", now: Date())
        }
        store.writeStatus(of: resource, status, now: Date(), logger: logger)
    }
}

/// RFC 3339 in UTC with milliseconds, as CloudEvents `time` wants it.
func rfc3339(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: date)
}
