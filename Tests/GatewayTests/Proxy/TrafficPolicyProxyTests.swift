@testable import Gateway
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// Traffic policies applied by the proxy, against a real upstream socket.
@Suite("Traffic policies through real sockets")
struct TrafficPolicyProxyTests {
    static func table(_ policy: RoutePolicy, timeout: Duration = .seconds(5), extra: [Route] = []) -> RouteTable {
        RouteTable(domain: TestRoutes.domain, routes: [
            Route(namespace: "default", service: "hello", targets: [
                RouteTarget(revision: TestRoutes.revision, percent: 100, timeout: timeout)
            ], policy: policy)
        ] + extra)
    }

    static func one(_ rule: RouteRule) -> RoutePolicy { RoutePolicy(rules: [rule]) }

    @Test("a 503 is retried (default policy) on another worker until it succeeds; the body is replayed")
    func retriesOn503() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(.default))
        let client = try await gateway.client()
        let response = try await client.send(.POST, "/flaky/2", host: TestRoutes.host, body: ByteBuffer(string: "ping"))
        #expect(response.status == .ok)
        #expect(response.text == "recovered")
        #expect(upstream.requests.map(\.bodyBytes) == [4, 4, 4])
        #expect(resolver.outcomes == ["responded 503", "responded 503", "responded 200"])
        // Each retry avoids the worker of the attempt that failed.
        #expect(resolver.hints.map(\.avoiding) == [nil, 1, 2])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a body larger than the replay buffer is not retried")
    func largeBodyIsNotRetried() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(.default))
        let client = try await gateway.client()
        let body = ByteBuffer(repeating: 7, count: RetryPolicy.maxReplayBytes + 1)
        let response = try await client.send(.POST, "/flaky/1", host: TestRoutes.host, body: body, chunkSize: 16_384)
        #expect(response.status == .serviceUnavailable)
        #expect(upstream.requests.count == 1)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("retries run out: the last 503 goes to the client; attempts 0 never retries")
    func retriesExhausted() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let noRetries = RoutePolicy(rules: [RouteRule(matches: [RequestMatch(uri: .prefix("/flaky"))], retry: .none)])
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(noRetries))
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/status/503", host: TestRoutes.host).status == .serviceUnavailable)
        #expect(upstream.requests.count == 3)
        let metrics = await gateway.gateway.metricsSnapshot()
        #expect(metrics.series.contains { $0.key.responseCode == 503 && $0.key.responseFlags == .upstreamRetryLimitExceeded })
        #expect(try await client.send(.GET, "/flaky/1", host: TestRoutes.host).status == .serviceUnavailable)
        #expect(upstream.requests.count == 4)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("perTryTimeout bounds each attempt; with 5xx it is retried, then 504")
    func perTryTimeout() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let retry = try RetryPolicy(attempts: 1, perTryTimeout: .milliseconds(150), retryOn: "5xx")
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(Self.one(RouteRule(retry: retry))))
        let client = try await gateway.client()
        let start = ContinuousClock.now
        let response = try await client.send(.GET, "/slow/2000", host: TestRoutes.host)
        #expect(response.status == .gatewayTimeout)
        #expect(ContinuousClock.now - start < .milliseconds(1500))
        // Two attempts, each cut by its per-try timeout. (On a loaded machine an attempt can time
        // out before the test server has read its request, so the releases tell, not the server;
        // the server must not have seen a third.)
        try await resolver.waitForReleases(2)
        #expect(resolver.outcomes == ["timedOut", "timedOut"])
        #expect(upstream.requests.count <= 2)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a worker closing after it got the head: retried under reset and gateway-error, not reset-before-request",
          arguments: [("reset", 3), ("gateway-error", 3), ("reset-before-request", 1)])
    func resetRetries(retryOn: String, attempts: Int) async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let retry = try RetryPolicy(attempts: 2, retryOn: retryOn)
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(Self.one(RouteRule(retry: retry))))
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/drop", host: TestRoutes.host)
        #expect(response.status == .badGateway)
        #expect(upstream.requests.count == attempts)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a redirect keeps the scheme of the connection: https over TLS", arguments: [(true, "https"), (false, "http")])
    func redirectKeepsScheme(secure: Bool, scheme: String) throws {
        let channel = EmbeddedChannel()
        let routes = RouteTableStore(initial: Self.table(Self.one(RouteRule(redirect: RouteRedirect(uri: "/new")))))
        let environment = ProxyEnvironment(
            resolver: FakeResolver(.ready(port: 1)), routes: routes, roll: .seeded(42), maxHeaderBytes: 65_536,
            logger: Logger(label: "redirect-test"))
        let pool = UpstreamConnectionPool(eventLoop: channel.eventLoop, connectTimeout: .seconds(1), maxIdlePerPort: 1, idleTimeout: .seconds(1))
        let loop = LoopContext(pool: pool, routes: RouteTableCache(store: routes), security: SnapshotCache(store: environment.security))
        let proxy = ProxyHandler(environment: environment, loop: loop)
        proxy.peer = PeerInfo(secure: secure, identity: nil, gatewayIdentity: "")
        try channel.pipeline.syncOperations.addHandler(proxy)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/old?q=1", headers: ["host": TestRoutes.host])
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        guard case .head(let response) = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("expected a response head")
            return
        }
        #expect(response.status == .movedPermanently)
        #expect(response.headers["location"] == ["\(scheme)://\(TestRoutes.host)/new?q=1"])
        _ = try? channel.finish()
    }

    /// Istio's `scheme`, `port` and `derivePort`; hosts with and without ports, IPv6 literals.
    @Test("a redirect's scheme and port", arguments: [
        (RouteRedirect(scheme: "https"), "h.example:8080", "https://h.example:8080/p?q"),
        (RouteRedirect(scheme: "https", port: .protocolDefault), "h.example:8080", "https://h.example/p?q"),
        (RouteRedirect(scheme: "https", port: .fixed(8443)), "h.example:8080", "https://h.example:8443/p?q"),
        (RouteRedirect(port: .fixed(9000)), "h.example", "http://h.example:9000/p?q"),
        (RouteRedirect(authority: "other.example", port: .requestPort), "h.example:8080", "http://other.example:8080/p?q"),
        (RouteRedirect(authority: "other.example:81", port: .requestPort), "h.example", "http://other.example/p?q"),
        (RouteRedirect(authority: "other.example:81"), "h.example:8080", "http://other.example:81/p?q"),
        (RouteRedirect(port: .fixed(8443)), "[::1]:8080", "http://[::1]:8443/p?q"),
        (RouteRedirect(port: .protocolDefault), "[::1]", "http://[::1]/p?q"),
        (RouteRedirect(uri: "/n?x", scheme: "https", port: .fixed(1)), "h.example:8080", "https://h.example:1/n?x"),
        (RouteRedirect(scheme: "https"), "h.example:80", "https://h.example/p?q"),
        (RouteRedirect(scheme: "https"), "h.example:443", "https://h.example:443/p?q"),
        (RouteRedirect(port: .fixed(8443)), "h.example:", "http://h.example:8443/p?q"),
        (RouteRedirect(port: .requestPort), "h.example:", "http://h.example/p?q"),
    ])
    func redirectSchemeAndPort(redirect: RouteRedirect, host: String, location: String) {
        #expect(redirect.location(scheme: "http", host: host, target: "/p?q") == location)
    }

    @Test("a route timeout overrides the revision's")
    func routeTimeout() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(
            resolver: resolver, table: Self.table(Self.one(RouteRule(timeout: .milliseconds(100), retry: .none))))
        let client = try await gateway.client()
        let start = ContinuousClock.now
        #expect(try await client.send(.GET, "/slow/1000", host: TestRoutes.host).status == .gatewayTimeout)
        #expect(ContinuousClock.now - start < .milliseconds(900))
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a request timeout counts from its own request, after a quick one on the same connection")
    func routeTimeoutAfterQuickRequest() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        // Wide margins: a loaded CI host can take hundreds of milliseconds for the first request.
        let gateway = try await GatewayHarness.start(
            resolver: resolver, table: Self.table(Self.one(RouteRule(timeout: .milliseconds(2_000), retry: .none))))
        let client = try await gateway.client()
        // Its timeout check stays scheduled 2 s out after it answers.
        #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .ok)
        try await Task.sleep(for: .milliseconds(1_000))
        let start = ContinuousClock.now
        // A 504 (not the worker's 200 at 4 s) shows the timeout fired before the worker answered;
        // it must not fire early (at most 1 s in), from the first request's check.
        #expect(try await client.send(.GET, "/slow/4000", host: TestRoutes.host).status == .gatewayTimeout)
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .milliseconds(1_900), "\(elapsed)")
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("fault abort answers without reaching the worker; fault delay waits first")
    func faults() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let policy = RoutePolicy(rules: [
            RouteRule(matches: [RequestMatch(uri: .exact("/abort"))], fault: FaultInjection(abort: .init(percent: 100, status: 418))),
            RouteRule(matches: [RequestMatch(uri: .exact("/delay"))], fault: FaultInjection(delay: .init(percent: 100, duration: .milliseconds(300)))),
            RouteRule(matches: [RequestMatch(uri: .exact("/never"))], fault: FaultInjection(abort: .init(percent: 0, status: 500))),
        ])
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let client = try await gateway.client()
        let aborted = try await client.send(.GET, "/abort", host: TestRoutes.host)
        #expect(aborted.status.code == 418)
        #expect(ErrorBody(aborted)?.error.code == "FaultInjected")
        #expect(upstream.requests.isEmpty)
        let start = ContinuousClock.now
        #expect(try await client.send(.GET, "/delay", host: TestRoutes.host).status == .ok)
        #expect(ContinuousClock.now - start >= .milliseconds(300))
        #expect(try await client.send(.GET, "/never", host: TestRoutes.host).status == .ok)
        #expect(upstream.requests.map(\.uri) == ["/delay", "/never"])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("the local rate limit answers 429 with Retry-After once the bucket is empty")
    func rateLimit() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let policy = RoutePolicy(rateLimit: LocalRateLimit(maxTokens: 2, tokensPerFill: 2, fillInterval: .seconds(30)))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .ok)
        #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .ok)
        let limited = try await client.send(.GET, "/", host: TestRoutes.host)
        #expect(limited.status == .tooManyRequests)
        let retryAfter = limited.headers["retry-after"].first.flatMap(Int.init)
        #expect(retryAfter.map { (1...30).contains($0) } == true)
        #expect(upstream.requests.count == 2)
        let metrics = await gateway.gateway.metricsSnapshot()
        #expect(metrics.series.contains { $0.key.responseCode == 429 && $0.key.responseFlags == .rateLimited })
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("redirect, rewrite and header operations")
    func redirectRewriteHeaders() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let policy = RoutePolicy(rules: [
            RouteRule(matches: [RequestMatch(uri: .prefix("/old"))], redirect: RouteRedirect(uri: "/new", redirectCode: 308)),
            RouteRule(
                matches: [RequestMatch(uri: .prefix("/api"))],
                requestHeaders: HeaderOperations(set: ["x-route": "api"], remove: ["x-secret"]),
                responseHeaders: HeaderOperations(add: ["x-served-by": "outpost"]),
                rewrite: RouteRewrite(uri: "/v2")),
        ])
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let client = try await gateway.client()
        let moved = try await client.send(.GET, "/old?q=1", host: TestRoutes.host)
        #expect(moved.status == .permanentRedirect)
        #expect(moved.headers["location"] == ["http://\(TestRoutes.host)/new?q=1"])
        let api = try await client.send(.GET, "/api/users?id=7", host: TestRoutes.host, headers: [("x-secret", "s")])
        #expect(api.text == "hello GET /v2/users?id=7")
        #expect(api.headers["x-served-by"] == ["outpost"])
        let seen = try #require(upstream.requests.last)
        #expect(seen.headers["x-route"] == ["api"] && seen.headers["x-secret"].isEmpty)
        #expect(upstream.requests.count == 1)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("tcp.maxConnections: a request beyond the limit waits for a slot, then goes on")
    func connectionLimitQueues() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let policy = RoutePolicy(connectionPool: ConnectionPoolLimits(maxConnections: 1))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let busy = try await gateway.client()
        let other = try await gateway.client()
        let slow = Task { try await busy.send(.GET, "/slow/500", host: TestRoutes.host) }
        while !upstream.requests.contains(where: { $0.uri == "/slow/500" }) { try await Task.sleep(for: .milliseconds(5)) }
        let queued = Task { try await other.send(.GET, "/after", host: TestRoutes.host) }
        try await Task.sleep(for: .milliseconds(200))
        #expect(!upstream.requests.contains(where: { $0.uri == "/after" }), "held until the slot frees")
        #expect(try await slow.value.status == .ok)
        #expect(try await queued.value.status == .ok, "the queued request got the freed slot")
        #expect(upstream.requests.map(\.uri) == ["/slow/500", "/after"])
        await busy.close()
        await other.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("tcp.maxConnections with http1MaxPendingRequests: beyond both, 503 with flag UO")
    func connectionLimitOverflows() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let policy = RoutePolicy(connectionPool: ConnectionPoolLimits(maxConnections: 1, maxPendingRequests: 1))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let busy = try await gateway.client()
        let waiting = try await gateway.client()
        let other = try await gateway.client()
        let slow = Task { try await busy.send(.GET, "/slow/1500", host: TestRoutes.host) }
        while !upstream.requests.contains(where: { $0.uri == "/slow/1500" }) { try await Task.sleep(for: .milliseconds(5)) }
        let queued = Task { try await waiting.send(.GET, "/queued", host: TestRoutes.host) }
        try await Task.sleep(for: .milliseconds(400))
        let refused = try await other.send(.GET, "/", host: TestRoutes.host)
        #expect(refused.status == .serviceUnavailable)
        #expect(ErrorBody(refused)?.error.code == "UpstreamOverflow")
        #expect(try await slow.value.status == .ok)
        #expect(try await queued.value.status == .ok)
        #expect(try await other.send(.GET, "/", host: TestRoutes.host).status == .ok, "the slot is free again")
        await busy.close()
        await waiting.close()
        await other.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("http1MaxPendingRequests: a second request waiting for a worker gets 503 UO")
    func pendingLimit() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.slow(port: upstream.port, delay: .milliseconds(400)))
        let policy = RoutePolicy(connectionPool: ConnectionPoolLimits(maxPendingRequests: 1))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let waiting = try await gateway.client()
        let other = try await gateway.client()
        let first = Task { try await waiting.send(.GET, "/", host: TestRoutes.host) }
        while resolver.slowCalls == 0 { try await Task.sleep(for: .milliseconds(5)) }
        let refused = try await other.send(.GET, "/", host: TestRoutes.host)
        #expect(refused.status == .serviceUnavailable)
        #expect(ErrorBody(refused)?.error.code == "UpstreamOverflow")
        #expect(try await first.value.status == .ok)
        #expect(resolver.slowCalls == 1)
        await waiting.close()
        await other.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("maxRequestsPerConnection: 1 opens a fresh worker connection per request; unlimited reuses one")
    func requestsPerConnection() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let once = RoutePolicy(connectionPool: ConnectionPoolLimits(maxRequestsPerConnection: 1))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(once))
        let client = try await gateway.client()
        var connections: [String] = []
        for _ in 0..<3 { connections += try await client.send(.GET, "/", host: TestRoutes.host).headers["x-upstream-connection"] }
        #expect(Set(connections).count == 3)
        gateway.gateway.publish(Self.table(.default))
        connections = []
        for _ in 0..<3 { connections += try await client.send(.GET, "/", host: TestRoutes.host).headers["x-upstream-connection"] }
        #expect(Set(connections).count == 1)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("consistentHash httpCookie with ttl: a new client gets a cookie, and its key sticks")
    func issuedCookie() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let policy = RoutePolicy(hashKey: .cookie("route", issue: IssuedCookie(path: "/", ttl: .seconds(3600))))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy))
        let client = try await gateway.client()
        let first = try await client.send(.GET, "/", host: TestRoutes.host)
        let setCookie = try #require(first.headers["set-cookie"].first)
        #expect(setCookie.hasPrefix("route=") && setCookie.hasSuffix("; Path=/; Max-Age=3600; HttpOnly"))
        let pair = String(setCookie.prefix { $0 != ";" })
        let again = try await client.send(.GET, "/", host: TestRoutes.host, headers: [("cookie", pair)])
        #expect(again.headers["set-cookie"].isEmpty, "a client that has the cookie keeps it")
        let hashes = resolver.hints.map(\.hash)
        #expect(hashes.count == 2 && hashes[0] != nil && hashes[0] == hashes[1])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("mirror: a copy goes to the mirror service with a -shadow host; the answer is the primary's")
    func mirror() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let shadowRevision = RevisionID(namespace: "default", name: "shadow-00001")
        let shadow = Route(namespace: "default", service: "shadow", targets: [RouteTarget(revision: shadowRevision, percent: 100, timeout: .seconds(5))])
        let policy = Self.one(RouteRule(mirror: MirrorPolicy(namespace: "default", service: "shadow")))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: Self.table(policy, extra: [shadow]))
        let client = try await gateway.client()
        let response = try await client.send(.POST, "/echo", host: TestRoutes.host, body: ByteBuffer(string: "copy me"))
        #expect(response.text == "copy me")
        try await resolver.waitForReleases(2)
        let hosts = upstream.requests.compactMap { $0.headers["host"].first }.sorted()
        #expect(hosts == [TestRoutes.host, "hello.default.example.test-shadow"])
        #expect(upstream.requests.map(\.bodyBytes) == [7, 7])
        #expect(resolver.leasedRevisions.sorted() == ["hello-00001", "shadow-00001"])
        #expect(resolver.everyLeaseReleasedOnce)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }
}
