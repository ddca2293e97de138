public import NIOSSL
import NIOCore
import Synchronization

/// Istio's PeerAuthentication modes, applied to the gateway's listeners.
public enum PeerAuthenticationMode: String, Sendable, CaseIterable {
    /// Only mutual TLS: the TLS listener requires a client certificate from a trusted root and
    /// the plaintext listener refuses requests.
    case strict = "STRICT"
    /// Plaintext, TLS, or mutual TLS: a client certificate is verified when one is presented.
    case permissive = "PERMISSIVE"
    /// No client certificates: plaintext, or TLS with server authentication only.
    case disable = "DISABLE"
}

/// What the TLS listener serves with: its certificate chain and key (PEM) and the roots that
/// client certificates must chain to (PEM bundle).
public struct GatewayTLSMaterial: Sendable {
    /// Leaf first, then intermediates.
    public var certificateChainPEM: String
    /// The leaf's private key.
    public var privateKeyPEM: String
    /// Trusted roots for client certificates (during a root rotation, old and new).
    public var trustRootsPEM: String
    /// The gateway's own identity, for `By=` in `X-Forwarded-Client-Cert`.
    public var identity: String

    /// Creates the material.
    public init(certificateChainPEM: String, privateKeyPEM: String, trustRootsPEM: String, identity: String) {
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
        self.trustRootsPEM = trustRootsPEM
        self.identity = identity
    }
}

/// The TLS state new connections are set up with. Replacing it (new certificate, rotated roots,
/// another mode) affects only connections accepted afterwards; open ones keep theirs.
final class TLSState: Sendable {
    struct Current {
        var context: NIOSSLContext?
        var mode: PeerAuthenticationMode
        var identity: String
    }

    private let state = Mutex(Current(context: nil, mode: .permissive, identity: ""))

    var current: Current { state.withLock { $0 } }

    /// Builds a server context for `material` and `mode`; throws on unusable PEM.
    func update(material: GatewayTLSMaterial, mode: PeerAuthenticationMode) throws {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(material.certificateChainPEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: Array(material.privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(material.trustRootsPEM.utf8)))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        switch mode {
        case .strict: configuration.certificateVerification = .noHostnameVerification
        case .permissive: configuration.certificateVerification = .optionalVerification
        case .disable: configuration.certificateVerification = .none
        }
        let context = try NIOSSLContext(configuration: configuration)
        state.withLock { $0 = Current(context: context, mode: mode, identity: material.identity) }
    }

    /// The peer-authentication mode in force.
    var mode: PeerAuthenticationMode { state.withLock { $0.mode } }
}

/// What the gateway knows about the client of a connection.
struct PeerInfo {
    /// The connection came over TLS.
    var secure: Bool
    /// The SPIFFE ID (URI SAN) of a verified client certificate.
    var identity: String?
    /// The `By=` value of `X-Forwarded-Client-Cert`.
    var gatewayIdentity: String

    static let plaintext = PeerInfo(secure: false, identity: nil, gatewayIdentity: "")

    /// The client's verified identity from the connection's TLS handler, if any.
    static func from(_ handler: NIOSSLServerHandler, gatewayIdentity: String) -> PeerInfo {
        var identity: String?
        if let certificate = handler.peerCertificate {
            for name in certificate._subjectAlternativeNames() where name.nameType == .uri {
                let uri = name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
                if uri.hasPrefix("spiffe://") { identity = uri; break }
            }
        }
        return PeerInfo(secure: true, identity: identity, gatewayIdentity: gatewayIdentity)
    }

    /// Envoy's `X-Forwarded-Client-Cert` element for the verified client.
    var forwardedClientCert: String? {
        identity.map { "By=\(gatewayIdentity);URI=\($0)" }
    }
}
