import Foundation
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle
import SwiftASN1
import Synchronization
import X509

/// The HTTPS admin listener's TLS (`outpost serve --admin-tls`): a server certificate from the
/// built-in CA for `localhost`, the loopback addresses and the admin host, renewed at about
/// half its lifetime and handed to each new handshake (open connections keep theirs), and
/// optional client certificates verified against the CA's trust bundle (with
/// ``channelConfiguration()``, the bundle of the moment, so root rotations apply without a
/// restart; with ``configuration()`` alone, the bundle at start). Callers with
/// a certificate of the platform's namespace need no token (see ``AdminAccessMiddleware``).
final class AdminTLS: Service, Sendable {
    private let authority: CertificateAuthority
    private let names: [String]
    private let addresses: [String]
    private let lifetime: TimeInterval
    private let logger: Logger
    private let current: Mutex<NIOSSLContextConfigurationOverride>

    init(authority: CertificateAuthority, host: String, lifetime: TimeInterval, logger: Logger) throws {
        self.authority = authority
        let isAddress = host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
        names = ["localhost"] + (isAddress || host == "localhost" ? [] : [host])
        addresses = Array(Set(["127.0.0.1", "::1"] + (isAddress && host != "0.0.0.0" && host != "::" ? [host] : []))).sorted()
        self.lifetime = lifetime
        self.logger = logger
        current = Mutex(try Self.issue(authority, names: names, addresses: addresses, lifetime: lifetime))
    }

    /// The listener's TLS configuration; the certificate comes from the latest renewal.
    func configuration() throws -> TLSConfiguration {
        let issued = current.withLock { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: issued.certificateChain ?? [], privateKey: issued.privateKey!)
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(authority.trustBundlePEM.utf8)))
        configuration.certificateVerification = .optionalVerification
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        configuration.sslContextCallback = { [self] _, promise in promise.succeed(current.withLock { $0 }) }
        return configuration
    }

    /// The listener's TLS configuration with client certificates verified at each handshake
    /// against the CA's trust bundle of the moment, so that after a root rotation step new
    /// roots are accepted and a retired one is not.
    func channelConfiguration() throws -> TLSChannelConfiguration {
        TLSChannelConfiguration(tlsConfiguration: try configuration(), customAsyncVerificationCallback: { [self] chain in
            await verify(derChain: try chain.map { try $0.toDERBytes() }) ? .certificateVerified : .failed
        })
    }

    /// Whether a client's chain (DER, leaf first) leads to a root of the CA's current bundle.
    func verify(derChain: [[UInt8]]) async -> Bool {
        guard let certificates = try? derChain.map({ try Certificate(derEncoded: $0) }), let leaf = certificates.first else { return false }
        var verifier = Verifier(rootCertificates: CertificateStore(authority.trustedRoots)) { RFC5280Policy() }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore(certificates.dropFirst())) {
            return true
        }
        return false
    }

    /// Renews the certificate at half-life (±10 %) until shutdown.
    func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(lifetime / 2 * Double.random(in: 0.9...1.1)))
                renew()
            }
        }
    }

    /// Issues a certificate now (after a root rotation step).
    func renew() {
        do {
            let override = try Self.issue(authority, names: names, addresses: addresses, lifetime: lifetime)
            current.withLock { $0 = override }
        } catch {
            logger.error("admin certificate renewal failed", metadata: ["error": "\(error)"])
        }
    }

    private static func issue(_ authority: CertificateAuthority, names: [String], addresses: [String], lifetime: TimeInterval) throws -> NIOSSLContextConfigurationOverride {
        let issued = try authority.issue(
            spiffeID: authority.spiffeID(namespace: "outpost-system", name: "admin-api"), commonName: "outpost admin API",
            dnsNames: names, ipAddresses: addresses, lifetime: lifetime)
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(issued.certificatePEM.utf8)).map { .certificate($0) }
        override.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(issued.privateKeyPEM.utf8), format: .pem))
        return override
    }
}
