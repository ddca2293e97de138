import Foundation
@testable import Gateway
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// Collects access-log lines from the gateway's sink.
final class AccessLogCollector: Sendable {
    private let lines = Mutex<[String]>([])

    var sink: @Sendable (String) -> Void {
        { line in self.lines.withLock { $0.append(line) } }
    }

    var all: [String] { lines.withLock { $0 } }

    /// Every line parsed as a JSON object.
    func objects() throws -> [[String: Any]] {
        try all.map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw TestClientError(description: "not a JSON object: \(line)")
            }
            return object
        }
    }
}

@Suite("Telemetry through real sockets")
struct TelemetryTests {
    static let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("x-request-id: generated when absent, kept when sent; seen by the worker and the client")
    func requestID() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()

        let generated = try await client.send(.GET, "/", host: TestRoutes.host)
        let id = try #require(generated.headers["x-request-id"].first)
        #expect(generated.headers["x-request-id"].count == 1)
        #expect(id.split(separator: "-").map(\.count) == [8, 4, 4, 4, 12])
        #expect(upstream.requests[0].headers["x-request-id"] == [id])

        let again = try await client.send(.GET, "/", host: TestRoutes.host)
        #expect(again.headers["x-request-id"].first != id, "a new id per request")

        let kept = try await client.send(.GET, "/", host: TestRoutes.host, headers: [("X-Request-Id", "client-id-1")])
        #expect(kept.headers["x-request-id"] == ["client-id-1"])
        #expect(upstream.requests[2].headers["x-request-id"] == ["client-id-1"])

        let invalid = try await client.send(.GET, "/", host: TestRoutes.host, headers: [("X-Request-Id", String(repeating: "x", count: 200))])
        let replaced = try #require(invalid.headers["x-request-id"].first)
        #expect(replaced.utf8.count == 36)
        #expect(upstream.requests[3].headers["x-request-id"] == [replaced])

        // The gateway's own answers carry it too.
        let notFound = try await client.send(.GET, "/", host: "nope.example.test", headers: [("x-request-id", "lost-1")])
        #expect(notFound.status == .notFound)
        #expect(notFound.headers["x-request-id"] == ["lost-1"])

        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("traceparent: propagated with the client's trace id and a new span id, or created; tracestate unchanged")
    func traceparent() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()

        _ = try await client.send(
            .GET, "/", host: TestRoutes.host, headers: [("traceparent", Self.parent), ("tracestate", "vendor=abc,other=1")])
        let forwarded = try #require(upstream.requests[0].headers["traceparent"].first)
        #expect(upstream.requests[0].headers["traceparent"].count == 1)
        let parsed = try #require(TraceContext(traceparent: forwarded))
        #expect(parsed.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
        #expect(parsed.flags == 1)
        #expect(!forwarded.contains("00f067aa0ba902b7"), "the gateway's span replaces the client's")
        #expect(upstream.requests[0].headers["tracestate"] == ["vendor=abc,other=1"])

