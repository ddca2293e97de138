public import Logging
public import NIOCore
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import Synchronization

/// The data plane: an HTTP/1.1 and HTTP/2 listener (h2c with prior knowledge in plaintext, h2
/// by ALPN over TLS) that proxies each request, by its `Host` header, to a worker process on
/// 127.0.0.1 over HTTP/1.1; WebSocket upgrades become byte tunnels (``TunnelHandler``).
///
/// ## Design
///
/// Everything on the request path runs on the NIO event loop that accepted the connection.
/// A short pipeline (see `configureGatewayConnection`) decodes HTTP; ``ProxyHandler`` looks
/// the host up in an immutable ``RouteTable`` snapshot (swapped by ``publish(_:)``, cached per
/// loop so a lookup costs one atomic load), rolls a weighted target with a ``TrafficRoll`` and
/// asks the ``UpstreamResolver`` for a worker: first `tryAcquire` on the loop, and only when that
/// fails the async `acquire`, whose result hops back onto the loop.
///
/// Worker connections are keep-alive HTTP/1.1 connections kept in one pool per event loop, so
/// a downstream connection and its worker connection share a thread and need no locks. Bodies
/// stream part by part in both directions; each side stops reading while the other side cannot
/// take more. Each request is bounded by its target's `timeout` (504 before a response starts,
/// a closed connection after).
///
/// Graceful shutdown (ServiceLifecycle, or cancelling ``run()``) closes the listener, lets
/// in-flight requests finish (idle keep-alive connections close at once, busy ones after their
/// response; HTTP/2 connections get a GOAWAY and close after their open streams; WebSocket
/// tunnels close at once) for at most ``GatewayConfiguration/drainTimeout``, then closes what
/// is left.
///
/// Telemetry rides the same path: each request gets an `x-request-id` and a W3C `traceparent`
/// span, is counted in its loop's ``RequestMetricsTable`` (no lock; ``metricsSnapshot()``
/// collects the loops) and, when ``GatewayConfiguration/accessLog`` is set, logged as one JSON
/// line.
public final class Gateway: Service, Sendable {
    private let configuration: GatewayConfiguration
    private let eventLoopGroup: any EventLoopGroup
    private let logger: Logger
    let routes: RouteTableStore
    private let environment: ProxyEnvironment
    let loops: [ObjectIdentifier: (loop: any EventLoop, context: NIOLoopBoundBox<LoopContext>)]
    private let tracker = ConnectionTracker()
    private let tls = TLSState()
    private let lifecycle = Mutex(Lifecycle())

    /// Creates a gateway; nothing is bound until ``run()``. Routes start empty (every host 404)
    /// until the first ``publish(_:)``.
    public init(
        configuration: GatewayConfiguration,
        resolver: any UpstreamResolver,
        eventLoopGroup: any EventLoopGroup,
        logger: Logger,
        trafficRoll: TrafficRoll = .system
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        let routes = RouteTableStore(initial: .empty(domain: "localhost"))
        self.routes = routes
        let environment = ProxyEnvironment(
            resolver: resolver, routes: routes, roll: trafficRoll,
            maxHeaderBytes: configuration.maxHeaderBytes, maxHeaderCount: configuration.maxHeaderCount, logger: logger, accessLog: configuration.accessLog, tls: tls,
            mounts: configuration.mounts, webSocketIdleTimeout: configuration.webSocketIdleTimeout)
        self.environment = environment
        var loops: [ObjectIdentifier: (loop: any EventLoop, context: NIOLoopBoundBox<LoopContext>)] = [:]
        for loop in eventLoopGroup.makeIterator() {
            let context = Self.makeLoopContext(on: loop, configuration: configuration, routes: routes, security: environment.security)
            loops[ObjectIdentifier(loop)] = (loop, .makeBoxSendingValue(context, eventLoop: loop))
        }
        self.loops = loops
    }

    /// Sets the TLS listener's default certificate and the roots client certificates must
    /// chain to. Connections accepted afterwards use them; open connections keep what they
    /// started with, so certificates rotate without dropping anything. Throws on unusable PEM.
    public func configureTLS(material: GatewayTLSMaterial) throws {
        try tls.update(material: material)
    }

    /// Sets the certificates the TLS listener selects by SNI (the default certificate answers
    /// every other name). Applies to new connections; throws on unusable PEM.
    public func configureServerCertificates(_ certificates: [GatewayServerCertificate]) throws {
        try tls.update(certificates: certificates)
    }

    /// Replaces the peer-authentication modes and authorization policies; requests that start
    /// afterwards use them, and new TLS connections get the handshake they call for.
    public func publish(security table: SecurityTable) throws {
        try tls.update(handshakeMode: table.handshakeMode)
        environment.security.publish(table)
    }

    /// The security table in force.
    public var securityTable: SecurityTable { environment.security.current }

    /// The platform-wide peer-authentication mode in force.
    public var peerAuthentication: PeerAuthenticationMode { environment.security.current.platformMode }

    /// Replaces the route table; requests that start afterwards use the new one.
    public func publish(_ table: RouteTable) {
        routes.publish(table)
    }

    /// The route table currently published.
    public var routeTable: RouteTable {
        routes.current
    }

