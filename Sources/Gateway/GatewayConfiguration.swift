/// How the gateway listens and how long it waits for things.
///
/// Every wait on the data path has a bound here or on the route target (`RouteTarget.timeout`).
public struct GatewayConfiguration: Sendable {
    /// Address to bind, for example `0.0.0.0` or `127.0.0.1`.
    public var host: String
    /// Port to bind; `0` picks an ephemeral port (see ``Gateway/waitUntilListening()``).
    public var port: Int
    /// Address of the TLS listener; nil runs none. It serves once ``Gateway/configureTLS(material:mode:)``
    /// has given it a certificate (until then it closes new connections).
    public var tlsAddress: (host: String, port: Int)?
    /// Bound on establishing a TCP connection to a worker on 127.0.0.1.
    public var connectTimeout: Duration
    /// Bound on graceful shutdown: how long in-flight requests may take to finish before the
    /// remaining connections are closed.
    public var drainTimeout: Duration
    /// Largest request head (all header names and values) accepted; larger heads get 431.
    public var maxHeaderBytes: Int
    /// Most header fields a request head may have (Envoy's `max_headers_count` default); more
    /// get 431.
    public var maxHeaderCount: Int
    /// Once the first byte of a request head has arrived, the whole head must arrive within
    /// this time, or the gateway answers 408 and closes (a slowly dribbled head cannot hold a
    /// connection open indefinitely).
    public var requestHeadersTimeout: Duration
    /// A downstream connection that has read nothing for this long while no request is in
    /// flight is closed (keep-alive idle timeout; also bounds a slowly sent request head). An
    /// HTTP/2 connection with no open stream for this long is closed with a GOAWAY.
    public var idleTimeout: Duration
    /// Idle keep-alive connections kept per worker port and event loop; extra ones are closed.
    public var maxIdleConnectionsPerUpstream: Int
    /// A pooled worker connection unused for this long is closed.
    public var upstreamIdleTimeout: Duration
    /// A WebSocket tunnel (or any other upgraded connection) that carried no byte in either
    /// direction for this long is closed on both sides.
    public var webSocketIdleTimeout: Duration
    /// Most HTTP/2 streams a client may have open at once on one connection.
    public var maxConcurrentStreams: Int
    /// Receives one JSON access-log line per request (no trailing newline), or `nil` for no
    /// access log (then nothing is formatted). Called on a gateway event loop: it must return
    /// quickly and never block (hand the line to a buffered writer or a queue).
    public var accessLog: (@Sendable (String) -> Void)?
    /// Hosts answered in process (see ``GatewayMount``); checked before the route table.
    public var mounts: [GatewayMount] = []

    /// Creates a configuration; every parameter has a default suitable for a small host.
    public init(
        host: String = "0.0.0.0",
        port: Int = 8080,
        tlsAddress: (host: String, port: Int)? = nil,
        connectTimeout: Duration = .seconds(2),
        drainTimeout: Duration = .seconds(30),
        maxHeaderBytes: Int = 64 * 1024,
        maxHeaderCount: Int = 100,
        requestHeadersTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60),
        maxIdleConnectionsPerUpstream: Int = 32,
        upstreamIdleTimeout: Duration = .seconds(30),
        webSocketIdleTimeout: Duration = .seconds(3600),
        maxConcurrentStreams: Int = 100,
        accessLog: (@Sendable (String) -> Void)? = nil
    ) {
        precondition(maxHeaderBytes > 0, "maxHeaderBytes must be positive")
        precondition(maxConcurrentStreams > 0, "maxConcurrentStreams must be positive")
        precondition(maxIdleConnectionsPerUpstream >= 0, "maxIdleConnectionsPerUpstream must not be negative")
        self.host = host
        self.port = port
        self.tlsAddress = tlsAddress
        self.connectTimeout = connectTimeout
        self.drainTimeout = drainTimeout
        self.maxHeaderBytes = maxHeaderBytes
        self.maxHeaderCount = maxHeaderCount
        self.requestHeadersTimeout = requestHeadersTimeout
        self.idleTimeout = idleTimeout
        self.maxIdleConnectionsPerUpstream = maxIdleConnectionsPerUpstream
        self.upstreamIdleTimeout = upstreamIdleTimeout
        self.webSocketIdleTimeout = webSocketIdleTimeout
        self.maxConcurrentStreams = maxConcurrentStreams
        self.accessLog = accessLog
    }
}
