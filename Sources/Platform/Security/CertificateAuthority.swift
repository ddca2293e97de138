import Crypto
import Foundation
import Glibc
import SwiftASN1
import Synchronization
import X509

/// The daemon's built-in certificate authority: an ECDSA P-256 root created on first start in
/// `<data-dir>/ca` (key file mode 0600), which issues X.509 SVIDs for SPIFFE identities
/// `spiffe://<trust-domain>/ns/<namespace>/sa/<name>`.
///
/// The root rotates in three steps, so that no peer ever meets a certificate it cannot verify:
/// `prepare` creates the next root and adds it to the trust bundle (certificates are still
/// signed by the current one); once every peer has the new bundle, `activate` makes the next
/// root the signing one (the old root stays trusted, so certificates it signed keep working);
/// once those have expired, `retire` drops the old root from the bundle. Files: `root.pem` and
/// `root-key.pem` (signing), `next.pem` and `next-key.pem` (prepared), `previous.pem` (still
/// trusted). Observers (the gateway, workload identities) hear about every step.
final class CertificateAuthority: Sendable {
    /// The trust domain of every identity this CA issues.
    let trustDomain: String
    private let directory: String
    private let roots: Mutex<Roots>
    private let observers = Mutex<[@Sendable () -> Void]>([])

    private struct Roots {
        var signing: Certificate
        var signingKey: P256.Signing.PrivateKey
        var next: (certificate: Certificate, key: P256.Signing.PrivateKey)?
        var previous: [Certificate]

        var trusted: [Certificate] { [signing] + (next.map { [$0.certificate] } ?? []) + previous }
    }

    /// Lifetime of the root.
    static let rootLifetime: TimeInterval = 10 * 365 * 86_400
    /// Default lifetime of an issued certificate (Istio's workload default).
    static let defaultLifetime: TimeInterval = 24 * 3600
    /// Longest lifetime the API issues.
    static let maxLifetime: TimeInterval = 90 * 86_400

    /// A key pair with its certificate, as PEM.
    struct Issued: Sendable {
        var spiffeID: String
        var certificatePEM: String
        var privateKeyPEM: String
        var notAfter: Date
    }

    /// A step of a root rotation.
    enum RotationStep: String, Sendable, CaseIterable {
        case prepare, activate, retire
    }

    /// A rotation step asked for out of order.
    struct RotationOrderError: Error {
        var message: String
    }

    /// One root in the trust bundle and its role.
    struct RootInfo: Codable, Sendable {
        var role: String
        var subject: String
        var serialNumber: String
        var notAfter: Date
    }

