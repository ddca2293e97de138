@testable import Gateway
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Testing

@Suite("Gateway lifecycle")
struct GatewayTests {
    @Test("waitUntilListening returns the ephemeral port; run() cannot be called twice")
    func listening() async throws {
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: 1)))
        #expect(gateway.port > 0)
        #expect(try await gateway.gateway.waitUntilListening() == gateway.port)
        await #expect(throws: GatewayError.self) { try await gateway.gateway.run() }
        try await gateway.stop()
        await #expect(throws: GatewayError.self) { _ = try await gateway.gateway.waitUntilListening() }
    }

    @Test("binding a taken port fails run() and waitUntilListening()")
    func bindFailure() async throws {
        let first = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: 1)))
        let second = Gateway(
            configuration: GatewayConfiguration(host: "127.0.0.1", port: first.port),
            resolver: FakeResolver(.ready(port: 1)),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: Logger(label: "test"))
        let running = Task { try await second.run() }
        await #expect(throws: (any Error).self) { _ = try await second.waitUntilListening() }
        await #expect(throws: (any Error).self) { try await running.value }
        try await first.stop()
    }

    @Test("publish swaps the route table for the next request")
    func publish() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(
            resolver: FakeResolver(.ready(port: upstream.port)), table: .empty(domain: "example.test"))
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .notFound)
        gateway.gateway.publish(TestRoutes.table())
        #expect(gateway.gateway.routeTable.route(forHost: TestRoutes.host) != nil)
        #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .ok)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("graceful shutdown: in-flight request finishes, idle connections close, new ones are refused")
    func gracefulDrain() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let busy = try await gateway.client()
        let idle = try await gateway.client()
        #expect(try await idle.send(.GET, "/", host: TestRoutes.host).status == .ok)

        let inFlight = Task { try await busy.send(.GET, "/slow/500", host: TestRoutes.host) }
        while !upstream.requests.contains(where: { $0.uri == "/slow/500" }) {
            try await Task.sleep(for: .milliseconds(5))
        }
        let stopping = Task { try await gateway.stop() }

        #expect(await idle.waitUntilClosed(timeout: .seconds(2)))
        let response = try await inFlight.value
        #expect(response.status == .ok)
        #expect(response.text == "slow")
        #expect(response.headers["connection"] == ["close"])
        #expect(await busy.waitUntilClosed(timeout: .seconds(2)))
        try await stopping.value
        await #expect(throws: (any Error).self) { _ = try await TestHTTPClient.connect(port: gateway.port) }
        #expect(resolver.everyLeaseReleasedOnce)
        #expect(resolver.outcomes == ["responded 200", "responded 200"])
        await upstream.stop()
    }

    @Test("in a ServiceGroup, graceful shutdown drains the in-flight request before run() returns")
    func serviceGroupShutdown() async throws {
        let upstream = try await TestUpstreamServer.start()
        var logger = Logger(label: "gateway-test")
        logger.logLevel = .error
        let gateway = Gateway(
            configuration: GatewayConfiguration(host: "127.0.0.1", port: 0),
            resolver: FakeResolver(.ready(port: upstream.port)),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
        gateway.publish(TestRoutes.table())
        let group = ServiceGroup(services: [gateway], logger: logger)
        let running = Task { try await group.run() }
        let port = try await gateway.waitUntilListening()
        let client = try await TestHTTPClient.connect(port: port)
        let inFlight = Task { try await client.send(.GET, "/slow/300", host: TestRoutes.host) }
        while upstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(5)) }

        await group.triggerGracefulShutdown()
        let response = try await inFlight.value
        #expect(response.status == .ok)
        #expect(response.headers["connection"] == ["close"])
        try await running.value
        await #expect(throws: (any Error).self) { _ = try await TestHTTPClient.connect(port: port) }
        await upstream.stop()
    }

    @Test("the drain timeout bounds shutdown: a request still running is cut off")
    func drainTimeout() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver) { $0.drainTimeout = .milliseconds(200) }
        let client = try await gateway.client()
        let inFlight = Task { try await client.send(.GET, "/slow/5000", host: TestRoutes.host) }
        while upstream.requests.isEmpty { try await Task.sleep(for: .milliseconds(5)) }

        let clock = ContinuousClock()
        let started = clock.now
        try await gateway.stop()
        #expect(clock.now - started < .seconds(2))
        await #expect(throws: (any Error).self) { _ = try await inFlight.value }
        try await resolver.waitForReleases(1)
        #expect(resolver.everyLeaseReleasedOnce)
        await upstream.stop()
    }

    @Test("an idle keep-alive connection is closed after idleTimeout")
    func idleTimeout() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port))) {
            // Long enough that a loaded machine still sends the request before it fires.
            $0.idleTimeout = .seconds(1)
        }
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/", host: TestRoutes.host).status == .ok)
        #expect(await client.waitUntilClosed(timeout: .seconds(5)))
        try await gateway.stop()
        await upstream.stop()
    }
}
