import Foundation
import Store
import Synchronization

/// Counters of the event bus, rendered in the Prometheus text format next to the gateway's
/// request metrics. Counted where the facts happen (the log writer's commit, a delivery's end);
/// no lock is held longer than one dictionary update.
final class EventingMetrics: Sendable {
    private struct BrokerLabel: Hashable {
        var namespace: String
        var broker: String
    }

    private struct DeliveryLabel: Hashable {
        var namespace: String
        var trigger: String
        var outcome: String
    }

    private let stored = Mutex<[BrokerLabel: Int]>([:])
    private let delivered = Mutex<[DeliveryLabel: Int]>([:])

    /// Events committed to a broker's log.
    func eventsStored(_ committed: [(NewEvent, Int64)]) {
        stored.withLock { counts in
            for (event, _) in committed { counts[BrokerLabel(namespace: event.namespace, broker: event.broker), default: 0] += 1 }
        }
    }

    /// A delivery that ended: `Delivered`, `DeadLettered` or `Dropped`.
    func deliveryEnded(namespace: String, trigger: String, outcome: String) {
        delivered.withLock { $0[DeliveryLabel(namespace: namespace, trigger: trigger, outcome: outcome), default: 0] += 1 }
    }

    /// The Prometheus text of every counter plus the given gauges.
    func prometheusText(bufferedDeliveries: Int, writeQueue: Int) -> String {
        var text = "# HELP outpost_eventing_events_stored_total CloudEvents committed to a broker's log.\n"
        text += "# TYPE outpost_eventing_events_stored_total counter\n"
        for (label, count) in stored.withLock({ $0 }).sorted(by: { ($0.key.namespace, $0.key.broker) < ($1.key.namespace, $1.key.broker) }) {
            text += "outpost_eventing_events_stored_total{namespace=\"\(escape(label.namespace))\",broker=\"\(escape(label.broker))\"} \(count)\n"
        }
        text += "# HELP outpost_eventing_deliveries_total Deliveries that ended, by outcome (Delivered, DeadLettered, Dropped).\n"
        text += "# TYPE outpost_eventing_deliveries_total counter\n"
        let rows = delivered.withLock { $0 }.sorted { ($0.key.namespace, $0.key.trigger, $0.key.outcome) < ($1.key.namespace, $1.key.trigger, $1.key.outcome) }
        for (label, count) in rows {
            text += "outpost_eventing_deliveries_total{namespace=\"\(escape(label.namespace))\",trigger=\"\(escape(label.trigger))\",outcome=\"\(label.outcome)\"} \(count)\n"
        }
        text += "# HELP outpost_eventing_buffered_deliveries Deliveries held in memory (queued, in flight or waiting for a retry).\n"
        text += "# TYPE outpost_eventing_buffered_deliveries gauge\noutpost_eventing_buffered_deliveries \(bufferedDeliveries)\n"
        text += "# HELP outpost_eventing_write_queue Events waiting for the log writer's next commit.\n"
        text += "# TYPE outpost_eventing_write_queue gauge\noutpost_eventing_write_queue \(writeQueue)\n"
        return text
    }

    private func escape(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
