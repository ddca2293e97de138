import Eventing
import Foundation
import Glibc
import Gateway
import Hummingbird
import HummingbirdTLS
import Inference
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import UnixSignals
import Serving
import Store
import Synchronization

/// The running daemon's parts, for the caller to run and observe.
struct Platform {
    var group: ServiceGroup
    var manager: RevisionManager
    var gateway: Gateway
    var token: String
    var tokenCreated: Bool
    /// Writes the gateway's access log; stopped (and flushed) after the group has run.
    var accessLog: AccessLogWriter?
}

/// The one composition root: opens the store, builds each module, connects them, and returns
/// them as one `ServiceGroup`. On SIGTERM/SIGINT the group stops the services in reverse order:
/// the admin API, then the gateway (which drains in-flight requests), then the revision manager
/// (which stops the workers); the store closes when the group has finished.
func buildPlatform(_ configuration: DaemonConfiguration, logger: Logger) throws -> Platform {
    let dataDirectory = configuration.dataDirectory
    try dataDirectory.create()
    _ = try dataDirectory.lock()
    let store = try Store(path: dataDirectory.databasePath)
    let (token, tokenCreated) = try dataDirectory.adminToken()
    try AdminTokens.register(bootstrap: token, in: store)
    let authority = try CertificateAuthority(directory: dataDirectory.caDirectory, trustDomain: configuration.trustDomain)
    let eventLoopGroup = MultiThreadedEventLoopGroup.singleton

    let relay = RouteRelay()
    let metrics = PlatformMetrics()
    let identities = try WorkloadIdentities(
        authority: authority, securityDirectory: dataDirectory.securityDirectory, lifetime: configuration.workloadCertificateTTL,
        store: store, logger: logger.with(label: "security"))
    var servingConfiguration = configuration.servingConfiguration
    servingConfiguration.workloadEnvironment = { identities.environment(namespace: $0, service: $1) }
    let manager = RevisionManager(
        store: store, configuration: servingConfiguration, domain: configuration.domain,
        logger: logger.with(label: "serving"), metrics: metrics, publish: { relay.publish($0) })
    logBLAS(logger)  // after the manager, which sets OpenBLAS's thread count
    let eventing = EventingSystem(
        store: store,
        configuration: EventingConfiguration(
            domain: configuration.domain, gatewayURL: configuration.loopbackGatewayURL, publicPort: configuration.gatewayPort,
            maxEventBytes: configuration.maxEventBytes, retention: configuration.eventRetention),
        logger: logger.with(label: "eventing"))
    let accessLog = try configuration.accessLogPath.map { try AccessLogWriter(path: $0, logger: logger.with(label: "gateway")) }
    var gatewayConfiguration = GatewayConfiguration(
        host: configuration.gatewayHost, port: configuration.gatewayPort, tlsAddress: configuration.tlsAddress,
        drainTimeout: configuration.drainTimeout, webSocketIdleTimeout: configuration.webSocketIdleTimeout,
        accessLog: accessLog?.sink)
    gatewayConfiguration.mounts = [eventing.ingressMount]
    let gateway = Gateway(
        configuration: gatewayConfiguration, resolver: manager, eventLoopGroup: eventLoopGroup, logger: logger.with(label: "gateway"))
    relay.attach(gateway)
    let gatewayCertificates = try GatewayCertificates(
        authority: authority, gateway: gateway, domain: configuration.domain,
        securityDirectory: dataDirectory.securityDirectory, lifetime: configuration.workloadCertificateTTL,
        logger: logger.with(label: "security"), store: store)
    let adminTLS = configuration.adminTLS
        ? try AdminTLS(authority: authority, host: configuration.adminHost, lifetime: configuration.workloadCertificateTTL, logger: logger.with(label: "security"))
        : nil
    authority.onRootsChange {
        gatewayCertificates.reinstall()
        identities.renewAll()
        adminTLS?.renew()
    }
    let securityPolicies = try SecurityPolicies(
        gateway: gateway, store: store, securityDirectory: dataDirectory.securityDirectory, logger: logger.with(label: "security"))

    let ready = Atomic<Bool>(false)
    let gatewayPort = configuration.gatewayPort
    let router = buildAdminRouter(AdminDependencies(
        store: store, logDirectory: dataDirectory.logDirectory, modelDirectory: dataDirectory.modelDirectory,
        authority: authority, gatewayCertificates: gatewayCertificates, securityPolicies: securityPolicies,
        serviceURL: { configuration.serviceURL(namespace: $0, name: $1, port: gatewayPort) },
        isReady: { ready.load(ordering: .relaxed) },
        metrics: {
            // Serving's metrics, then the gateway's Istio-named request metrics.
            var text = metrics.render(scales: manager.scaleSnapshots())
            if let last = text.last, last != UInt8(ascii: "\n") { text.append(UInt8(ascii: "\n")) }
            text += Array(await gateway.metricsSnapshot().prometheusText().utf8)
            text += Array(eventing.prometheusText().utf8)
            return text
        },
        eventing: eventing))
    let admin = Application(
        router: router,
        server: try adminTLS.map { try .tls(.http1(), configuration: try $0.channelConfiguration()) } ?? .http1(),
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.adminHost, port: configuration.adminPort), serverName: "outpost"),
        onServerRunning: { channel in
            ready.store(true, ordering: .relaxed)
            logger.info("admin API listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")"])
        },
        eventLoopGroupProvider: .shared(eventLoopGroup),
        logger: logger.with(label: "admin"))

    var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let adminTLS { services.append(.init(service: adminTLS)) }
    // Services stop in reverse order: eventing before the gateway, since deliveries to services
    // go through the gateway; with the gateway gone first, every due delivery would spend an
    // attempt on a refused connection, and those on their last one would be dropped.
    let group = ServiceGroup(configuration: ServiceGroupConfiguration(
        services: services + [
            .init(service: manager),
            .init(service: gatewayCertificates),
            .init(service: securityPolicies),
            .init(service: identities),
            .init(service: gateway),
            .init(service: eventing),
            .init(service: admin),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger.with(label: "lifecycle")))
    return Platform(group: group, manager: manager, gateway: gateway, token: token, tokenCreated: tokenCreated, accessLog: accessLog)
}

