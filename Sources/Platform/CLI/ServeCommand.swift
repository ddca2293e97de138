import ArgumentParser
import Dispatch
import Foundation
import Glibc
import Logging
import ServiceLifecycle
import Serving

/// `outpost serve`: runs the daemon in the foreground until SIGTERM or SIGINT.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "serve", abstract: "Run the Outpost daemon.")

    @Option(help: "State folder (default: $OUTPOST_DATA_DIR, else /var/lib/outpost as root or ~/.local/share/outpost).")
    var dataDir: String?

    @Option(help: "Where the gateway listens for service traffic.")
    var gatewayAddress = "0.0.0.0:8080"

    @Option(help: "Where the gateway's TLS listener (HTTPS, mutual TLS) listens; \"off\" runs none.")
    var tlsAddress = "0.0.0.0:8443"

    @Option(help: "Where the admin API listens.")
    var adminAddress = "127.0.0.1:8090"

    @Option(help: "Domain suffix of service hosts: <service>.<namespace>.<domain>.")
    var domain = "localhost"

    @Option(help: "SPIFFE trust domain of workload identities: spiffe://<trust-domain>/ns/<namespace>/sa/<name>.")
    var trustDomain = "outpost.local"

    @Option(help: "Extra idle time after the stable window before a revision scales to zero (e.g. 30s, 500ms).")
    var scaleToZeroGracePeriod = "30s"

    @Option(help: "Stable window for revisions without an autoscaling.knative.dev/window annotation.")
    var stableWindow = "60s"

    @Option(help: "Time between SIGTERM and SIGKILL when a worker stops.")
    var terminationGracePeriod = "10s"

    @Option(help: "How long a new worker may take to pass its readiness probe.")
    var progressDeadline = "60s"

    @Option(name: .customLong("autoscaler"), help: ArgumentHelp(
        "A daemon-wide autoscaler setting KEY=VALUE with Knative's config-autoscaler keys (repeatable).",
        discussion: "Keys: container-concurrency-target-default, container-concurrency-target-percentage, requests-per-second-target-default, target-burst-capacity, stable-window, panic-window-percentage, panic-threshold-percentage, max-scale-up-rate, max-scale-down-rate, scale-to-zero-grace-period, scale-to-zero-pod-retention-period, scale-down-delay, initial-scale, min-scale, max-scale, enable-scale-to-zero."))
    var autoscalerSettings: [String] = []

    @Option(help: "Write a JSON access-log line per request to this file (- for standard error).")
    var accessLog: String?

    @Option(help: "Largest request the broker ingress accepts, in bytes (one event or a batch; at least 65536).")
    var maxEventSize = 256 << 10

    @Option(help: "How long events whose deliveries have all ended stay in the event log (e.g. 24h, 30m).")
    var eventRetention = "24h"

    @Flag(help: "Serve the admin API over HTTPS (a certificate from the built-in CA); callers may then authenticate with a client certificate of namespace outpost-system instead of a token. Required for a non-loopback --admin-address.")
    var adminTls = false

    @Option(help: "Lifetime of workload certificates (SVIDs) and the gateway's certificate, renewed at about half of it (e.g. 24h, 1h).")
    var workloadCertificateTtl = "24h"

    @Option(name: .customLong("websocket-idle-timeout"), help: "Close a WebSocket through the gateway after this long without a byte either way (e.g. 1h, 30s).")
    var webSocketIdleTimeout = "1h"

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel = "info"

    func validate() throws {
        for (name, value) in [
            ("--termination-grace-period", terminationGracePeriod), ("--progress-deadline", progressDeadline),
            ("--websocket-idle-timeout", webSocketIdleTimeout),
        ] where DurationText.parse(value) == nil || DurationText.parse(value)! <= .zero {
            throw ValidationError("\(name) must be a positive duration such as 500ms, 30s or 1m30s, got \"\(value)\"")
        }
        _ = try autoscalerDefaults()
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
    }

    /// Knative's defaults, then `--stable-window` and `--scale-to-zero-grace-period`, then each
    /// `--autoscaler KEY=VALUE` in order.
    func autoscalerDefaults() throws -> AutoscalerDefaults {
        var defaults = AutoscalerDefaults()
        let settings = ["stable-window=\(stableWindow)", "scale-to-zero-grace-period=\(scaleToZeroGracePeriod)"] + autoscalerSettings
        for setting in settings {
            guard let equals = setting.firstIndex(of: "=") else {
                throw ValidationError("--autoscaler takes KEY=VALUE, got \"\(setting)\"")
            }
            do {
                try defaults.set(String(setting[..<equals]), to: String(setting[setting.index(after: equals)...]))
            } catch {
                throw ValidationError("--autoscaler: \(error.message)")
            }
        }
        if let problem = defaults.problem { throw ValidationError("--autoscaler: \(problem.message)") }
        return defaults
    }

    func run() async throws {
        OpenBLASKernels.restartWithSupportedKernels()
        signal(SIGPIPE, SIG_IGN)
        let level = Logger.Level(rawValue: logLevel)!
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "outpost")
        logger.logLevel = level

        let gateway = try parseAddress(gatewayAddress, option: "--gateway-address")
        let admin = try parseAddress(adminAddress, option: "--admin-address")
        var configuration = DaemonConfiguration(dataDirectory: DataDirectory.resolve(dataDir))
        (configuration.gatewayHost, configuration.gatewayPort) = gateway
        (configuration.adminHost, configuration.adminPort) = admin
        configuration.adminTLS = adminTls
        let loopback = admin.host == "localhost" || admin.host == "::1" || admin.host.hasPrefix("127.")
        guard loopback || adminTls else {
            throw ValidationError("--admin-address \(adminAddress) is not a loopback address: the admin API then needs --admin-tls (HTTPS, with client certificates or tokens)")
        }
        configuration.tlsAddress = tlsAddress == "off" ? nil : try parseAddress(tlsAddress, option: "--tls-address")
        configuration.domain = domain.lowercased()
        guard Names.dns1035Problem(trustDomain.replacingOccurrences(of: ".", with: "-"), maxLength: 253) == nil else {
            throw ValidationError("--trust-domain must be a DNS name such as outpost.local, got \"\(trustDomain)\"")
        }
        configuration.trustDomain = trustDomain.lowercased()
        configuration.autoscaler = try autoscalerDefaults()
        configuration.terminationGracePeriod = DurationText.parse(terminationGracePeriod)!
        configuration.progressDeadline = DurationText.parse(progressDeadline)!
        configuration.webSocketIdleTimeout = DurationText.parse(webSocketIdleTimeout)!
        configuration.logLevel = logLevel
        guard maxEventSize >= 64 << 10, maxEventSize <= 64 << 20 else {
            throw ValidationError("--max-event-size must be between 65536 (the CloudEvents minimum) and 67108864 bytes")
        }
        configuration.maxEventBytes = maxEventSize
        guard let retention = DurationText.parse(eventRetention), retention >= .seconds(60) else {
            throw ValidationError("--event-retention must be a duration of at least 1m (e.g. 24h), got \"\(eventRetention)\"")
        }
        configuration.eventRetention = retention
        guard let ttl = DurationText.parse(workloadCertificateTtl), ttl >= .seconds(10), ttl <= .seconds(Int64(CertificateAuthority.maxLifetime)) else {
            throw ValidationError("--workload-certificate-ttl must be a duration from 10s to 2160h (e.g. 24h), got \"\(workloadCertificateTtl)\"")
        }
        configuration.workloadCertificateTTL = TimeInterval(ttl.components.seconds)
        configuration.accessLogPath = accessLog.map { $0 == "-" || $0.hasPrefix("/") ? $0 : FileManager.default.currentDirectoryPath + "/" + $0 }

        let platform = try buildPlatform(configuration, logger: logger)
        logger.info("starting", metadata: [
            "dataDir": "\(configuration.dataDirectory.path)", "gateway": "\(gatewayAddress)",
            "admin": "\(adminAddress)", "domain": "\(configuration.domain)",
        ])
        logger.notice(
            platform.tokenCreated ? "admin token created" : "admin token loaded",
            metadata: ["path": "\(configuration.dataDirectory.tokenPath)"])
        await platform.manager.prime()
        defer { platform.accessLog?.stop() }
        // SIGHUP reopens the access log (logrotate's postrotate); it no longer ends the daemon.
        signal(SIGHUP, SIG_IGN)
        let hangup = DispatchSource.makeSignalSource(signal: SIGHUP)
        hangup.setEventHandler { [accessLog = platform.accessLog] in accessLog?.reopen() }
        hangup.resume()
        defer { hangup.cancel() }
        try await platform.group.run()
        logger.info("stopped")
    }
}
