@testable import Gateway
import NIOCore
import NIOHTTP1
import Testing

@Suite("Proxying through real sockets")
struct ProxyHandlerTests {
    @Test("GET and POST round trip; the upstream sees method, path, Host and body")
    func roundTrip() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()

        let get = try await client.send(.GET, "/hello?x=1", host: "Hello.Default.Example.Test:8080")
        #expect(get.status == .ok)
        #expect(get.text == "hello GET /hello?x=1")

        let post = try await client.send(.POST, "/echo", host: TestRoutes.host, body: ByteBuffer(string: "ping"))
        #expect(post.status == .ok)
        #expect(post.text == "ping")

        let seen = upstream.requests
        #expect(seen.count == 2)
        #expect(seen.first?.headers["host"] == ["Hello.Default.Example.Test:8080"])
        #expect(seen.last?.method == .POST)
        #expect(seen.last?.bodyBytes == 4)
        #expect(resolver.leaseCount == 2)
        #expect(resolver.everyLeaseReleasedOnce)
        #expect(resolver.outcomes == ["responded 200", "responded 200"])

        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("traffic is split by the route's percents with the injected roll")
    func weightedSplit() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let canary = RevisionID(namespace: "default", name: "hello-00002")
        let table = RouteTable(domain: TestRoutes.domain, routes: [
            Route(namespace: "default", service: "hello", targets: [
                RouteTarget(revision: TestRoutes.revision, percent: 75, timeout: .seconds(5)),
                RouteTarget(revision: canary, percent: 25, timeout: .seconds(5)),
            ])
        ])
        let gateway = try await GatewayHarness.start(resolver: resolver, table: table)
        let client = try await gateway.client()
        for _ in 0..<200 {
            #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .ok)
        }
        let toCanary = resolver.leasedRevisions.filter { $0 == canary.name }.count
        #expect((25...75).contains(toCanary), "canary got \(toCanary) of 200")
        // Same seed, same sequence of picks.
        let roll = TrafficRoll.seeded(42)
        let expected = (0..<200).map { _ in table.routes[0].pick(roll: roll.next())!.revision.name }
        #expect(resolver.leasedRevisions == expected)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("hop-by-hop response headers never reach the client")
    func responseHopByHop() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: TestRoutes.host)
        #expect(response.status == .ok)
        #expect(!response.headers.contains(name: "keep-alive"))
        #expect(!response.headers.contains(name: "x-upstream-private"))
        #expect(response.headers["connection"].isEmpty)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a several-MiB body streams both ways intact, chunked and with a length")
    func largeBodies() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(
            resolver: FakeResolver(.ready(port: upstream.port)), table: TestRoutes.table(timeout: .seconds(60)))
        let client = try await gateway.client()
        let size = 6 * 1024 * 1024
        let body = patternBody(size)

        let echoed = try await client.send(.PUT, "/echo", host: TestRoutes.host, body: body, timeout: .seconds(60))
        #expect(echoed.status == .ok)
        #expect(echoed.body == body)

        let chunked = try await client.send(
            .POST, "/echo", host: TestRoutes.host, body: body, chunkSize: 10_000, chunked: true, timeout: .seconds(60))
        #expect(chunked.body == body)

        let download = try await client.send(.GET, "/big/\(size)", host: TestRoutes.host, timeout: .seconds(60))
        #expect(download.status == .ok)
        #expect(download.body.readableBytes == size)
        #expect(download.body.getInteger(at: size - 1, as: UInt8.self) == UInt8((size - 1) % 256))
        #expect(upstream.requests.map(\.bodyBytes) == [size, size, 0])

        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("the upstream sees X-Forwarded-For, X-Forwarded-Proto and Forwarded, appended to the client's")
    func forwardingHeaders() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()
        _ = try await client.send(.GET, "/", host: TestRoutes.host)
        _ = try await client.send(
            .GET, "/", host: TestRoutes.host,
            headers: [("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9"), ("Connection", "X-Drop"), ("X-Drop", "1")])

        let first = try #require(upstream.requests.first).headers
        #expect(first["x-forwarded-for"] == ["127.0.0.1"])
        #expect(first["x-forwarded-proto"] == ["http"])
        #expect(first["forwarded"] == ["for=127.0.0.1;proto=http;host=\(TestRoutes.host)"])
        let second = try #require(upstream.requests.last).headers
        #expect(second["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"])
        #expect(second["forwarded"] == ["for=203.0.113.9, for=127.0.0.1;proto=http;host=\(TestRoutes.host)"])
        #expect(!second.contains(name: "x-drop"))
        #expect(!second.contains(name: "connection"))
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("sequential requests reuse one upstream connection")
    func upstreamKeepAlive() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        for i in 0..<5 {
            let response = try await client.send(.GET, "/n/\(i)", host: TestRoutes.host)
            #expect(response.status == .ok)
        }
        #expect(upstream.connectionCount == 1)
        #expect(Set(upstream.requests.map(\.connection)) == [0])
        #expect(resolver.everyLeaseReleasedOnce)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a worker response with Connection: close is not pooled; the client connection stays open")
    func upstreamConnectionClose() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()
        let first = try await client.send(.GET, "/a", host: TestRoutes.host, headers: [("x-test-close", "1")])
        #expect(first.status == .ok)
        #expect(first.headers["connection"].isEmpty)
        let second = try await client.send(.GET, "/b", host: TestRoutes.host)
        #expect(second.status == .ok)
        #expect(upstream.connectionCount == 2)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a client's Connection: close is honoured: answered with close, then the connection ends")
    func clientConnectionClose() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: TestRoutes.host, headers: [("Connection", "close")])
        #expect(response.status == .ok)
        #expect(response.headers["connection"] == ["close"])
        #expect(await client.waitUntilClosed())
        #expect(upstream.requests.first?.headers.contains(name: "connection") == false)
        // The worker connection is still pooled for the next client.
        let next = try await gateway.client()
        #expect(try await next.send(.GET, "/", host: TestRoutes.host).status == .ok)
        await next.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a timeout after the response started closes the connection mid-body")
    func timeoutMidStream() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        // The timeout leaves a loaded machine time to send the response head (else it is a 504).
        let gateway = try await GatewayHarness.start(resolver: resolver, table: TestRoutes.table(timeout: .seconds(1)))
        let client = try await gateway.client()
        // The client sees a truncated chunked body ("stream ended at an unexpected time").
        await #expect(throws: (any Error).self) {
            _ = try await client.send(.GET, "/trickle/4000", host: TestRoutes.host)
        }
        #expect(await client.waitUntilClosed())
        #expect(resolver.outcomes == ["completed"])
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a pooled connection the worker closed is retried once on a fresh connection")
    func keepAliveRaceRetry() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let marker = [("x-test-drop-if-reused", "1")]
        let first = try await client.send(.GET, "/first", host: TestRoutes.host, headers: marker)
        #expect(first.status == .ok)
        let second = try await client.send(.GET, "/second", host: TestRoutes.host, headers: marker)
        #expect(second.status == .ok)
        #expect(second.text == "hello GET /second")
        #expect(upstream.connectionCount == 2)
        #expect(resolver.outcomes == ["responded 200", "responded 200"])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("the keep-alive race resend is for idempotent requests only: a POST the worker may have acted on is not sent twice")
    func keepAliveRaceSkipsPost() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let marker = [("x-test-drop-if-reused", "1")]
        #expect(try await client.send(.GET, "/first", host: TestRoutes.host, headers: marker).status == .ok)
        let post = try await client.send(.POST, "/second", host: TestRoutes.host, headers: marker)
        #expect(post.status == .badGateway)
        #expect(ErrorBody(post)?.error.code == "UpstreamClosed")
        #expect(upstream.connectionCount == 1, "no second connection for the POST")
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("unknown host → 404 JSON naming the host and the expected form; missing Host → 400")
    func unknownHost() async throws {
        let resolver = FakeResolver(.ready(port: 1))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: "nope.default.example.test")
        #expect(response.status == .notFound)
        let body = try #require(ErrorBody(response))
        #expect(body.error.code == "RouteNotFound")
        #expect(body.error.message.contains("nope.default.example.test"))
        #expect(body.error.message.contains("<service>.<namespace>.example.test"))

        // The connection stays usable after a 404.
        let noHost = try await client.send(.GET, "/", host: nil, version: .http1_0)
        #expect(noHost.status == .badRequest)
        #expect(ErrorBody(noHost)?.error.code == "MissingHost")
        #expect(resolver.leaseCount == 0)
        await client.close()
        try await gateway.stop()
    }

    @Test("a route without targets → 503 NoReadyRevision")
    func noTargets() async throws {
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: 1)))
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: "empty.default.example.test")
        #expect(response.status == .serviceUnavailable)
        #expect(ErrorBody(response)?.error.code == "NoReadyRevision")
        await client.close()
        try await gateway.stop()
    }

    @Test("refused upstream → 502 after Istio's two default retries; each lease is released as connectFailed")
    func refusedUpstream() async throws {
        let resolver = FakeResolver(.ready(port: try await closedPort()))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: TestRoutes.host)
        #expect(response.status == .badGateway)
        #expect(ErrorBody(response)?.error.code == "UpstreamConnectFailed")
        #expect(resolver.outcomes == ["connectFailed", "connectFailed", "connectFailed"])
        // The client connection survives a 502.
        let again = try await client.send(.GET, "/", host: TestRoutes.host)
        #expect(again.status == .badGateway)
        #expect(resolver.everyLeaseReleasedOnce)
        await client.close()
        try await gateway.stop()
    }

    @Test("upstream closing without a response → 502 UpstreamClosed")
    func upstreamDrops() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/drop", host: TestRoutes.host)
        #expect(response.status == .badGateway)
        #expect(ErrorBody(response)?.error.code == "UpstreamClosed")
        #expect(resolver.outcomes == ["connectFailed"])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("resolver throwing → 503 with its code and message")
    func resolverUnavailable() async throws {
        let resolver = FakeResolver(.unavailable(UpstreamUnavailable(code: "ActivationTimeout", message: "no worker for default/hello-00001 within 5s")))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: TestRoutes.host)
        #expect(response.status == .serviceUnavailable)
        #expect(ErrorBody(response) == ErrorBody.Detail(code: "ActivationTimeout", message: "no worker for default/hello-00001 within 5s").wrapped)
        #expect(resolver.leaseCount == 0)
        #expect(resolver.outcomes.isEmpty)
        await client.close()
        try await gateway.stop()
    }

    @Test("on a model's host the gateway's own errors use KServe's {\"error\": \"…\"}")
    func modelHostErrorsInKServeShape() async throws {
        let resolver = FakeResolver(.unavailable(UpstreamUnavailable(code: "ModelLoadFailed", message: "model file is gone")))
        let target = RouteTarget(revision: TestRoutes.revision, percent: 100, timeout: .seconds(5))
        let table = RouteTable(domain: TestRoutes.domain, routes: [
            Route(namespace: "default", service: "hello", targets: [target], modelVersions: ["hello-00001": target])
        ])
        let gateway = try await GatewayHarness.start(resolver: resolver, table: table)
        let client = try await gateway.client()
        let response = try await client.send(.POST, "/v2/models/hello/infer", host: TestRoutes.host)
        #expect(response.status == .serviceUnavailable)
        #expect(response.text == #"{"error":"model file is gone"}"#, "\(response.text)")
        await client.close()
        try await gateway.stop()
    }

    @Test("slow-path acquire: the lease arrives later and the request (with a body) succeeds")
    func slowAcquire() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.slow(port: upstream.port, delay: .milliseconds(200)))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let body = patternBody(300_000)
        let response = try await client.send(.POST, "/echo", host: TestRoutes.host, body: body, chunkSize: 1000)
        #expect(response.status == .ok)
        #expect(response.body == body)
        #expect(resolver.slowCalls == 1)
        #expect(resolver.outcomes == ["responded 200"])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("no response head within the target timeout → 504; the late lease is still released")
    func timeouts() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: TestRoutes.table(timeout: .milliseconds(200)))
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/slow/2000", host: TestRoutes.host)
        #expect(response.status == .gatewayTimeout)
        #expect(ErrorBody(response)?.error.code == "GatewayTimeout")
        #expect(resolver.outcomes == ["timedOut"])
        await client.close()
        try await gateway.stop()

        let slowResolver = FakeResolver(.slow(port: upstream.port, delay: .milliseconds(600)))
        let gateway2 = try await GatewayHarness.start(resolver: slowResolver, table: TestRoutes.table(timeout: .milliseconds(100)))
        let client2 = try await gateway2.client()
        let waited = try await client2.send(.GET, "/", host: TestRoutes.host)
        #expect(waited.status == .gatewayTimeout)
        // Cancelled acquire: the fake's sleep throws, so no lease was ever handed out.
        try await Task.sleep(for: .milliseconds(700))
        #expect(slowResolver.everyLeaseReleasedOnce)
        await client2.close()
        try await gateway2.stop()
        await upstream.stop()
    }

    @Test("client disconnecting mid-request releases the lease exactly once")
    func clientDisconnect() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let client = try await gateway.client()
        let pending = Task { try await client.send(.GET, "/slow/1000", host: TestRoutes.host) }
        while upstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        await client.close()
        _ = try? await pending.value
        try await resolver.waitForReleases(1)
        #expect(resolver.outcomes == ["completed"])
        #expect(resolver.everyLeaseReleasedOnce)
        try await gateway.stop()
        await upstream.stop()
    }
}

extension ErrorBody.Detail {
    var wrapped: ErrorBody? { ErrorBody(error: self) }
}

extension ErrorBody {
    init(error: Detail) { self.error = error }
}
