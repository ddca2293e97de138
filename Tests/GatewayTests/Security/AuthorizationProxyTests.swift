@testable import Gateway
import NIOCore
import NIOHTTP1
import Testing

/// Authorization policies applied by the proxy: the facts policies judge are the ones the
/// gateway routes by and forwards (peer address, host as routed, normalized path).
@Suite("Authorization policies through real sockets")
struct AuthorizationProxyTests {
    static let host = TestRoutes.host

    static func start(_ policies: [AuthorizationPolicy]) async throws -> (TestUpstreamServer, GatewayHarness) {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        try gateway.gateway.publish(security: SecurityTable(platformMode: .permissive, policies: policies))
        return (upstream, gateway)
    }

    static func paths(_ patterns: String...) -> AuthorizationOperation {
        var operation = AuthorizationOperation()
        operation.paths = FieldMatch(patterns.map { StringPattern($0) })
        return operation
    }

    @Test("X-Forwarded-For does not put a client into remoteIpBlocks")
    func forwardedForIsNotTrusted() async throws {
        var source = AuthorizationSource()
        source.remoteIpBlocks = FieldMatch([try #require(IPBlock("10.0.0.0/8"))])
        let (upstream, gateway) = try await Self.start([
            AuthorizationPolicy(namespace: "default", name: "internal", action: .allow, rules: [AuthorizationRule(from: [source])])
        ])
        let client = try await gateway.client()
        let response = try await client.send(.GET, "/", host: Self.host, headers: [("X-Forwarded-For", "10.0.0.1")])
        #expect(response.status == .forbidden, "\(response.text)")
        #expect(upstream.requests.isEmpty)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a Host with a trailing dot routes to the service and meets its hosts policy")
    func trailingDotHost() async throws {
        var operation = AuthorizationOperation()
        operation.hosts = FieldMatch([StringPattern(Self.host, caseInsensitive: true)])
        let (upstream, gateway) = try await Self.start([
            AuthorizationPolicy(namespace: "default", name: "deny-host", action: .deny, rules: [AuthorizationRule(to: [operation])])
        ])
        let client = try await gateway.client()
        for host in [Self.host + ".", Self.host.uppercased() + ".:80"] {
            let response = try await client.send(.GET, "/", host: host)
            #expect(response.status == .forbidden, "\(host): \(response.text)")
        }
        #expect(upstream.requests.isEmpty)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("percent-encoded and dot-segment paths are judged, and forwarded, normalized")
    func normalizedPaths() async throws {
        let (upstream, gateway) = try await Self.start([
            AuthorizationPolicy(namespace: "default", name: "deny-admin", action: .deny, rules: [AuthorizationRule(to: [Self.paths("/admin*")])]),
            AuthorizationPolicy(namespace: "default", name: "public", action: .allow, rules: [AuthorizationRule(to: [Self.paths("/public/*")])]),
        ])
        let client = try await gateway.client()
        for uri in ["/%61dmin", "/public/%2e%2e/admin", "/public/%2E%2E/other", "/public/.%2e/%2e%2E/admin"] {
            let response = try await client.send(.GET, uri, host: Self.host)
            #expect(response.status == .forbidden, "\(uri): \(response.text)")
        }
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map(\.uri))")
        let allowed = try await client.send(.GET, "/public/%61b/./c?x=/../%2e", host: Self.host)
        #expect(allowed.status == .ok)
        #expect(upstream.requests.map(\.uri) == ["/public/ab/c?x=/../%2e"])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("without policies the worker still gets the normalized path")
    func normalizedWithoutPolicies() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await gateway.client()
        for uri in ["/a/./b/%2e%2e//c?q=/../", "/plain/path?x=1"] {
            let response = try await client.send(.GET, uri, host: Self.host)
            #expect(response.status == .ok)
        }
        #expect(upstream.requests.map(\.uri) == ["/a/c?q=/../", "/plain/path?x=1"])
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }
}