    /// Loads the CA from `directory`, or creates it there.
    init(directory: String, trustDomain: String) throws {
        self.trustDomain = trustDomain
        self.directory = directory
        let keyPath = "\(directory)/root-key.pem"
        let certificatePath = "\(directory)/root.pem"
        let manager = FileManager.default
        var roots: Roots
        let hasKey = manager.fileExists(atPath: keyPath), hasCertificate = manager.fileExists(atPath: certificatePath)
        if hasKey != hasCertificate {
            throw DaemonError("the CA in \(directory) is incomplete: \(hasKey ? keyPath : certificatePath) exists but \(hasKey ? certificatePath : keyPath) does not; restore it, or move the ca folder away to create a new CA")
        }
        if hasKey {
            var signing = try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8))
            let signingKey = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
            if !Self.matches(signing, signingKey) {
                // An activation cut short between root-key.pem and root.pem: finish it.
                let nextPath = "\(directory)/next.pem"
                guard let text = try? String(contentsOfFile: nextPath, encoding: .utf8), let next = try? Certificate(pemEncoded: text),
                      Self.matches(next, signingKey) else {
                    throw DaemonError("the CA key \(keyPath) matches neither \(certificatePath) nor \(nextPath); restore the matching root.pem, or move the ca folder away to create a new CA")
                }
                try Self.writeFile(certificatePath, try next.serializeAsPEM().pemString, mode: 0o644)
                unlink(nextPath)
                unlink("\(directory)/next-key.pem")
                signing = next
            }
            roots = Roots(signing: signing, signingKey: signingKey, next: nil, previous: [])
            guard Self.rootTrustDomain(roots.signing) == trustDomain else {
                throw DaemonError("the CA in \(directory) is for trust domain \(Self.rootTrustDomain(roots.signing) ?? "?"), not \(trustDomain); keep --trust-domain as it was or move the ca folder away to create a new CA")
            }
            if let text = try? String(contentsOfFile: "\(directory)/previous.pem", encoding: .utf8) {
                // An activation cut short before root-key.pem was written leaves the signing root there.
                roots.previous = try PEMDocument.parseMultiple(pemString: text).map { try Certificate(pemDocument: $0) }.filter { $0 != signing }
            }
            if let certificate = try? String(contentsOfFile: "\(directory)/next.pem", encoding: .utf8),
               let key = try? String(contentsOfFile: "\(directory)/next-key.pem", encoding: .utf8) {
                let next = (try Certificate(pemEncoded: certificate), try P256.Signing.PrivateKey(pemRepresentation: key))
                // An activation cut short after the signing root was written leaves `next` behind.
                if next.0 != roots.signing {
                    guard Self.matches(next.0, next.1) else {
                        throw DaemonError("the CA key \(directory)/next-key.pem does not match \(directory)/next.pem; remove both and prepare the rotation again")
                    }
                    roots.next = next
                }
            }
        } else {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let key = P256.Signing.PrivateKey()
            roots = Roots(signing: try Self.makeRoot(key: key, trustDomain: trustDomain), signingKey: key, next: nil, previous: [])
            try Self.writeFile(keyPath, key.pemRepresentation, mode: 0o600)
            try Self.writeFile(certificatePath, try roots.signing.serializeAsPEM().pemString, mode: 0o644)
        }
        self.roots = Mutex(roots)
    }

    /// The signing root.
    var root: Certificate { roots.withLock { $0.signing } }

    /// The roots peers must trust, PEM: the signing root, and during a rotation the next or the
    /// previous one too.
    var trustBundlePEM: String {
        let trusted = roots.withLock { $0.trusted }
        return trusted.compactMap { try? $0.serializeAsPEM().pemString + "\n" }.joined()
    }

    /// The roots peers must trust (see ``trustBundlePEM``).
    var trustedRoots: [Certificate] { roots.withLock { $0.trusted } }

    /// The roots of the trust bundle with their roles (`signing`, `next`, `previous`).
    var rootInfo: [RootInfo] {
        roots.withLock { roots in
            func info(_ certificate: Certificate, _ role: String) -> RootInfo {
                RootInfo(role: role, subject: String(describing: certificate.subject), serialNumber: String(describing: certificate.serialNumber), notAfter: certificate.notValidAfter)
            }
            return [info(roots.signing, "signing")] + (roots.next.map { [info($0.certificate, "next")] } ?? []) + roots.previous.map { info($0, "previous") }
        }
    }

    /// Calls `observer` after every rotation step.
    func onRootsChange(_ observer: @escaping @Sendable () -> Void) {
        observers.withLock { $0.append(observer) }
    }

    /// Runs one step of a root rotation; throws a message saying what must come first when the
    /// step does not apply.
    func rotate(_ step: RotationStep) throws {
        try roots.withLock { roots in
            switch step {
            case .prepare:
                guard roots.next == nil else { throw RotationOrderError(message: "a next root is already prepared; activate it first") }
                guard roots.previous.isEmpty else { throw RotationOrderError(message: "the previous root is still trusted; retire it first") }
                let key = P256.Signing.PrivateKey()
                let certificate = try Self.makeRoot(key: key, trustDomain: trustDomain)
                try Self.writeFile("\(directory)/next-key.pem", key.pemRepresentation, mode: 0o600)
                try Self.writeFile("\(directory)/next.pem", try certificate.serializeAsPEM().pemString, mode: 0o644)
                roots.next = (certificate, key)
            case .activate:
                guard let next = roots.next else { throw RotationOrderError(message: "no next root is prepared; run the prepare step first") }
                let previous = [roots.signing] + roots.previous
                try Self.writeFile("\(directory)/previous.pem", try previous.map { try $0.serializeAsPEM().pemString + "\n" }.joined(), mode: 0o644)
                try Self.writeFile("\(directory)/root-key.pem", next.key.pemRepresentation, mode: 0o600)
                try Self.writeFile("\(directory)/root.pem", try next.certificate.serializeAsPEM().pemString, mode: 0o644)
                unlink("\(directory)/next.pem")
                unlink("\(directory)/next-key.pem")
                roots = Roots(signing: next.certificate, signingKey: next.key, next: nil, previous: previous)
            case .retire:
                guard !roots.previous.isEmpty else { throw RotationOrderError(message: "no previous root is trusted; nothing to retire") }
                guard unlink("\(directory)/previous.pem") == 0 else {
                    throw DaemonError("cannot remove previous.pem: \(String(cString: strerror(errno)))")
                }
                roots.previous = []
            }
        }
        for observer in observers.withLock({ $0 }) { observer() }
    }

    /// The SPIFFE ID of a workload or caller.
    func spiffeID(namespace: String, name: String) -> String {
        "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(name)"
    }

    /// Issues a certificate for `spiffeID`, usable as a TLS client and server certificate; DNS
    /// names go into the SAN too (for server certificates).
    func issue(
        spiffeID: String, commonName: String, dnsNames: [String] = [], ipAddresses: [String] = [],
        lifetime: TimeInterval = CertificateAuthority.defaultLifetime
    ) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let notAfter = now + lifetime
        let publicKey = Certificate.PublicKey(key.publicKey)
        let (root, rootKey) = roots.withLock { ($0.signing, $0.signingKey) }
        let rootKeyIdentifier = try root.extensions.subjectKeyIdentifier?.keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: rootKeyIdentifier)
            SubjectAlternativeNames(
                [GeneralName.uniformResourceIdentifier(spiffeID)] + dnsNames.map { GeneralName.dnsName($0) }
                    + ipAddresses.compactMap(Self.addressBytes).map { GeneralName.ipAddress(ASN1OctetString(contentBytes: $0[...])) })
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now - 300, notValidAfter: notAfter,
            issuer: root.subject,
            subject: try DistinguishedName { OrganizationName("Outpost"); CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions,
            issuerPrivateKey: Certificate.PrivateKey(rootKey))
        return Issued(
            spiffeID: spiffeID, certificatePEM: try certificate.serializeAsPEM().pemString + "\n",
            privateKeyPEM: key.pemRepresentation + "\n", notAfter: notAfter)
    }

    private static func makeRoot(key: P256.Signing.PrivateKey, trustDomain: String) throws -> Certificate {
        let now = Date()
        let name = try DistinguishedName { OrganizationName("Outpost"); CommonName("Outpost root CA \(trustDomain)") }
        let publicKey = Certificate.PublicKey(key.publicKey)
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
            Critical(KeyUsage(keyCertSign: true, cRLSign: true))
            SubjectKeyIdentifier(hash: publicKey)
            SubjectAlternativeNames([.uniformResourceIdentifier("spiffe://\(trustDomain)")])
        }
        return try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
            notValidBefore: now - 300, notValidAfter: now + rootLifetime, issuer: name, subject: name,
            signatureAlgorithm: .ecdsaWithSHA256, extensions: extensions, issuerPrivateKey: Certificate.PrivateKey(key))
    }

    /// Whether `key` is the private key of `certificate`.
    private static func matches(_ certificate: Certificate, _ key: P256.Signing.PrivateKey) -> Bool {
        certificate.publicKey == Certificate.PublicKey(key.publicKey)
    }

    /// The 4 or 16 bytes of an IP address, for an IP SAN.
    private static func addressBytes(_ text: String) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 16)
        if bytes.withUnsafeMutableBytes({ inet_pton(AF_INET6, text, $0.baseAddress) }) == 1 { return bytes }
        bytes = [UInt8](repeating: 0, count: 4)
        return bytes.withUnsafeMutableBytes({ inet_pton(AF_INET, text, $0.baseAddress) }) == 1 ? bytes : nil
    }

    /// The trust domain named in a root's `spiffe://<trust-domain>` SAN.
    private static func rootTrustDomain(_ root: Certificate) -> String? {
        guard let names = try? root.extensions.subjectAlternativeNames else { return nil }
        for case .uniformResourceIdentifier(let uri) in names where uri.hasPrefix("spiffe://") {
            return String(uri.dropFirst("spiffe://".count))
        }
        return nil
    }

    /// Writes a file atomically with `mode` (the temporary file has it from the start).
    static func writeFile(_ path: String, _ contents: String, mode: mode_t) throws {
        let temporary = "\(path).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw DaemonError("cannot write \(path): \(String(cString: strerror(errno)))") }
        let bytes = Array(contents.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == bytes.count, synced, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw DaemonError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }
}
