import Eventing
import Foundation
import Gateway
import Glibc
import Hummingbird
import HummingbirdTesting
import Logging
import NIOPosix
@testable import Platform
import Store
import Testing

/// Tokens, revocation and the audit log, over every mutating route the admin router has.
@Suite struct AdminAccessTests {
    let token = "bootstrap-token"

    /// The router with every optional part (certificates, security, eventing, metrics), so the
    /// walk sees every route the daemon serves.
    func router(_ store: Store) throws -> Router<AdminRequestContext> {
        let parts = try Parts.shared.get()
        return buildAdminRouter(AdminDependencies(
            store: store, logDirectory: "/nonexistent", modelDirectory: "/nonexistent",
            authority: parts.authority, gatewayCertificates: parts.certificates, securityPolicies: parts.policies,
            serviceURL: { "http://\($1).\($0).localhost:8080" }, isReady: { true }, metrics: { [] }, eventing: parts.eventing))
    }

    /// Daemon parts the routes need, built once and kept for the process (none of them runs).
    struct Parts: Sendable {
        let authority: CertificateAuthority
        let certificates: GatewayCertificates
        let policies: SecurityPolicies
        let eventing: EventingSystem

        static let shared: Result<Parts, any Error> = Result {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("outpost-admin-walk-\(getpid())").path
            let store = try Store(inMemory: ())
            let logger = Logger(label: "test")
            let authority = try CertificateAuthority(directory: "\(directory)/ca", trustDomain: "outpost.local")
            let gateway = Gateway(configuration: GatewayConfiguration(), resolver: NoWorkers(), eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: logger)
            return Parts(
                authority: authority,
                certificates: try GatewayCertificates(
                    authority: authority, gateway: gateway, domain: "localhost", securityDirectory: "\(directory)/security",
                    logger: logger, store: store),
                policies: try SecurityPolicies(gateway: gateway, store: store, securityDirectory: "\(directory)/security", logger: logger),
                eventing: EventingSystem(
                    store: store, configuration: EventingConfiguration(domain: "localhost", gatewayURL: "http://127.0.0.1:1", publicPort: 8080),
                    logger: logger))
        }
    }

    /// A resolver with no workers (the walk never gets past authentication).
    final class NoWorkers: UpstreamResolver {
        func tryAcquire(_ revision: RevisionID) -> UpstreamLease? { nil }
        func acquire(_ revision: RevisionID, timeout: Duration) async throws -> UpstreamLease {
            throw CancellationError()
        }
        func release(_ lease: UpstreamLease, outcome: UpstreamOutcome) {}
    }

