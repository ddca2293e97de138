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
    /// What issued the lease, and takes it back: a revision's name can be reused by a new
    /// revision while a request of the old one is still running.
    public var issuer: (any LeaseIssuer)?

    /// Creates a lease.
    public init(revision: RevisionID, port: Int, workerID: UInt64, local: (any LocalUpstream)? = nil, issuer: (any LeaseIssuer)? = nil) {
        self.revision = revision
        self.port = port
        self.workerID = workerID
        self.local = local
        self.issuer = issuer
    }
}

/// The owner of the workers a lease names (a revision's pool).
public protocol LeaseIssuer: AnyObject, Sendable {
    /// Takes a lease back.
    func release(_ lease: UpstreamLease, outcome: UpstreamOutcome)
}

/// How a leased request ended, so the resolver can account for it (and eject a worker that
/// keeps failing: see DestinationRule `outlierDetection`).
public enum UpstreamOutcome: Sendable, Hashable {
    /// The exchange ended without a verdict on the worker (the client left, or the gateway
    /// answered itself before using the worker).
    case completed
    /// The worker answered with this status code.
    case responded(status: Int)
    /// The connection to the worker failed (or closed) before a response started.
    case connectFailed
    /// The worker did not answer within the request or per-try timeout.
    case timedOut
}

/// Preferences for choosing a worker; a resolver with one worker may ignore them.
public struct LeaseHint: Sendable, Hashable {
    /// A worker to avoid when another one has capacity (the one a retried attempt failed on).
    public var avoiding: UInt64?
    /// The request's consistent-hash key, for `loadBalancer.consistentHash`.
    public var hash: UInt64?

    /// Creates a hint.
    public init(avoiding: UInt64? = nil, hash: UInt64? = nil) {
        self.avoiding = avoiding
        self.hash = hash
    }
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
    /// Like ``tryAcquire(_:)``, choosing among workers by `hint`.
    func tryAcquire(_ revision: RevisionID, hint: LeaseHint) -> UpstreamLease?
    /// Waits up to `timeout` for a worker; throws ``UpstreamUnavailable`` when none comes.
    func acquire(_ revision: RevisionID, timeout: Duration) async throws -> UpstreamLease
    /// Returns a lease.
    func release(_ lease: UpstreamLease, outcome: UpstreamOutcome)
}

extension UpstreamResolver {
    /// Ignores the hint: right for resolvers that have one worker per revision.
    public func tryAcquire(_ revision: RevisionID, hint: LeaseHint) -> UpstreamLease? {
        tryAcquire(revision)
    }
}
