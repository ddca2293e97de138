extension GatewayMetricsSnapshot {
    /// The metrics in the Prometheus text exposition format (0.0.4), with Istio's metric names
    /// and labels as a destination-side reporter: `istio_requests_total`,
    /// `istio_request_duration_milliseconds`, `istio_request_bytes`, `istio_response_bytes`.
    /// Ends with a newline; suitable for appending to another exposition.
    public func prometheusText() -> String {
        var out = ""
        out.reserveCapacity(256 + series.count * 6_000)
        let labels = series.map { labelSet(for: $0.key) }

        out += "# HELP istio_requests_total Requests handled by the gateway.\n"
        out += "# TYPE istio_requests_total counter\n"
        for (entry, labels) in zip(series, labels) {
            out += "istio_requests_total{\(labels)} \(entry.requests)\n"
        }
        Self.appendHistogram(
            name: "istio_request_duration_milliseconds",
            help: "Duration of requests in milliseconds, from the request head to the end of the response.",
            series.map(\.durationMilliseconds), labels: labels, to: &out)
        Self.appendHistogram(
            name: "istio_request_bytes", help: "Request body sizes in bytes.",
            series.map(\.requestBytes), labels: labels, to: &out)
        Self.appendHistogram(
            name: "istio_response_bytes", help: "Response body sizes in bytes.",
            series.map(\.responseBytes), labels: labels, to: &out)
        return out
    }

    /// The label set of a series (without braces): Istio's standard labels, as a
    /// destination-side reporter. The gateway does not know who sent a request, so the source
    /// labels are `unknown`; `destination_app` is the revision (Knative's `app` pod label);
    /// `grpc_response_status` is empty, as Istio leaves it for non-gRPC requests.
    func labelSet(for key: Key) -> String {
        let destinationService =
            key.service == RequestMetricsTable.unknown ? "unknown" : "\(key.service).\(key.namespace).\(domain)"
        var text = #"reporter="destination""#
        for name in Self.sourceLabels { text += ",\(name)=\"unknown\"" }
        Self.appendLabel("destination_workload", key.revision, to: &text)
        Self.appendLabel("destination_workload_namespace", key.namespace, to: &text)
        text += #",destination_principal="unknown""#
        Self.appendLabel("destination_app", key.revision, to: &text)
        text += #",destination_version="unknown""#
        Self.appendLabel("destination_service", destinationService, to: &text)
        Self.appendLabel("destination_canonical_service", key.service, to: &text)
        Self.appendLabel("destination_canonical_revision", key.revision, to: &text)
        Self.appendLabel("destination_service_name", key.service, to: &text)
        Self.appendLabel("destination_service_namespace", key.namespace, to: &text)
        text += #",destination_cluster="unknown",request_protocol="http""#
        Self.appendLabel("response_code", String(key.responseCode), to: &text)
        text += #",grpc_response_status="""#
        Self.appendLabel("response_flags", key.responseFlags.rawValue, to: &text)
        text += #",connection_security_policy="unknown""#
        return text
    }

    private static let sourceLabels = [
        "source_workload", "source_canonical_service", "source_canonical_revision", "source_workload_namespace",
        "source_principal", "source_app", "source_version", "source_cluster",
    ]

    private static func appendLabel(_ name: String, _ value: String, to text: inout String) {
        text += ",\(name)=\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": text += "\\\\"
            case "\"": text += "\\\""
            case "\n": text += "\\n"
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }

    private static func appendHistogram(
        name: String, help: String, _ histograms: [Histogram], labels: [String], to out: inout String
    ) {
        out += "# HELP \(name) \(help)\n"
        out += "# TYPE \(name) histogram\n"
        for (histogram, labels) in zip(histograms, labels) {
            var cumulative: UInt64 = 0
            for (index, bound) in histogram.bounds.enumerated() {
                cumulative &+= histogram.counts[index]
                out += "\(name)_bucket{\(labels),le=\"\(formatNumber(bound))\"} \(cumulative)\n"
            }
            cumulative &+= histogram.counts[histogram.bounds.count]
            out += "\(name)_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n"
            out += "\(name)_sum{\(labels)} \(formatNumber(histogram.sum))\n"
            out += "\(name)_count{\(labels)} \(cumulative)\n"
        }
    }

    /// Integral values without a fraction (`1000`, not `1000.0`); others as Swift prints them.
    static func formatNumber(_ value: Double) -> String {
        if value.isFinite, value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
