import Crypto
import Foundation
import Glibc
import SwiftASN1
import X509

/// The daemon's built-in certificate authority: an ECDSA P-256 root created on first start in
/// `<data-dir>/ca` (key file mode 0600), which issues X.509 SVIDs for SPIFFE identities
/// `spiffe://<trust-domain>/ns/<namespace>/sa/<name>`.
final class CertificateAuthority: Sendable {
    /// The trust domain of every identity this CA issues.
    let trustDomain: String
    /// The root certificate.
    let root: Certificate
    private let rootKey: P256.Signing.PrivateKey
    /// The roots peers must trust, PEM (the current root; during a rotation, the old one too).
    let trustBundlePEM: String

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

    /// Loads the CA from `directory`, or creates it there.
    init(directory: String, trustDomain: String) throws {
        self.trustDomain = trustDomain
        let keyPath = "\(directory)/root-key.pem"
        let certificatePath = "\(directory)/root.pem"
        let manager = FileManager.default
        if manager.fileExists(atPath: keyPath), manager.fileExists(atPath: certificatePath) {
            rootKey = try P256.Signing.PrivateKey(pemRepresentation: try String(contentsOfFile: keyPath, encoding: .utf8))
            root = try Certificate(pemEncoded: try String(contentsOfFile: certificatePath, encoding: .utf8))
            guard Self.rootTrustDomain(root) == trustDomain else {
                throw DaemonError("the CA in \(directory) is for trust domain \(Self.rootTrustDomain(root) ?? "?"), not \(trustDomain); keep --trust-domain as it was or move the ca folder away to create a new CA")
            }
        } else {
            try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            rootKey = P256.Signing.PrivateKey()
            root = try Self.makeRoot(key: rootKey, trustDomain: trustDomain)
            try Self.writeFile(keyPath, rootKey.pemRepresentation, mode: 0o600)
            try Self.writeFile(certificatePath, try root.serializeAsPEM().pemString, mode: 0o644)
        }
        trustBundlePEM = try root.serializeAsPEM().pemString + "\n"
    }

    /// The SPIFFE ID of a workload or caller.
    func spiffeID(namespace: String, name: String) -> String {
        "spiffe://\(trustDomain)/ns/\(namespace)/sa/\(name)"
    }

    /// Issues a certificate for `spiffeID`, usable as a TLS client and server certificate; DNS
    /// names go into the SAN too (for server certificates).
    func issue(spiffeID: String, commonName: String, dnsNames: [String] = [], lifetime: TimeInterval = CertificateAuthority.defaultLifetime) throws -> Issued {
        let key = P256.Signing.PrivateKey()
        let now = Date()
        let notAfter = now + lifetime
        let publicKey = Certificate.PublicKey(key.publicKey)
        let rootKeyIdentifier = try root.extensions.subjectKeyIdentifier?.keyIdentifier
        let extensions = try Certificate.Extensions {
            Critical(BasicConstraints.notCertificateAuthority)
            Critical(KeyUsage(digitalSignature: true))
            try ExtendedKeyUsage([.serverAuth, .clientAuth])
            SubjectKeyIdentifier(hash: publicKey)
            AuthorityKeyIdentifier(keyIdentifier: rootKeyIdentifier)
            SubjectAlternativeNames([GeneralName.uniformResourceIdentifier(spiffeID)] + dnsNames.map { GeneralName.dnsName($0) })
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
