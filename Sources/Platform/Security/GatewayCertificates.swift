import Foundation
import Gateway
import Glibc
import Logging
import ServiceLifecycle
import Store
import Synchronization

/// Keeps the gateway's TLS listener supplied: a server certificate from the built-in CA for
/// `*.<domain>` (identity `spiffe://<trust-domain>/ns/outpost-system/sa/gateway`), renewed at
/// about half its lifetime with jitter, and the platform-wide peer-authentication mode, kept in
/// `<data-dir>/security/mtls-mode` across restarts. Each renewal or mode change applies to new
/// connections only; open ones are not dropped.
final class GatewayCertificates: Service, Sendable {
    private let authority: CertificateAuthority
    private let gateway: Gateway
    private let domain: String
    private let modePath: String
    private let logger: Logger
    private let lifetime: TimeInterval
    private let store: Store
    private let installedNamespaces = Mutex<Set<String>>([])
    private let mode: Mutex<PeerAuthenticationMode>
    private let renewals: AsyncStream<Void>
    private let renewNow: AsyncStream<Void>.Continuation

    /// Loads the saved mode (PERMISSIVE when none) and installs a first certificate.
    init(authority: CertificateAuthority, gateway: Gateway, domain: String, securityDirectory: String,
         lifetime: TimeInterval = CertificateAuthority.defaultLifetime, logger: Logger, store: Store) throws {
        self.store = store
        self.authority = authority
        self.gateway = gateway
        self.domain = domain
        self.logger = logger
        self.lifetime = lifetime
        try FileManager.default.createDirectory(atPath: securityDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        modePath = "\(securityDirectory)/mtls-mode"
        let saved = (try? String(contentsOfFile: modePath, encoding: .utf8)).flatMap {
            PeerAuthenticationMode(rawValue: $0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        mode = Mutex(saved ?? .permissive)
        (renewals, renewNow) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try install()
    }

    /// The platform-wide peer-authentication mode.
    var currentMode: PeerAuthenticationMode { mode.withLock { $0 } }

    /// Saves and applies a new platform-wide mode.
    func setMode(_ newMode: PeerAuthenticationMode) throws {
        let temporary = modePath + ".tmp"
        try Data(newMode.rawValue.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, modePath) == 0 else {
            throw DaemonError("cannot save the mTLS mode: \(String(cString: strerror(errno)))")
        }
        mode.withLock { $0 = newMode }
        try install()
        logger.notice("peer authentication mode changed", metadata: ["mode": "\(newMode.rawValue)"])
    }

    /// Issues a fresh certificate and hands it to the gateway now (the admin API's rotate).
    func rotate() {
        renewNow.yield()
    }

    /// Renews the certificate at half-life (±10 %) until shutdown.
    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    while !Task.isCancelled {
                        let delay = lifetime / 2 * Double.random(in: 0.9...1.1)
                        try? await Task.sleep(for: .seconds(delay))
                        renewNow.yield()
                    }
                }
                group.addTask { [self] in
                    // A service in a new namespace needs that namespace's wildcard name.
                    for await change in store.changes() where change.kind == .service {
                        if !installedNamespaces.withLock({ $0.contains(change.namespace) }) { renewNow.yield() }
                    }
                }
                group.addTask { [self] in
                    for await _ in renewals {
                        do { try install() } catch {
                            logger.error("gateway certificate renewal failed", metadata: ["error": "\(error)"])
                        }
                    }
                }
                await group.waitForAll()
            }
        }
    }

    private func install() throws {
        let identity = authority.spiffeID(namespace: "outpost-system", name: "gateway")
        let inUse = Set(((try? store.services()) ?? []).map(\.meta.namespace)).union(["default"])
        let names = ["*.\(domain)", domain, "localhost"] + inUse.sorted().map { "*.\($0).\(domain)" }
        let issued = try authority.issue(spiffeID: identity, commonName: "*.\(domain)", dnsNames: names, lifetime: lifetime)
        try gateway.configureTLS(
            material: GatewayTLSMaterial(
                certificateChainPEM: issued.certificatePEM, privateKeyPEM: issued.privateKeyPEM,
                trustRootsPEM: authority.trustBundlePEM, identity: identity),
            mode: currentMode)
        installedNamespaces.withLock { $0 = inUse }
        logger.info("gateway certificate installed", metadata: ["notAfter": "\(issued.notAfter.formatted(Date.ISO8601FormatStyle()))", "mode": "\(currentMode.rawValue)"])
    }
}
