/// A worker the gateway may send one request to, leased from the resolver.
public struct UpstreamLease: Sendable {
    /// The revision the worker belongs to.
    public var revision: RevisionID
    /// Loopback port the worker listens on (the host is always 127.0.0.1); 0 for a local worker.
    public var port: Int
    /// Opaque identity of the worker inside the resolver, handed back on release.
    public var workerID: UInt64
    /// An in-process worker; when set, `port` is unused and the request goes to it directly.
    public var local: (any LocalUpstream)?

    /// Creates a lease.
    public init(revision: RevisionID, port: Int, workerID: UInt64, local: (any LocalUpstream)? = nil) {
        self.revision = revision
        self.port = port
        self.workerID = workerID
        self.local = local
    }
}

/// How a leased request ended, so the resolver can account for it.
public enum UpstreamOutcome: Sendable {
    /// The worker answered (whatever the status code).
    case completed
    /// The connection to the worker failed before a response started.
    case connectFailed
}

/// Why no worker could be leased. The gateway turns it into a 503 with `reason` in the body.
public struct UpstreamUnavailable: Error, Sendable {
    /// A short machine-readable code, for example `ActivationTimeout` or `RevisionFailed`.
    public var code: String
    /// What happened, for the person reading the response.
    public var message: String

    /// Creates the error.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}

/// Gives the gateway a worker for a revision. Serving implements it (the activator); the
/// gateway owns the interface.
///
/// The gateway first calls ``tryAcquire(_:)`` on its event loop; only when that returns `nil`
/// does it await ``acquire(_:timeout:)``, which may start a worker (scale from zero) and wait.
/// Every lease is given back exactly once through ``release(_:outcome:)``.
public protocol UpstreamResolver: AnyObject, Sendable {
    /// Leases a ready worker with free capacity without waiting, or returns `nil`.
    func tryAcquire(_ revision: RevisionID) -> UpstreamLease?
    /// Waits up to `timeout` for a worker; throws ``UpstreamUnavailable`` when none comes.
    func acquire(_ revision: RevisionID, timeout: Duration) async throws -> UpstreamLease
    /// Returns a lease.
    func release(_ lease: UpstreamLease, outcome: UpstreamOutcome)
}
