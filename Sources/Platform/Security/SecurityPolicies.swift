import Foundation
import Gateway
import Glibc
import Logging
import ServiceLifecycle
import Store
import Synchronization

/// Keeps the gateway's ``SecurityTable`` in step with the store: the platform-wide
/// peer-authentication mode (kept in `<data-dir>/security/mtls-mode` across restarts), the
/// PeerAuthentication documents of namespaces and services, and the AuthorizationPolicy
/// documents. Wakes on the store's change stream; each publish applies to requests that start
/// afterwards (and to the handshake of new TLS connections).
final class SecurityPolicies: Service, Sendable {
    private let gateway: Gateway
    private let store: Store
    private let modePath: String
    private let logger: Logger
    private let platformMode: Mutex<PeerAuthenticationMode>

    /// Loads the saved mode (PERMISSIVE when none, STRICT when the file cannot be read) and
    /// publishes a first table.
    init(gateway: Gateway, store: Store, securityDirectory: String, logger: Logger) throws {
        self.gateway = gateway
        self.store = store
        self.logger = logger
        try FileManager.default.createDirectory(atPath: securityDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        modePath = "\(securityDirectory)/mtls-mode"
        platformMode = Mutex(Self.savedMode(modePath, logger: logger))
        try publish()
    }

    /// The mode saved at `path`: PERMISSIVE when there is no file; STRICT (fail closed, and
    /// logged) when there is one that cannot be read or names no mode.
    private static func savedMode(_ path: String, logger: Logger) -> PeerAuthenticationMode {
        guard FileManager.default.fileExists(atPath: path) else { return .permissive }
        let text = try? String(contentsOfFile: path, encoding: .utf8)
        if let mode = text.flatMap({ PeerAuthenticationMode(rawValue: $0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
            return mode
        }
        logger.error("the saved mTLS mode is unreadable; enforcing STRICT until the mode is set again", metadata: [
            "path": "\(path)", "content": "\(text.map { String($0.prefix(64)) } ?? "(unreadable)")",
        ])
        return .strict
    }

    /// The platform-wide peer-authentication mode.
    var currentMode: PeerAuthenticationMode { platformMode.withLock { $0 } }

    /// The table the gateway enforces.
    var currentTable: SecurityTable { gateway.securityTable }

    /// Saves and applies a new platform-wide mode.
    func setMode(_ newMode: PeerAuthenticationMode) throws {
        try CertificateAuthority.writeFile(modePath, newMode.rawValue, mode: 0o644)
        platformMode.withLock { $0 = newMode }
        try publish()
        logger.notice("peer authentication mode changed", metadata: ["mode": "\(newMode.rawValue)"])
    }

    /// Republishes on every change of a security document until shutdown.
    func run() async throws {
        let changes = store.changes()
        // Whatever changed between the first publish and the subscription.
        do { try publish() } catch { logger.error("security policies not published", metadata: ["error": "\(error)"]) }
        await cancelWhenGracefulShutdown { [self] in
            for await change in changes where change.kind == .authorizationPolicy || change.kind == .peerAuthentication {
                do { try publish() } catch {
                    logger.error("security policies not published", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Compiles every security document into a table and hands it to the gateway. A document
    /// that no longer compiles (the API rejects such specs, so only a hand-edited store has
    /// one) is left out and logged.
    func publish() throws {
        var namespaceModes: [String: PeerAuthenticationMode] = [:]
        var serviceModes: [ServiceKey: PeerAuthenticationMode] = [:]
        // Istio: of several policies for one scope, the oldest wins.
        for document in try store.documents(SecurityKind.peerAuthentication).sorted(by: { $0.meta.createdAt < $1.meta.createdAt }) {
            do {
                let spec = try PeerAuthenticationKind.decodeSpec(document.spec)
                guard let mode = try spec.mode() else { continue }
                if let service = try spec.selector?.service(at: "spec.selector") {
                    let key = ServiceKey(namespace: document.meta.namespace, service: service)
                    if serviceModes[key] == nil { serviceModes[key] = mode }
                } else if namespaceModes[document.meta.namespace] == nil {
                    namespaceModes[document.meta.namespace] = mode
                }
            } catch {
                logger.error("peer authentication skipped", metadata: ["name": "\(document.meta.namespace)/\(document.meta.name)", "error": "\(error)"])
            }
        }
        var policies: [AuthorizationPolicy] = []
        for document in try store.documents(SecurityKind.authorizationPolicy) {
            do {
                let spec = try AuthorizationPolicyKind.decodeSpec(document.spec)
                policies.append(try spec.compile(namespace: document.meta.namespace, name: document.meta.name, annotations: document.meta.annotations))
            } catch {
                logger.error("authorization policy skipped", metadata: ["name": "\(document.meta.namespace)/\(document.meta.name)", "error": "\(error)"])
            }
        }
        try gateway.publish(security: SecurityTable(
            platformMode: currentMode, namespaceModes: namespaceModes, serviceModes: serviceModes, policies: policies))
    }
}