        _ = try await client.send(.GET, "/", host: TestRoutes.host)
        _ = try await client.send(.GET, "/", host: TestRoutes.host, headers: [("traceparent", "00-zz-bad")])
        let created = try #require(TraceContext(traceparent: upstream.requests[1].headers["traceparent"].first ?? ""))
        let replaced = try #require(TraceContext(traceparent: upstream.requests[2].headers["traceparent"].first ?? ""))
        #expect(upstream.requests[2].headers["traceparent"].count == 1)
        #expect(created.flags == 1)
        #expect(created.traceIDHex != replaced.traceIDHex)
        #expect(created.traceIDHex != parsed.traceIDHex)

        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("the snapshot counts 200, 404 NR, 503 UH and 502 UF with their labels")
    func metricsByOutcome() async throws {
        let upstream = try await TestUpstreamServer.start()
        let ok = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await ok.client()
        for _ in 0..<3 {
            #expect(try await client.send(.POST, "/echo", host: TestRoutes.host, body: ByteBuffer(string: "ping!")).status == .ok)
        }
        #expect(try await client.send(.GET, "/", host: "nope.default.example.test").status == .notFound)
        #expect(try await client.send(.GET, "/", host: "empty.default.example.test").status == .serviceUnavailable)
        await client.close()

        let snapshot = await ok.gateway.metricsSnapshot()
        let revision = TestRoutes.revision.name
        let success = try #require(snapshot[.init(namespace: "default", service: "hello", revision: revision, responseCode: 200, responseFlags: .none)])
        #expect(success.requests == 3)
        #expect(success.requestBytes.sum == 15)
        #expect(success.responseBytes.sum == 15)
        #expect(success.durationMilliseconds.count == 3)
        #expect(snapshot[.init(namespace: "unknown", service: "unknown", revision: "unknown", responseCode: 404, responseFlags: .noRoute)]?.requests == 1)
        #expect(snapshot[.init(namespace: "default", service: "empty", revision: "unknown", responseCode: 503, responseFlags: .noHealthyUpstream)]?.requests == 1)
        #expect(snapshot.totalRequests == 5)
        for series in snapshot.series {
            #expect(series.durationMilliseconds.count == series.requests)
            #expect(series.requestBytes.count == series.requests)
            #expect(series.responseBytes.count == series.requests)
        }
        let samples = try PrometheusSample.parse(snapshot.prometheusText())
        #expect(samples.contains { $0.name == "istio_requests_total" && $0.labels["response_code"] == "200" && $0.value == 3 })
        try await ok.stop()
        await upstream.stop()

        // The activator giving up: 503 UH for the picked revision.
        let unavailable = try await GatewayHarness.start(resolver: FakeResolver(.unavailable(
            UpstreamUnavailable(code: "ActivationTimeout", message: "no worker"))))
        let second = try await unavailable.client()
        #expect(try await second.send(.GET, "/", host: TestRoutes.host).status == .serviceUnavailable)
        await second.close()
        let uh = await unavailable.gateway.metricsSnapshot()
        #expect(uh[.init(namespace: "default", service: "hello", revision: revision, responseCode: 503, responseFlags: .noHealthyUpstream)]?.requests == 1)
        try await unavailable.stop()

        // A refused worker connection: 502 UF.
        let refused = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: try await closedPort())))
        let third = try await refused.client()
        #expect(try await third.send(.GET, "/", host: TestRoutes.host).status == .badGateway)
        await third.close()
        let uf = await refused.gateway.metricsSnapshot()
        #expect(uf[.init(namespace: "default", service: "hello", revision: revision, responseCode: 502, responseFlags: .upstreamConnectionFailure)]?.requests == 1)
        #expect(uf.totalRequests == 1)
        try await refused.stop()
    }

    @Test("a 504 is counted with UT")
    func timeoutFlag() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(
            resolver: FakeResolver(.ready(port: upstream.port)), table: TestRoutes.table(timeout: .milliseconds(100)))
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/slow/1000", host: TestRoutes.host).status == .gatewayTimeout)
        await client.close()
        let snapshot = await gateway.gateway.metricsSnapshot()
        let series = try #require(snapshot.series.first)
        #expect(series.key.responseCode == 504)
        #expect(series.key.responseFlags == .upstreamRequestTimeout)
        #expect(series.durationMilliseconds.sum >= 90)
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a worker closing without a response is UC; a client leaving mid-request is DC with code 0, counted once")
    func terminationFlags() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let log = AccessLogCollector()
        let gateway = try await GatewayHarness.start(resolver: resolver) { $0.accessLog = log.sink }
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/drop", host: TestRoutes.host).status == .badGateway)
        let leaving = try await gateway.client()
        let pending = Task { try await leaving.send(.GET, "/slow/1000", host: TestRoutes.host) }
        while upstream.requests.count < 2 { try await Task.sleep(for: .milliseconds(5)) }
        await leaving.close()
        _ = try? await pending.value
        try await resolver.waitForReleases(2)
        await client.close()

        let snapshot = await gateway.gateway.metricsSnapshot()
        let revision = TestRoutes.revision.name
        #expect(snapshot[.init(namespace: "default", service: "hello", revision: revision, responseCode: 502, responseFlags: .upstreamConnectionTermination)]?.requests == 1)
        #expect(snapshot[.init(namespace: "default", service: "hello", revision: revision, responseCode: 0, responseFlags: .downstreamConnectionTermination)]?.requests == 1)
        #expect(snapshot.totalRequests == 2)
        #expect(try log.objects().map { $0["response_flags"] as? String } == ["UC", "DC"])
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("access log: one JSON line per request with Envoy's fields")
    func accessLog() async throws {
        let upstream = try await TestUpstreamServer.start()
        let log = AccessLogCollector()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port))) {
            $0.accessLog = log.sink
        }
        let client = try await gateway.client()
        let response = try await client.send(
            .POST, "/echo", host: TestRoutes.host,
            headers: [("User-Agent", #"tester "quoted" \ 1.0"#), ("X-Request-Id", "log-1"), ("traceparent", Self.parent)],
            body: ByteBuffer(string: "hello"))
        #expect(response.status == .ok)
        #expect(try await client.send(.GET, "/", host: "nope.default.example.test").status == .notFound)
        await client.close()

        let objects = try log.objects()
        #expect(objects.count == 2)
        let first = try #require(objects.first)
        #expect(first["method"] as? String == "POST")
        #expect(first["path"] as? String == "/echo")
        #expect(first["protocol"] as? String == "HTTP/1.1")
        #expect(first["response_code"] as? Int == 200)
        #expect(first["response_flags"] as? String == "-")
        #expect(first["bytes_received"] as? Int == 5)
        #expect(first["bytes_sent"] as? Int == 5)
        #expect(first["duration"] is Int)
        #expect(first["upstream_service_time"] is Int)
        #expect(first["x_forwarded_for"] as? String == "127.0.0.1")
        #expect(first["user_agent"] as? String == #"tester "quoted" \ 1.0"#)
        #expect(first["request_id"] as? String == "log-1")
        #expect(first["authority"] as? String == TestRoutes.host)
        #expect(first["upstream_host"] as? String == "127.0.0.1:\(upstream.port)")
        #expect(first["upstream_cluster"] as? String == TestRoutes.revision.name)
        #expect(first["route_name"] as? String == "default/hello")
        #expect(first["trace_id"] as? String == "4bf92f3577b34da6a3ce929d0e0e4736")
        let start = try #require(first["start_time"] as? String)
        #expect(start.wholeMatch(of: #/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z/#) != nil)
        let date = try #require(ISO8601DateFormatter.withFractionalSeconds.date(from: start))
        #expect(abs(date.timeIntervalSinceNow) < 60)

        let second = try #require(objects.last)
        #expect(second["response_code"] as? Int == 404)
        #expect(second["response_flags"] as? String == "NR")
        #expect(second["upstream_host"] is NSNull)
        #expect(second["route_name"] is NSNull)
        #expect((second["request_id"] as? String)?.utf8.count == 36)

        try await gateway.stop()
        await upstream.stop()
    }
}

extension ISO8601DateFormatter {
    static var withFractionalSeconds: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter
    }
}
