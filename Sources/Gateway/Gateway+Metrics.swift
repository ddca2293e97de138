import NIOCore

extension Gateway: RequestMetricsSource {
    /// The request metrics of every event loop, merged. Each loop copies its table on the loop
    /// itself (`eventLoop.submit`), so the request path never takes a lock for metrics; a
    /// request finishing during the collection is counted now or in the next snapshot.
    public func metricsSnapshot() async -> GatewayMetricsSnapshot {
        let copies = loops.values.map { entry in
            let box = entry.context
            return entry.loop.submit { box.value.metrics.series() }
        }
        var series: [GatewayMetricsSnapshot.Series] = []
        for copy in copies {
            if let part = try? await copy.get() { series.append(contentsOf: part) }
        }
        return GatewayMetricsSnapshot(domain: routes.current.domain, series: series)
    }
}