    func json(_ buffer: ByteBuffer) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) as? [String: Any] ?? [:]
    }

    @Test func aReplacedTokenFileRevokesTheTokenItHeldBefore() throws {
        let store = try Store(inMemory: ())
        try AdminTokens.register(bootstrap: "first", in: store)
        try AdminTokens.register(bootstrap: "first", in: store)  // a restart with the same file
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash("first")) == .valid("admin"))
        try AdminTokens.register(bootstrap: "second", in: store)
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash("first")) == .revoked("admin"))
        guard case .valid(let name) = try store.lookupAdminToken(hash: AdminTokens.hash("second")) else {
            Issue.record("the new file's token does not work")
            return
        }
        #expect(name.hasPrefix("admin-"))
        // A token made with `outpost token create` is not the file's, and stays.
        _ = try store.createAdminToken(name: "ci", hash: AdminTokens.hash("ci-token"))
        try AdminTokens.register(bootstrap: "third", in: store)
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash("ci-token")) == .valid("ci"))
        #expect(AdminTokens.isBootstrapName("admin-123") && !AdminTokens.isBootstrapName("admin-ops"))
    }

    @Test func aRotationCutShortIsFinishedAtTheNextStart() throws {
        let store = try Store(inMemory: ())
        try AdminTokens.register(bootstrap: "leaked", in: store)
        // The new file's token was stored, then the daemon died before revoking the old one.
        _ = try store.createAdminToken(name: "admin-1700000000", hash: AdminTokens.hash("fresh"))
        try AdminTokens.register(bootstrap: "fresh", in: store)
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash("leaked")) == .revoked("admin"))
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash("fresh")) == .valid("admin-1700000000"))
    }

    @Test func everyMutatingRouteRefusesMissingWrongAndRevokedTokens() async throws {
        let store = try Store(inMemory: ())
        try AdminTokens.register(bootstrap: token, in: store)
        let router = try router(store)
        // Every route with a method that changes something, path parameters filled in.
        let mutating = router.routes.filter { $0.method != .get && $0.method != .head }.map { route in
            let path = route.path.description
                .replacingOccurrences(of: ":namespace", with: "default").replacingOccurrences(of: ":name", with: "x")
            return (route.method, path.hasPrefix("/") ? path : "/" + path)
        }
        #expect(mutating.count >= 38, "the walk covers the admin API: \(mutating.map { "\($0.0) \($0.1)" })")
        #expect(mutating.allSatisfy { $0.1.hasPrefix("/api/v1/") }, "no mutating route outside the authenticated group")
        let application = Application(router: router)
        try await application.test(.router) { client in
            // A second token, used once and then revoked.
            let created = try await client.execute(
                uri: "/api/v1/tokens", method: .post, headers: [.authorization: "Bearer \(token)"],
                body: ByteBuffer(string: #"{"name":"ci"}"#))
            #expect(created.status == .created)
            let secondToken = try #require(json(created.body)["token"] as? String)
            try await client.execute(uri: "/api/v1/tokens", method: .get, headers: [.authorization: "Bearer \(secondToken)"]) {
                #expect($0.status == .ok)
                #expect(!String(buffer: $0.body).contains(secondToken), "secrets are never listed")
            }
            try await client.execute(uri: "/api/v1/tokens/ci", method: .delete, headers: [.authorization: "Bearer \(token)"]) {
                #expect($0.status == .ok)
            }
            for (method, path) in mutating {
                let body = ByteBuffer(string: "{}")
                try await client.execute(uri: path, method: method, body: body) {
                    #expect($0.status == .unauthorized, "\(method) \(path) without a token")
                }
                try await client.execute(uri: path, method: method, headers: [.authorization: "Bearer wrong"], body: body) {
                    #expect($0.status == .forbidden, "\(method) \(path) with a wrong token")
                }
                try await client.execute(uri: path, method: method, headers: [.authorization: "Bearer \(secondToken)"], body: body) {
                    #expect($0.status == .forbidden, "\(method) \(path) with a revoked token")
                }
            }
            // Every refused call is in the audit log, with who tried.
            let audit = try await client.execute(uri: "/api/v1/audit?limit=10000", method: .get, headers: [.authorization: "Bearer \(token)"])
            let entries = json(audit.body)["items"] as? [[String: Any]] ?? []
            let actors = Dictionary(grouping: entries, by: { $0["actor"] as? String ?? "" }).mapValues(\.count)
            #expect(actors["anonymous"] == mutating.count && actors["invalid-token"] == mutating.count && actors["revoked:ci"] == mutating.count, "\(actors)")
            #expect(actors["admin"] == 2, "the token creation and the revocation: \(actors)")
        }
    }

    @Test func tokensAreStoredHashedAndTheBootstrapTokenIsNamedAdmin() throws {
        let store = try Store(inMemory: ())
        try AdminTokens.register(bootstrap: token, in: store)
        try AdminTokens.register(bootstrap: token, in: store)  // idempotent
        #expect(try store.adminTokens().map(\.name) == ["admin"])
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash(token)) == .valid("admin"))
        #expect(try store.lookupAdminToken(hash: token) == .unknown, "the plain token is not what is stored")
        _ = try store.revokeAdminToken(name: "admin")
        try AdminTokens.register(bootstrap: token, in: store)
        #expect(try store.lookupAdminToken(hash: AdminTokens.hash(token)) == .revoked("admin"), "a restart does not revive a revoked token")
    }
}
