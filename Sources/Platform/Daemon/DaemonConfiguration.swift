import Foundation
import Serving

/// Everything `outpost serve` is configured with.
struct DaemonConfiguration: Sendable {
    var dataDirectory: DataDirectory
    var gatewayHost: String = "0.0.0.0"
    var gatewayPort: Int = 8080
    /// The gateway's TLS listener; nil runs none.
    var tlsAddress: (host: String, port: Int)? = ("0.0.0.0", 8443)
    var adminHost: String = "127.0.0.1"
    var adminPort: Int = 8090
    var domain: String = "localhost"
    /// The SPIFFE trust domain of workload identities.
    var trustDomain: String = "outpost.local"
    var autoscaler = AutoscalerDefaults()
    var terminationGracePeriod: Duration = .seconds(10)
    var progressDeadline: Duration = .seconds(60)
    var drainTimeout: Duration = .seconds(30)
    /// A WebSocket tunnel through the gateway with no byte either way for this long is closed.
    var webSocketIdleTimeout: Duration = .seconds(3600)
    var logLevel: String = "info"
    /// Where the gateway writes one JSON line per request (`-` = standard error); nil = off.
    var accessLogPath: String?
    /// Largest request the broker ingress accepts (413 above).
    var maxEventBytes: Int = 256 << 10
    /// How long fully delivered events stay in the log.
    var eventRetention: Duration = .seconds(24 * 3600)
    /// Lifetime of workload certificates and the gateway's own certificate (Istio's 24 h).
    var workloadCertificateTTL: TimeInterval = CertificateAuthority.defaultLifetime
    /// The admin API speaks HTTPS and accepts client certificates of the platform's namespace.
    var adminTLS = false

    /// The gateway as the daemon itself reaches it (deliveries to services go through it).
    var loopbackGatewayURL: String {
        let host: String
        switch gatewayHost {
        case "0.0.0.0", "": host = "127.0.0.1"
        case "::", "[::]": host = "[::1]"
        default: host = gatewayHost.contains(":") && !gatewayHost.hasPrefix("[") ? "[\(gatewayHost)]" : gatewayHost
        }
        return "http://\(host):\(gatewayPort)"
    }

    var servingConfiguration: ServingConfiguration {
        ServingConfiguration(
            logDirectory: dataDirectory.logDirectory, autoscaler: autoscaler,
            terminationGracePeriod: terminationGracePeriod, progressDeadline: progressDeadline)
    }

    /// `http://<name>.<namespace>.<domain>[:port]`.
    func serviceURL(namespace: String, name: String, port: Int) -> String {
        "http://\(name).\(namespace).\(domain)" + (port == 80 ? "" : ":\(port)")
    }
}

/// Parses `HOST:PORT` (`[::1]:8080` for IPv6).
func parseAddress(_ text: String, option: String) throws -> (host: String, port: Int) {
    guard let colon = text.lastIndex(of: ":") else {
        throw DaemonError("\(option) must be HOST:PORT, got \"\(text)\"")
    }
    var host = String(text[..<colon])
    if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
    guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty else {
        throw DaemonError("\(option) must be HOST:PORT with a port from 0 to 65535, got \"\(text)\"")
    }
    return (host, port)
}