/// Says which OpenBLAS kernels models will run on, and warns when OpenBLAS still runs old generic
/// kernels on a CPU with AVX2 or AVX-512 (see ``restartWithSupportedOpenBLASKernels()``).
private func logBLAS(_ logger: Logger) {
    let core = BLASRuntime.coreName
    logger.info("inference engine ready", metadata: ["openblas-core": "\(core)", "openblas-threads": "\(BLASRuntime.threadCount)"])
    if OpenBLASKernels.isGeneric(core), let suggestion = OpenBLASKernels.supportedCoreType() {
        logger.warning("OpenBLAS did not recognise this CPU and runs \(core) kernels; start the daemon with OPENBLAS_CORETYPE=\(suggestion) for several times faster models")
    }
}

/// OpenBLAS's choice of kernels. Debian's OpenBLAS 0.3.21 does not know CPUs newer than itself
/// and falls back to generic Prescott kernels, several times slower than the AVX2/AVX-512 ones
/// the CPU runs; `OPENBLAS_CORETYPE` overrides the detection, but only when the library loads.
enum OpenBLASKernels {
    static func isGeneric(_ core: String) -> Bool {
        ["Prescott", "Katmai", "Coppermine", "Northwood", "Banias", "Core2", "Penryn", "Dunnington", "Atom"].contains(core)
    }

    /// The kernel family the CPU supports by its flags, or nil when it has neither AVX-512 nor AVX2.
    static func supportedCoreType() -> String? {
        guard let flags = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        return flags.contains(" avx512f") ? "SkylakeX" : (flags.contains(" avx2") ? "Haswell" : nil)
    }

    /// When OpenBLAS picked generic kernels on a CPU that supports better ones and
    /// `OPENBLAS_CORETYPE` is not set, runs this same command again (same pid, same open files)
    /// with it set. Returns only when nothing needs to change or the exec failed.
    static func restartWithSupportedKernels() {
        guard ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] == nil, isGeneric(BLASRuntime.coreName),
              let coreType = supportedCoreType() else { return }
        setenv("OPENBLAS_CORETYPE", coreType, 1)
        var arguments = CommandLine.arguments.map { strdup($0) }
        arguments.append(nil)
        execv("/proc/self/exe", &arguments)
        // The exec failed: go on with the generic kernels (logBLAS warns).
        unsetenv("OPENBLAS_CORETYPE")
        for argument in arguments { free(argument) }
    }
}

/// Hands route tables from the revision manager to the gateway, which is built after it.
final class RouteRelay: Sendable {
    private let gateway = Mutex<Gateway?>(nil)
    func attach(_ gateway: Gateway) { self.gateway.withLock { $0 = gateway } }
    func publish(_ table: RouteTable) { gateway.withLock { $0 }?.publish(table) }
}

extension Logger {
    /// The same handler and level under another label.
    func with(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}
