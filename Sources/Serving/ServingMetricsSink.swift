public import Gateway

/// How a worker came to take requests.
public enum WorkerStartKind: String, Sendable {
    /// A new process was started and passed its readiness probe.
    case started
    /// A frozen worker was thawed (warm tier).
    case thawed
}

/// Where Serving reports timings; Platform backs it with Prometheus histograms.
public protocol ServingMetricsSink: Sendable {
    /// Time from process start (or thaw request) to ready.
    func coldStart(revision: RevisionID, duration: Duration, kind: WorkerStartKind)
    /// Time a request waited for a worker.
    func activationWait(revision: RevisionID, duration: Duration)
}

/// The scale of one revision right now.
public struct RevisionScale: Hashable, Sendable {
    /// The revision.
    public var revision: RevisionID
    /// Workers the autoscaler wants.
    public var desiredWorkers: Int
    /// Workers taking requests.
    public var readyWorkers: Int
    /// Workers starting or taking requests.
    public var activeWorkers: Int
    /// Workers frozen in the warm tier.
    public var frozenWorkers: Int
    /// Requests waiting for a worker.
    public var queuedRequests: Int
    /// Requests being served.
    public var inFlightRequests: Int
    /// Whether the autoscaler is panicking.
    public var inPanic: Bool
    /// Knative's excess burst capacity: spare request slots beyond `target-burst-capacity`.
    /// Outpost's activator queue is always in the path, so this is reported, not acted on.
    public var excessBurstCapacity: Int
}
