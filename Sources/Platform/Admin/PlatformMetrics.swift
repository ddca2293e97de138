import Gateway
import Prometheus
import Serving
import Synchronization

/// Prometheus metrics of the platform, served at `/metrics` on the admin address. Revision
/// gauges are refreshed from the revision manager at each scrape; timing histograms are fed by
/// Serving as workers start and requests wait.
final class PlatformMetrics: ServingMetricsSink, Sendable {
    let registry = PrometheusCollectorRegistry()
    /// Per revision, by metric name and labels: dropped with the revision's gauges.
    private let histograms = Mutex<[RevisionID: [String: DurationHistogram]]>([:])
    private let gauges = Mutex<[RevisionID: [Gauge]]>([:])

    /// Cold starts run from milliseconds (a thaw) to seconds (a slow process).
    static let startBuckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5),
        .seconds(5), .seconds(10), .seconds(30),
    ]

    func coldStart(revision: RevisionID, duration: Duration, kind: WorkerStartKind) {
        histogram(
            revision: revision,
            "outpost_revision_cold_start_duration_seconds",
            help: "Time from starting (or thawing) a worker to it taking requests.",
            labels: [("namespace", revision.namespace), ("revision", revision.name), ("kind", kind.rawValue)]
        ).record(duration)
    }

    func activationWait(revision: RevisionID, duration: Duration) {
        histogram(
            revision: revision,
            "outpost_revision_activation_wait_duration_seconds",
            help: "Time a request waited in the activator queue for a worker.",
            labels: [("namespace", revision.namespace), ("revision", revision.name)]
        ).record(duration)
    }

    private func histogram(revision: RevisionID, _ name: String, help: String, labels: [(String, String)]) -> DurationHistogram {
        let key = name + labels.map { "|\($0.1)" }.joined()
        return histograms.withLock { cache in
            if let existing = cache[revision]?[key] { return existing }
            let made = registry.makeDurationHistogram(descriptor: Self.descriptor(name, help: help), labels: labels, buckets: Self.startBuckets)
            cache[revision, default: [:]][key] = made
            return made
        }
    }

    /// A descriptor for a full metric name; its last `_` part is the unit.
    static func descriptor(_ name: String, help: String) -> MetricNameDescriptor {
        let split = name.lastIndex(of: "_")!
        return MetricNameDescriptor(metricName: String(name[..<split]), unitName: String(name[name.index(after: split)...]), helpText: help)
    }

    /// Sets the revision gauges from the manager and renders everything in the text format.
    func render(scales: [RevisionScale]) -> [UInt8] {
        gauges.withLock { gauges in
            let present = Set(scales.map(\.revision))
            for (revision, stale) in gauges where !present.contains(revision) {
                stale.forEach(registry.unregisterGauge)
                gauges.removeValue(forKey: revision)
            }
            // A removed revision's timings go with it (its name may come back as a new revision).
            histograms.withLock { histograms in
                for (revision, stale) in histograms where !present.contains(revision) {
                    stale.values.forEach(registry.unregisterDurationHistogram)
                    histograms.removeValue(forKey: revision)
                }
            }
            for scale in scales {
                let labels = [("namespace", scale.revision.namespace), ("revision", scale.revision.name)]
                let set = gauges[scale.revision] ?? [
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_desired_workers", help: "Workers the autoscaler wants."), labels: labels),
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_actual_workers", help: "Workers taking requests."), labels: labels),
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_frozen_workers", help: "Workers frozen in the warm tier."), labels: labels),
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_panic_mode", help: "1 while the autoscaler is in panic mode."), labels: labels),
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_queue_depth", help: "Requests waiting for a worker."), labels: labels),
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_in_flight_requests", help: "Requests being served."), labels: labels),
                    registry.makeGauge(descriptor: Self.descriptor("outpost_revision_excess_burst_capacity", help: "Knative's excess burst capacity (negative: not enough spare capacity for the burst)."), labels: labels),
                ]
                gauges[scale.revision] = set
                let values = [
                    scale.desiredWorkers, scale.readyWorkers, scale.frozenWorkers, scale.inPanic ? 1 : 0,
                    scale.queuedRequests, scale.inFlightRequests, scale.excessBurstCapacity,
                ]
                for (gauge, value) in zip(set, values) { gauge.set(Double(value)) }
            }
        }
        return registry.emitToBuffer()
    }
}
