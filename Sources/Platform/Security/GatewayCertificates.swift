import Foundation
import Gateway
import Hummingbird
import Glibc
import Logging
import ServiceLifecycle
import Store
import Synchronization
import SwiftASN1
import X509

/// Keeps the gateway's TLS listener supplied: a default server certificate from the built-in CA
/// for `*.<domain>` (identity `spiffe://<trust-domain>/ns/outpost-system/sa/gateway`), renewed
/// at about half its lifetime with jitter, and the certificates imported with
/// `outpost cert import`, selected by SNI and kept in `<data-dir>/security/certificates`
/// (one PEM file per certificate, chain then key, mode 0600). Each renewal or import applies to
/// new connections only; open ones are not dropped.
final class GatewayCertificates: Service, Sendable {
    private let authority: CertificateAuthority
    private let gateway: Gateway
    private let domain: String
    private let importDirectory: String
    private let logger: Logger
    private let lifetime: TimeInterval
    private let store: Store
    private let installedNamespaces = Mutex<Set<String>>([])
    /// Serialises imports and deletions with the reload that follows them.
    private let importLock = Mutex(())
    private let renewals: AsyncStream<Void>
    private let renewNow: AsyncStream<Void>.Continuation

    /// Installs a first certificate and the imported ones.
    init(authority: CertificateAuthority, gateway: Gateway, domain: String, securityDirectory: String,
         lifetime: TimeInterval = CertificateAuthority.defaultLifetime, logger: Logger, store: Store) throws {
        self.store = store
        self.authority = authority
        self.gateway = gateway
        self.domain = domain
        self.logger = logger
        self.lifetime = lifetime
        try FileManager.default.createDirectory(atPath: securityDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        importDirectory = "\(securityDirectory)/certificates"
        try FileManager.default.createDirectory(atPath: importDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        (renewals, renewNow) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        try install()
        try installImported(try importedCertificates())
    }

    /// Issues a fresh certificate and hands it to the gateway soon (the admin API's rotate).
    func rotate() {
        renewNow.yield()
    }

    /// Issues a fresh certificate from the current signing root, with the current trust
    /// bundle, and hands it to the gateway before returning (after a root rotation step).
    func reinstall() {
        do { try install() } catch {
            logger.error("gateway certificate not reinstalled", metadata: ["error": "\(error)"])
        }
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
                trustRootsPEM: authority.trustBundlePEM, identity: identity))
        installedNamespaces.withLock { $0 = inUse }
        logger.info("gateway certificate installed", metadata: ["notAfter": "\(issued.notAfter.formatted(Date.ISO8601FormatStyle()))"])
    }

    // MARK: Imported certificates

    /// A certificate imported for SNI, as saved.
    struct Imported: Codable, Sendable {
        var name: String
        var hosts: [String]
        var certificate: String
        var privateKey: String
    }

    /// Checks and saves a certificate (leaf first, then intermediates) with its key, and serves
    /// it from now on to clients whose SNI names one of `hosts` (default: the leaf's DNS names).
    /// Replaces a certificate of the same name.
    func importCertificate(name: String, certificatePEM: String, privateKeyPEM: String, hosts: [String]?) throws -> ImportedCertificateDTO {
        let leaf: Certificate
        do {
            leaf = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw APIError(.badRequest, code: "InvalidField", "certificate is not a PEM X.509 certificate: \(error)", field: "certificate")
        }
        let key: Certificate.PrivateKey
        do {
            key = try Certificate.PrivateKey(pemEncoded: privateKeyPEM)
        } catch {
            throw APIError(.badRequest, code: "InvalidField", "privateKey is not a PEM private key (PKCS#8, SEC1 or PKCS#1): \(error)", field: "privateKey")
        }
        guard key.publicKey == leaf.publicKey else {
            throw APIError(.badRequest, code: "InvalidField", "privateKey does not belong to the certificate", field: "privateKey")
        }
        let names = hosts ?? Self.dnsNames(of: leaf)
        guard !names.isEmpty else {
            throw APIError(.badRequest, code: "InvalidField", "the certificate names no DNS host; pass hosts", field: "hosts")
        }
        for (index, host) in names.enumerated() {
            let bare = host.hasPrefix("*.") ? String(host.dropFirst(2)) : host
            guard !bare.isEmpty, !bare.contains("*"), bare.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." }) else {
                throw APIError(.badRequest, code: "InvalidField", "\"\(host)\" is not a host name (a wildcard may only be the first label)", field: "hosts[\(index)]")
            }
        }
        let imported = Imported(name: name, hosts: names.map { $0.lowercased() }, certificate: certificatePEM, privateKey: privateKeyPEM)
        try importLock.withLock { _ in
            var all = try importedCertificates().filter { $0.name != name }
            all.append(imported)
            // Serve it before saving it: PEM that NIOSSL cannot use fails here, with nothing saved.
            do { try installImported(all) } catch {
                throw APIError(.badRequest, code: "InvalidField", "the certificate chain cannot be served: \(error)", field: "certificate")
            }
            try CertificateAuthority.writeFile(path(of: name), String(decoding: try JSONEncoder().encode(imported), as: UTF8.self), mode: 0o600)
        }
        logger.notice("certificate imported", metadata: ["name": "\(name)", "hosts": "\(imported.hosts.joined(separator: ","))"])
        return ImportedCertificateDTO(imported, leaf: leaf)
    }

    /// Deletes an imported certificate; its hosts get the default certificate again.
    func deleteImported(name: String) throws {
        try importLock.withLock { _ in
            let all = try importedCertificates()
            guard all.contains(where: { $0.name == name }) else {
                throw APIError(.notFound, code: "NotFound", "no imported certificate named \(name)")
            }
            guard unlink(path(of: name)) == 0 else {
                throw DaemonError("cannot delete \(path(of: name)): \(String(cString: strerror(errno)))")
            }
            try installImported(all.filter { $0.name != name })
        }
    }

    /// The imported certificates, by name.
    func importedList() throws -> [ImportedCertificateDTO] {
        try importedCertificates().map { ImportedCertificateDTO($0, leaf: try? Certificate(pemEncoded: $0.certificate)) }
    }

    private func path(of name: String) -> String { "\(importDirectory)/\(name).json" }

    private func importedCertificates() throws -> [Imported] {
        let files = try FileManager.default.contentsOfDirectory(atPath: importDirectory).filter { $0.hasSuffix(".json") }.sorted()
        return try files.map { file in
            try JSONDecoder().decode(Imported.self, from: Data(contentsOf: URL(fileURLWithPath: "\(importDirectory)/\(file)")))
        }
    }

    private func installImported(_ all: [Imported]) throws {
        try gateway.configureServerCertificates(all.map {
            GatewayServerCertificate(hosts: $0.hosts, certificateChainPEM: $0.certificate, privateKeyPEM: $0.privateKey)
        })
    }

    private static func dnsNames(of certificate: Certificate) -> [String] {
        guard let names = try? certificate.extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { if case .dnsName(let name) = $0 { name } else { nil } }
    }
}

/// An imported certificate in the API.
struct ImportedCertificateDTO: Codable, Sendable {
    var name: String
    var hosts: [String]
    var subject: String?
    var notAfter: Date?

    init(_ imported: GatewayCertificates.Imported, leaf: Certificate?) {
        name = imported.name
        hosts = imported.hosts
        subject = leaf.map { String(describing: $0.subject) }
        notAfter = leaf?.notValidAfter
    }
}
