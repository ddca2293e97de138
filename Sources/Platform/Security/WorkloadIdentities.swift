import Foundation
import Gateway
import Glibc
import Logging
import ServiceLifecycle
import Store
import Synchronization

/// X.509 SVIDs for workloads: each service gets `spiffe://<trust-domain>/ns/<ns>/sa/<service>`
/// as a certificate, its key and the trust bundle in files under
/// `<data-dir>/security/workloads/<ns>/<service>/current/` (`cert.pem`, `key.pem` with mode
/// 0600, `bundle.pem`), whose paths reach its workers in `OUTPOST_SVID_CERT`,
/// `OUTPOST_SVID_KEY` and `OUTPOST_TRUST_BUNDLE` (and the ID in `OUTPOST_SPIFFE_ID`).
///
/// Renewal at about half the lifetime (±10 % jitter) writes a new version folder and swaps the
/// `current` symlink in one `rename(2)`, so a worker reading the files always sees a matching
/// certificate and key, and no worker restarts. A deleted service's files go away with it.
final class WorkloadIdentities: Service, Sendable {
    private let authority: CertificateAuthority
    private let directory: String
    private let lifetime: TimeInterval
    private let store: Store
    private let logger: Logger
    /// When each issued identity is due for renewal.
    private let renewals = Mutex<[ServiceKey: Date]>([:])
    /// One lock per identity, held while it is issued, so that workers of one service starting
    /// together wait for a single issue.
    private let issueLocks = Mutex<[ServiceKey: IssueLock]>([:])

    private final class IssueLock: Sendable {
        let mutex = Mutex(())
    }

    init(authority: CertificateAuthority, securityDirectory: String, lifetime: TimeInterval, store: Store, logger: Logger) throws {
        self.authority = authority
        directory = "\(securityDirectory)/workloads"
        self.lifetime = lifetime
        self.store = store
        self.logger = logger
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// The environment of a worker of `service`: the SVID's file paths, issuing it first when
    /// this daemon has not yet. On failure the worker starts without them (and it is logged).
    func environment(namespace: String, service: String) -> [String: String] {
        let key = ServiceKey(namespace: namespace, service: service)
        let folder = folder(of: key)
        do {
            try issueLock(key).mutex.withLock { _ in
                if renewals.withLock({ $0[key] == nil }) { try issue(key) }
            }
        } catch {
            logger.error("workload certificate not issued", metadata: ["service": "\(namespace)/\(service)", "error": "\(error)"])
            return [:]
        }
        return [
            "OUTPOST_SPIFFE_ID": authority.spiffeID(namespace: namespace, name: service),
            "OUTPOST_SVID_CERT": "\(folder)/current/cert.pem",
            "OUTPOST_SVID_KEY": "\(folder)/current/key.pem",
            "OUTPOST_TRUST_BUNDLE": "\(folder)/current/bundle.pem",
        ]
    }

    /// Renews due certificates and removes deleted services' files until shutdown.
    func run() async throws {
        let checkEvery = max(1.0, min(60.0, lifetime / 20))
        await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(checkEvery))
                        renewDue()
                    }
                }
                group.addTask { [self] in
                    for await change in store.changes() where change.kind == .service {
                        let key = ServiceKey(namespace: change.namespace, service: change.name)
                        let exists: Bool? = try? (store.service(namespace: key.namespace, name: key.service) != nil)
                        if exists == false { remove(key) }
                    }
                }
                await group.waitForAll()
            }
        }
    }

    /// Reissues every identity now (after the CA's roots changed).
    func renewAll() {
        for key in renewals.withLock({ Array($0.keys) }) { renew(key) }
    }

    private func renewDue() {
        let now = Date()
        for key in renewals.withLock({ $0.filter { $0.value <= now }.map(\.key) }) { renew(key) }
    }

    private func renew(_ key: ServiceKey) {
        do { try issueLock(key).mutex.withLock { _ in try issue(key) } } catch {
            logger.error("workload certificate renewal failed", metadata: ["service": "\(key.namespace)/\(key.service)", "error": "\(error)"])
        }
    }

    private func issueLock(_ key: ServiceKey) -> IssueLock {
        issueLocks.withLock { locks in
            if let lock = locks[key] { return lock }
            let lock = IssueLock()
            locks[key] = lock
            return lock
        }
    }

    private func folder(of key: ServiceKey) -> String { "\(directory)/\(key.namespace)/\(key.service)" }

    /// Writes a new version folder and points `current` at it.
    private func issue(_ key: ServiceKey) throws {
        let spiffeID = authority.spiffeID(namespace: key.namespace, name: key.service)
        let issued = try authority.issue(spiffeID: spiffeID, commonName: key.service, lifetime: lifetime)
        let folder = folder(of: key)
        let version = "v\(UInt64(Date().timeIntervalSince1970 * 1000))-\(UInt32.random(in: 0...UInt32.max))"
        let versionFolder = "\(folder)/\(version)"
        try FileManager.default.createDirectory(atPath: versionFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try CertificateAuthority.writeFile("\(versionFolder)/key.pem", issued.privateKeyPEM, mode: 0o600)
        try CertificateAuthority.writeFile("\(versionFolder)/cert.pem", issued.certificatePEM, mode: 0o644)
        try CertificateAuthority.writeFile("\(versionFolder)/bundle.pem", authority.trustBundlePEM, mode: 0o644)
        let link = "\(folder)/current.\(version).tmp"
        guard symlink(version, link) == 0, rename(link, "\(folder)/current") == 0 else {
            let message = String(cString: strerror(errno))
            unlink(link)
            throw DaemonError("cannot switch \(folder)/current: \(message)")
        }
        // Older versions go (never the one `current` points at), and links left by a crash; a
        // worker that opened a file keeps it.
        let current = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/current")
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        where (entry.hasPrefix("v") && entry != version && entry != current) || (entry.hasPrefix("current.") && entry.hasSuffix(".tmp")) {
            try? FileManager.default.removeItem(atPath: "\(folder)/\(entry)")
        }
        let renewAt = Date() + lifetime / 2 * Double.random(in: 0.9...1.1)
        renewals.withLock { $0[key] = renewAt }
        logger.info("workload certificate issued", metadata: [
            "spiffeID": "\(spiffeID)", "notAfter": "\(issued.notAfter.formatted(Date.ISO8601FormatStyle()))",
        ])
    }

    private func remove(_ key: ServiceKey) {
        _ = renewals.withLock { $0.removeValue(forKey: key) }
        _ = issueLocks.withLock { $0.removeValue(forKey: key) }
        try? FileManager.default.removeItem(atPath: folder(of: key))
    }
}
