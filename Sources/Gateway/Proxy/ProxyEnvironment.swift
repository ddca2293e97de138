import Logging
import NIOCore

/// What every proxy handler of one gateway shares. Immutable and thread-safe.
final class ProxyEnvironment: Sendable {
    /// Leases workers.
    let resolver: any UpstreamResolver
    /// The published route table.
    let routes: RouteTableStore
    /// Rolls for weighted target picks.
    let roll: TrafficRoll
    /// The request-head limit, for the 431 message.
    let maxHeaderBytes: Int
    /// Most header fields in a request head.
    let maxHeaderCount: Int
    /// Where connection-level problems are logged.
    let logger: Logger
    /// Receives access-log lines; `nil` when the access log is off.
    let accessLog: (@Sendable (String) -> Void)?
    /// TLS state of new connections.
    let tls: TLSState
    /// Peer-authentication modes and authorization policies.
    let security = SnapshotStore<SecurityTable>(initial: .permissive)
    /// Hosts answered in process, keyed by lowercased host name.
    let mounts: [String: GatewayMount]
    /// The mount that also answers IP-address and `localhost` hosts.
    let addressMount: GatewayMount?
    /// How long a WebSocket tunnel may carry no byte before it is closed.
    let webSocketIdleTimeout: Duration

    init(
        resolver: any UpstreamResolver, routes: RouteTableStore, roll: TrafficRoll, maxHeaderBytes: Int, maxHeaderCount: Int = 100, logger: Logger,
        accessLog: (@Sendable (String) -> Void)? = nil, tls: TLSState = TLSState(), mounts: [GatewayMount] = [],
        webSocketIdleTimeout: Duration = .seconds(3600)
    ) {
        self.webSocketIdleTimeout = webSocketIdleTimeout
        self.mounts = Dictionary(mounts.map { (RouteTable.normalize(host: $0.host), $0) }, uniquingKeysWith: { _, last in last })
        self.addressMount = mounts.last { $0.answersAddressHosts }
        self.accessLog = accessLog
        self.tls = tls
        self.resolver = resolver
        self.routes = routes
        self.roll = roll
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.logger = logger
    }
}

/// What the proxy handlers on one event loop share: the worker connection pool, the route
/// table cache, the request metrics and the id generator. Used only on that loop, so it needs
/// no lock.
final class LoopContext {
    /// Keep-alive worker connections of this loop.
    let pool: UpstreamConnectionPool
    /// This loop's view of the route table.
    let routes: RouteTableCache
    /// This loop's view of the security table.
    let security: SnapshotCache<SecurityTable>
    /// Request metrics of this loop (collected by ``Gateway/metricsSnapshot()``).
    let metrics = RequestMetricsTable()
    /// Generates request, trace and span ids.
    var random = TelemetryRandom()

    init(pool: UpstreamConnectionPool, routes: RouteTableCache, security: SnapshotCache<SecurityTable>) {
        self.pool = pool
        self.routes = routes
        self.security = security
    }
}
