import Foundation
@testable import Gateway
import Testing

/// Parses Prometheus text: every non-comment line must be `name{labels} value`.
struct PrometheusSample: Equatable {
    var name: String
    var labels: [String: String]
    var value: Double

    static func parse(_ text: String) throws -> [PrometheusSample] {
        let pattern = #/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\} (\S+)$/#
        let label = #/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"/#
        var samples: [PrometheusSample] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty || line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard let match = line.wholeMatch(of: pattern), let value = Double(match.output.3) else {
                throw TestClientError(description: "not a sample line: \(line)")
            }
            var labels: [String: String] = [:]
            for pair in match.output.2.matches(of: label) { labels[String(pair.output.1)] = String(pair.output.2) }
            samples.append(PrometheusSample(name: String(match.output.1), labels: labels, value: value))
        }
        return samples
    }
}

@Suite("Request metrics")
struct GatewayMetricsSnapshotTests {
    static func record(_ table: RequestMetricsTable, code: Int, flags: ResponseFlags, ms: Double, revision: String = "hello-00001") {
        table.record(
            namespace: "default", service: "hello", revision: revision, code: code, flags: flags,
            durationNanoseconds: Int64(ms * 1_000_000), requestBytes: 10, responseBytes: 2000)
    }

    @Test("records land in the right series and buckets; bucket counts sum to the count")
    func buckets() throws {
        let table = RequestMetricsTable()
        for ms in [0.2, 0.5, 3, 40, 4_000_000] { Self.record(table, code: 200, flags: .none, ms: ms) }
        Self.record(table, code: 502, flags: .upstreamConnectionFailure, ms: 1)
        Self.record(table, code: 200, flags: .none, ms: 1, revision: "hello-00002")
        let snapshot = GatewayMetricsSnapshot(domain: "example.test", series: table.series())
        #expect(snapshot.series.count == 3)
        #expect(snapshot.totalRequests == 7)
        let ok = try #require(snapshot[.init(namespace: "default", service: "hello", revision: "hello-00001", responseCode: 200, responseFlags: .none)])
        #expect(ok.requests == 5)
        #expect(ok.durationMilliseconds.counts[0] == 2)  // 0.2 and 0.5 (le is inclusive)
        #expect(ok.durationMilliseconds.counts[2] == 1)  // 3 ms ≤ 5
        #expect(ok.durationMilliseconds.counts[5] == 1)  // 40 ms ≤ 50
        #expect(ok.durationMilliseconds.counts.last == 1)  // beyond an hour
        #expect(ok.durationMilliseconds.count == ok.requests)
        #expect(abs(ok.durationMilliseconds.sum - 4_000_043.7) < 0.001)
        #expect(ok.requestBytes.counts[1] == 5)  // 10 B ≤ 10
        #expect(ok.responseBytes.counts[4] == 5)  // 2000 B ≤ 10000
        #expect(ok.responseBytes.sum == 10_000)
    }

    @Test("snapshots from several loops merge by key")
    func merges() {
        let a = RequestMetricsTable()
        let b = RequestMetricsTable()
        Self.record(a, code: 200, flags: .none, ms: 1)
        Self.record(b, code: 200, flags: .none, ms: 100)
        let snapshot = GatewayMetricsSnapshot(domain: "example.test", series: a.series() + b.series())
        #expect(snapshot.series.count == 1)
        #expect(snapshot.series[0].requests == 2)
        #expect(snapshot.series[0].durationMilliseconds.count == 2)
    }

    @Test("Prometheus text: Istio names and labels, cumulative buckets ending in +Inf = _count")
    func prometheusText() throws {
        let table = RequestMetricsTable()
        for ms in [0.2, 3, 40] { Self.record(table, code: 200, flags: .none, ms: ms) }
        table.record(
            namespace: "unknown", service: "unknown", revision: "unknown", code: 404, flags: .noRoute,
            durationNanoseconds: 1000, requestBytes: 0, responseBytes: 90)
        let text = GatewayMetricsSnapshot(domain: "example.test", series: table.series()).prometheusText()
        #expect(text.hasSuffix("\n"))
        let samples = try PrometheusSample.parse(text)
        let total = samples.filter { $0.name == "istio_requests_total" }
        #expect(total.count == 2)
        let ok = try #require(total.first { $0.labels["response_code"] == "200" })
        #expect(ok.value == 3)
        #expect(ok.labels == [
            "reporter": "destination",
            "source_workload": "unknown", "source_canonical_service": "unknown", "source_canonical_revision": "unknown",
            "source_workload_namespace": "unknown", "source_principal": "unknown", "source_app": "unknown",
            "source_version": "unknown", "source_cluster": "unknown",
            "destination_service": "hello.default.example.test", "destination_service_name": "hello",
            "destination_service_namespace": "default", "destination_workload": "hello-00001",
            "destination_workload_namespace": "default", "destination_principal": "unknown",
            "destination_app": "hello-00001", "destination_version": "unknown", "destination_cluster": "unknown",
            "destination_canonical_service": "hello", "destination_canonical_revision": "hello-00001",
            "request_protocol": "http", "response_code": "200", "grpc_response_status": "", "response_flags": "-",
            "connection_security_policy": "unknown",
        ])
        let notFound = try #require(total.first { $0.labels["response_code"] == "404" })
        #expect(notFound.labels["response_flags"] == "NR")
        #expect(notFound.labels["destination_service"] == "unknown")

        for family in ["istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"] {
            #expect(text.contains("# TYPE \(family) histogram\n"))
            for code in ["200", "404"] {
                let buckets = samples.filter { $0.name == "\(family)_bucket" && $0.labels["response_code"] == code }
                let count = try #require(samples.first { $0.name == "\(family)_count" && $0.labels["response_code"] == code })
                #expect(samples.contains { $0.name == "\(family)_sum" && $0.labels["response_code"] == code })
                #expect(buckets.last?.labels["le"] == "+Inf")
                #expect(buckets.last?.value == count.value)
                #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0.value <= $1.value }, "buckets are cumulative")
            }
        }
        let durationBounds = samples.filter { $0.name == "istio_request_duration_milliseconds_bucket" && $0.labels["response_code"] == "200" }
            .map { $0.labels["le"]! }
        #expect(durationBounds == ["0.5", "1", "5", "10", "25", "50", "100", "250", "500", "1000", "2500", "5000", "10000",
            "30000", "60000", "300000", "600000", "1800000", "3600000", "+Inf"])
        let okBuckets = samples.filter { $0.name == "istio_request_duration_milliseconds_bucket" && $0.labels["response_code"] == "200" }
        #expect(okBuckets.map(\.value).prefix(6) == [1, 1, 2, 2, 2, 3])
    }

    @Test("an empty snapshot renders only HELP and TYPE lines")
    func empty() throws {
        let text = GatewayMetricsSnapshot(domain: "localhost", series: []).prometheusText()
        #expect(try PrometheusSample.parse(text).isEmpty)
        #expect(text.contains("# TYPE istio_requests_total counter"))
    }
}
