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

/// A certificate for the TLS listener that a client selects by SNI (`outpost cert import`).
public struct GatewayServerCertificate: Sendable {
    /// The host names it answers: exact (`api.example.com`) or one-label wildcards
    /// (`*.example.com`).
    public var hosts: [String]
    /// Leaf first, then intermediates (PEM).
    public var certificateChainPEM: String
    /// The leaf's private key (PEM).
    public var privateKeyPEM: String

    /// Creates the certificate.
    public init(hosts: [String], certificateChainPEM: String, privateKeyPEM: String) {
        self.hosts = hosts
        self.certificateChainPEM = certificateChainPEM
        self.privateKeyPEM = privateKeyPEM
    }
}

/// The TLS state new connections are set up with. Replacing any part of it (new certificate,
/// rotated roots, another handshake mode, imported certificates) affects only connections
/// accepted afterwards; open ones keep theirs.
final class TLSState: Sendable {
    struct Current {
        var context: NIOSSLContext?
        var identity: String
    }

    private struct Inputs {
        var material: GatewayTLSMaterial?
        var handshakeMode = PeerAuthenticationMode.permissive
        var certificates: [GatewayServerCertificate] = []
    }

    private let state = Mutex((current: Current(context: nil, identity: ""), inputs: Inputs()))

    var current: Current { state.withLock { $0.current } }

    /// Sets the default certificate and trusted roots; throws on unusable PEM.
    func update(material: GatewayTLSMaterial) throws {
        try rebuild { $0.material = material }
    }

    /// Sets what the handshake asks of clients (see ``SecurityTable/handshakeMode``).
    func update(handshakeMode: PeerAuthenticationMode) throws {
        // Every policy publish passes the mode; most leave it as it was.
        if state.withLock({ $0.inputs.handshakeMode == handshakeMode }) { return }
        try rebuild { $0.handshakeMode = handshakeMode }
    }

    /// Sets the certificates selected by SNI; throws on unusable PEM.
    func update(certificates: [GatewayServerCertificate]) throws {
        try rebuild { $0.certificates = certificates }
    }

    /// Applies `change` and builds the context for the result; on an error nothing changes.
    private func rebuild(_ change: (inout Inputs) -> Void) throws {
        try state.withLock { state in
            var inputs = state.inputs
            change(&inputs)
            if let material = inputs.material {
                state.current = Current(context: try Self.makeContext(inputs, material: material), identity: material.identity)
            }
            state.inputs = inputs
        }
    }

    private static func makeContext(_ inputs: Inputs, material: GatewayTLSMaterial) throws -> NIOSSLContext {
        let chain = try NIOSSLCertificate.fromPEMBytes(Array(material.certificateChainPEM.utf8)).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(bytes: Array(material.privateKeyPEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(material.trustRootsPEM.utf8)))
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.minimumTLSVersion = .tlsv12
        switch inputs.handshakeMode {
        case .strict: configuration.certificateVerification = .noHostnameVerification
        case .permissive: configuration.certificateVerification = .optionalVerification
        case .disable: configuration.certificateVerification = .none
        }
        if !inputs.certificates.isEmpty {
            let selector = try ServerNameSelector(inputs.certificates)
            configuration.sslContextCallback = { values, promise in
                promise.succeed(selector.override(for: values.serverHostname))
            }
        }
        return try NIOSSLContext(configuration: configuration)
    }
}

/// Picks an imported certificate by the client's SNI name: an exact host first, then a
/// wildcard for the name's parent; no match keeps the default certificate.
struct ServerNameSelector: Sendable {
    private let exact: [String: NIOSSLContextConfigurationOverride]
    private let wildcard: [String: NIOSSLContextConfigurationOverride]

    init(_ certificates: [GatewayServerCertificate]) throws {
        var exact: [String: NIOSSLContextConfigurationOverride] = [:]
        var wildcard: [String: NIOSSLContextConfigurationOverride] = [:]
        for certificate in certificates {
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificateChainPEM.utf8)).map { .certificate($0) }
            override.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.privateKeyPEM.utf8), format: .pem))
            for host in certificate.hosts.map({ $0.lowercased() }) {
                if host.hasPrefix("*.") {
                    wildcard[String(host.dropFirst(2))] = override
                } else {
                    exact[host] = override
                }
            }
        }
        self.exact = exact
        self.wildcard = wildcard
    }

    func override(for serverName: String?) -> NIOSSLContextConfigurationOverride {
        guard let name = serverName?.lowercased() else { return .noChanges }
        if let match = exact[name] { return match }
        if let dot = name.firstIndex(of: "."), let match = wildcard[String(name[name.index(after: dot)...])] { return match }
        return .noChanges
    }
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
        PeerInfo(secure: true, identity: handler.peerCertificate?.spiffeID, gatewayIdentity: gatewayIdentity)
    }

    /// Envoy's `X-Forwarded-Client-Cert` element for the verified client.
    var forwardedClientCert: String? {
        identity.map { "By=\(gatewayIdentity);URI=\($0)" }
    }
}

extension NIOSSLCertificate {
    /// The certificate's SPIFFE ID: its first `spiffe://` URI SAN.
    public var spiffeID: String? {
        for name in _subjectAlternativeNames() where name.nameType == .uri {
            let uri = name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
            if uri.hasPrefix("spiffe://") { return uri }
        }
        return nil
    }
}