    /// Binds, serves until graceful shutdown or cancellation, then drains (see the type's
    /// documentation). Throws if binding fails; may be called once.
    public func run() async throws {
        try lifecycle.withLock { state in
            guard !state.started else { throw GatewayError.alreadyRunning }
            state.started = true
        }
        let server: any Channel
        var tlsServer: (any Channel)?
        do {
            server = try await makeBootstrap(tls: false).bind(host: configuration.host, port: configuration.port).get()
            if let address = configuration.tlsAddress {
                do {
                    tlsServer = try await makeBootstrap(tls: true).bind(host: address.host, port: address.port).get()
                } catch {
                    server.close(promise: nil)
                    throw error
                }
            }
        } catch {
            finish(with: .failure(error))
            throw error
        }
        let secureServer = tlsServer
        let port = server.localAddress?.port ?? configuration.port
        finish(with: .success(port))
        logger.info("gateway listening", metadata: ["host": "\(configuration.host)", "port": "\(port)"])
        if let tlsServer, let address = configuration.tlsAddress {
            logger.info("gateway TLS listening", metadata: ["host": "\(address.host)", "port": "\(tlsServer.localAddress?.port ?? address.port)"])
        }

        await withTaskCancellationOrGracefulShutdownHandler {
            try? await server.closeFuture.get()
        } onCancelOrGracefulShutdown: {
            server.close(promise: nil)
            secureServer?.close(promise: nil)
        }
        secureServer?.close(promise: nil)
        await drain(on: server.eventLoop)
        lifecycle.withLock { $0.stopped = true }
        logger.info("gateway stopped")
    }

    /// Waits until ``run()`` has bound its socket and returns the port (useful with port 0).
    /// Throws if binding failed, the gateway already stopped, or the waiting task is cancelled.
    public func waitUntilListening() async throws -> Int {
        let id = lifecycle.withLock { state -> UInt64 in
            state.nextWaiterID &+= 1
            return state.nextWaiterID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Int, any Error>) in
                let now = lifecycle.withLock { state -> Result<Int, any Error>? in
                    if state.stopped { return .failure(GatewayError.stopped) }
                    if let result = state.result { return result }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters[id] = continuation
                    return nil
                }
                if let now { continuation.resume(with: now) }
            }
        } onCancel: {
            let continuation = lifecycle.withLock { $0.waiters.removeValue(forKey: id) }
            continuation?.resume(throwing: CancellationError())
        }
    }

    // MARK: Internals

    private struct Lifecycle {
        var started = false
        var stopped = false
        var result: Result<Int, any Error>?
        var waiters: [UInt64: CheckedContinuation<Int, any Error>] = [:]
        var nextWaiterID: UInt64 = 0
    }

    private func finish(with result: Result<Int, any Error>) {
        let waiters = lifecycle.withLock { state in
            state.result = result
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(with: result) }
    }

    private static func makeLoopContext(
        on loop: any EventLoop,
        configuration: GatewayConfiguration,
        routes: RouteTableStore,
        security: SnapshotStore<SecurityTable>
    ) -> LoopContext {
        let pool = UpstreamConnectionPool(
            eventLoop: loop,
            connectTimeout: TimeAmount(configuration.connectTimeout),
            maxIdlePerPort: configuration.maxIdleConnectionsPerUpstream,
            idleTimeout: TimeAmount(configuration.upstreamIdleTimeout))
        return LoopContext(pool: pool, routes: RouteTableCache(store: routes), security: SnapshotCache(store: security))
    }

    private func makeBootstrap(tls secure: Bool) -> ServerBootstrap {
        let configuration = self.configuration
        let tls = self.tls
        let environment = self.environment
        let loops = self.loops
        let tracker = self.tracker
        let routes = self.routes
        return ServerBootstrap(group: eventLoopGroup)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                guard tracker.track(channel) else {
                    // Accepted while draining: refuse politely by closing.
                    channel.close(promise: nil)
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                return channel.eventLoop.makeCompletedFuture {
                    if secure {
                        // No certificate yet: nothing to handshake with.
                        guard let context = tls.current.context else {
                            channel.close(promise: nil)
                            return
                        }
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
                    }
                    // A loop the group did not enumerate gets a private pool (no sharing).
                    let loop =
                        loops[ObjectIdentifier(channel.eventLoop)]?.context.value
                        ?? Self.makeLoopContext(on: channel.eventLoop, configuration: configuration, routes: routes, security: environment.security)
                    try configureGatewayConnection(
                        channel, configuration: configuration, environment: environment, loop: loop, secure: secure)
                }
            }
    }

    /// Stops new work, waits for open connections up to the drain timeout, then closes the rest
    /// and the idle worker connections.
    private func drain(on eventLoop: any EventLoop) async {
        logger.info("gateway draining", metadata: ["connections": "\(tracker.count)"])
        let drained = tracker.beginDraining(on: eventLoop)
        let tracker = self.tracker
        let logger = self.logger
        let deadline = eventLoop.scheduleTask(in: TimeAmount(configuration.drainTimeout)) {
            logger.warning("gateway drain timeout; closing remaining connections", metadata: ["connections": "\(tracker.count)"])
            tracker.closeAll()
        }
        try? await drained.get()
        deadline.cancel()
        let shutdowns = loops.values.map { entry in
            let box = entry.context
            return entry.loop.submit { box.value.pool.shutdown() }
        }
        try? await EventLoopFuture.andAllComplete(shutdowns, on: eventLoop).get()
    }
}

/// Errors of the gateway's lifecycle (request-level errors become HTTP responses instead).
public struct GatewayError: Error, Sendable, CustomStringConvertible {
    /// A short machine-readable code.
    public var code: String
    /// What happened.
    public var message: String

    /// Creates an error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }

    /// ``Gateway/run()`` was called a second time.
    static let alreadyRunning = GatewayError(code: "AlreadyRunning", message: "Gateway.run() may be called only once")
    /// The gateway stopped before (or instead of) listening.
    static let stopped = GatewayError(code: "Stopped", message: "the gateway has stopped")
}
