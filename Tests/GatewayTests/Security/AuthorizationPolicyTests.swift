@testable import Gateway
import NIOHTTP1
import Testing

@Suite("Authorization policies")
struct AuthorizationPolicyTests {
    static let alice = "spiffe://outpost.local/ns/default/sa/alice"
    static let bob = "spiffe://outpost.local/ns/shop/sa/bob"

    func request(
        _ identity: String? = alice, ip: String = "10.1.2.3", method: HTTPMethod = .GET, uri: String = "/",
        headers: [(String, String)] = [], host: String = "cart.shop.example.com:8443"
    ) -> AuthorizationRequest {
        let head = HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: HTTPHeaders(headers))
        return AuthorizationRequest(identity: identity, sourceIP: ip, head: head, host: host, port: 8443)
    }

    func principals(_ values: [String], not: [String] = []) -> AuthorizationSource {
        var source = AuthorizationSource()
        source.principals = FieldMatch(values.map { StringPattern($0) }, not: not.map { StringPattern($0) })
        return source
    }

    @Test func patternsMatchExactPrefixSuffixAndPresence() {
        #expect(StringPattern("/api").matches("/api"))
        #expect(!StringPattern("/api").matches("/api/v1"))
        #expect(StringPattern("/api/*").matches("/api/v1"))
        #expect(StringPattern("*.png").matches("/a/b.png"))
        #expect(StringPattern("*").matches("x"))
        #expect(!StringPattern("*").matches(""))
        #expect(!StringPattern("*").matches(nil))
        #expect(StringPattern("Cart.Example.com", caseInsensitive: true).matches("cart.example.com"))
    }

    @Test func ipBlocksCoverIPv4AndIPv6() throws {
        let block = try #require(IPBlock("10.0.0.0/8"))
        #expect(block.contains("10.255.0.1"))
        #expect(!block.contains("11.0.0.1"))
        #expect(try #require(IPBlock("127.0.0.1")).contains("127.0.0.1"))
        #expect(!(try #require(IPBlock("127.0.0.1")).contains("127.0.0.2")))
        #expect(try #require(IPBlock("fd00::/8")).contains("fd12::1"))
        #expect(!(try #require(IPBlock("fd00::/8")).contains("fe80::1")))
        #expect(try #require(IPBlock("0.0.0.0/0")).contains("192.168.1.1"))
        #expect(IPBlock("10.0.0.0/33") == nil)
        #expect(IPBlock("not-an-ip") == nil)
    }

    @Test func requestFactsComeFromTheHeadAndTheIdentity() {
        let facts = request(uri: "/a//b/./c/../d?x=1", headers: [("X-Forwarded-For", " 192.0.2.7 , 10.0.0.1")])
        #expect(facts.path == "/a/b/d")
        #expect(facts.principal == "outpost.local/ns/default/sa/alice")
        #expect(facts.principalNamespace == "default")
        // No trusted proxies (Istio's default): X-Forwarded-For is the client's to write.
        #expect(facts.remoteIP == "10.1.2.3")
        #expect(facts.host == "cart.shop.example.com")
        #expect(AuthorizationRequest.normalize(path: "/../x/") == "/x/")
        #expect(AuthorizationRequest.normalize(path: "/plain") == "/plain")
    }

    @Test func remoteIpBlocksIgnoreXForwardedFor() throws {
        var source = AuthorizationSource()
        source.remoteIpBlocks = FieldMatch([try #require(IPBlock("10.0.0.0/8"))])
        let table = SecurityTable(platformMode: .permissive, policies: [
            AuthorizationPolicy(namespace: "shop", name: "internal", action: .allow, rules: [AuthorizationRule(from: [source])])
        ])
        let spoofed = request(ip: "127.0.0.1", headers: [("X-Forwarded-For", "10.0.0.1")])
        #expect(table.authorize(spoofed, namespace: "shop", service: "cart") { _ in } != nil)
        #expect(table.authorize(request(ip: "10.0.0.1"), namespace: "shop", service: "cart") { _ in } == nil)
    }

    @Test func hostsAreReadAsRoutingReadsThem() {
        #expect(request(host: "Cart.Shop.Example.Com.").host == "cart.shop.example.com")
        #expect(request(host: "cart.shop.example.com.:8443").host == "cart.shop.example.com")
        #expect(request(host: "[::1]:8443").host == "::1")
        var operation = AuthorizationOperation()
        operation.hosts = FieldMatch([StringPattern("cart.shop.example.com", caseInsensitive: true)])
        let table = SecurityTable(platformMode: .permissive, policies: [
            AuthorizationPolicy(namespace: "shop", name: "deny-host", action: .deny, rules: [AuthorizationRule(to: [operation])])
        ])
        #expect(table.authorize(request(host: "cart.shop.example.com."), namespace: "shop", service: "cart") { _ in } != nil)
        #expect(table.authorize(request(host: "CART.shop.example.com"), namespace: "shop", service: "cart") { _ in } != nil)
    }

    @Test func pathsArePercentDecodedAndDotSegmentsResolved() {
        var admin = AuthorizationOperation()
        admin.paths = FieldMatch([StringPattern("/admin*")])
        var publicPaths = AuthorizationOperation()
        publicPaths.paths = FieldMatch([StringPattern("/public/*")])
        let table = SecurityTable(platformMode: .permissive, policies: [
            AuthorizationPolicy(namespace: "shop", name: "deny-admin", action: .deny, rules: [AuthorizationRule(to: [admin])]),
            AuthorizationPolicy(namespace: "shop", name: "public", action: .allow, rules: [AuthorizationRule(to: [publicPaths])]),
        ])
        func decide(_ uri: String) -> String? { table.authorize(request(uri: uri), namespace: "shop", service: "cart") { _ in } }
        #expect(decide("/%61dmin")?.contains("deny-admin") == true)
        #expect(decide("/public/%2e%2e/admin")?.contains("deny-admin") == true)
        #expect(decide("/public/%2e%2e/other") != nil, "not under /public/ once normalized")
        #expect(decide("/public/%61?x=/admin") == nil)
        #expect(request(uri: "/public/%2E%2E/x?q=%2e").path == "/x")
    }

    @Test func denyBeatsAllowAndNoAllowPolicyAllows() {
        let allowAlice = AuthorizationPolicy(namespace: "shop", name: "allow-alice", action: .allow, rules: [AuthorizationRule(from: [principals(["outpost.local/ns/default/sa/alice"])])])
        var adminPaths = AuthorizationOperation()
        adminPaths.paths = FieldMatch([StringPattern("/admin*")])
        let denyAdmin = AuthorizationPolicy(namespace: "shop", name: "deny-admin", action: .deny, rules: [AuthorizationRule(to: [adminPaths])])
        func decide(_ table: SecurityTable, _ request: AuthorizationRequest, service: String = "cart") -> String? {
            table.authorize(request, namespace: "shop", service: service) { _ in }
        }
        #expect(decide(SecurityTable(platformMode: .permissive), request(nil)) == nil)
        let table = SecurityTable(platformMode: .permissive, policies: [allowAlice, denyAdmin])
        #expect(decide(table, request()) == nil)
        #expect(decide(table, request(Self.bob))?.contains("no ALLOW policy matches") == true)
        #expect(decide(table, request(nil)) != nil)
        #expect(decide(table, request(uri: "/admin/x")) == "denied by DENY policy shop/deny-admin")
        // `spec: {}` (no rules) is allow-nothing.
        let nothing = SecurityTable(platformMode: .permissive, policies: [AuthorizationPolicy(namespace: "shop", name: "none", action: .allow, rules: [])])
        #expect(decide(nothing, request()) != nil)
        // `rules: [{}]` is allow-all.
        let all = SecurityTable(platformMode: .permissive, policies: [AuthorizationPolicy(namespace: "shop", name: "all", action: .allow, rules: [AuthorizationRule()])])
        #expect(decide(all, request(nil)) == nil)
        // A selector limits a policy to one service.
        let selected = SecurityTable(platformMode: .permissive, policies: [AuthorizationPolicy(namespace: "shop", name: "cart-only", service: "cart", action: .deny, rules: [AuthorizationRule()])])
        #expect(decide(selected, request()) != nil)
        #expect(decide(selected, request(), service: "web") == nil)
    }

    @Test func notFieldsConditionsAndRootNamespace() {
        var rule = AuthorizationRule(from: [principals(["*"], not: ["outpost.local/ns/default/sa/alice"])])
        let denyOthers = AuthorizationPolicy(namespace: SecurityTable.rootNamespace, name: "others", action: .deny, rules: [rule])
        let table = SecurityTable(platformMode: .permissive, policies: [denyOthers])
        #expect(table.authorize(request(), namespace: "shop", service: "cart") { _ in } == nil)
        #expect(table.authorize(request(Self.bob), namespace: "shop", service: "cart") { _ in } == "denied by DENY policy outpost-system/others")
        rule = AuthorizationRule(when: [
            AuthorizationCondition(key: .header("x-team"), values: ["blue"]),
            AuthorizationCondition(key: .sourceIP, values: ["10.0.0.0/8"]),
            AuthorizationCondition(key: .sourceNamespace, values: [], notValues: ["shop"]),
        ])
        let allowBlue = SecurityTable(platformMode: .permissive, policies: [AuthorizationPolicy(namespace: "shop", name: "blue", action: .allow, rules: [rule])])
        #expect(allowBlue.authorize(request(headers: [("X-Team", "blue")]), namespace: "shop", service: "cart") { _ in } == nil)
        #expect(allowBlue.authorize(request(headers: [("X-Team", "red")]), namespace: "shop", service: "cart") { _ in } != nil)
        #expect(allowBlue.authorize(request(ip: "192.0.2.1", headers: [("X-Team", "blue")]), namespace: "shop", service: "cart") { _ in } != nil)
        #expect(allowBlue.authorize(request(Self.bob, headers: [("X-Team", "blue")]), namespace: "shop", service: "cart") { _ in } != nil)
        #expect(AuthorizationCondition.Key("request.headers[x-a]") == .header("x-a"))
        #expect(AuthorizationCondition.Key("request.auth.claims[iss]") == nil)
    }

    @Test func dryRunPoliciesOnlyTakeNotes() {
        let dryDeny = AuthorizationPolicy(namespace: "shop", name: "dry", action: .deny, rules: [AuthorizationRule()], dryRun: true)
        let dryAllow = AuthorizationPolicy(namespace: "shop", name: "dry-allow", action: .allow, rules: [AuthorizationRule(from: [principals(["nobody"])])], dryRun: true)
        var notes: [String] = []
        let table = SecurityTable(platformMode: .permissive, policies: [dryDeny, dryAllow])
        #expect(table.authorize(request(), namespace: "shop", service: "cart") { notes.append($0) } == nil)
        #expect(notes.count == 2)
        #expect(notes.contains { $0.contains("DENY policy shop/dry would deny") })
        #expect(notes.contains { $0.contains("would be denied") })
    }

    @Test func modesResolveMostSpecificFirstAndSetTheHandshake() {
        let table = SecurityTable(
            platformMode: .strict, namespaceModes: ["public": .permissive],
            serviceModes: [ServiceKey(namespace: "public", service: "admin"): .strict])
        #expect(table.mode(namespace: "shop", service: "cart") == .strict)
        #expect(table.mode(namespace: "public", service: "web") == .permissive)
        #expect(table.mode(namespace: "public", service: "admin") == .strict)
        #expect(table.handshakeMode == .permissive)
        #expect(SecurityTable(platformMode: .strict).handshakeMode == .strict)
        #expect(SecurityTable(platformMode: .disable).handshakeMode == .disable)
        #expect(SecurityTable(platformMode: .disable, namespaceModes: ["x": .strict]).handshakeMode == .permissive)
    }
}
