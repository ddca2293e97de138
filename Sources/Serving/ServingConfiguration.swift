/// Settings of the revision manager, from daemon flags. Durations follow Knative's names.
public struct ServingConfiguration: Sendable {
    /// Folder for per-revision log files (`<logDirectory>/<namespace>/<revision>.log`).
    public var logDirectory: String
    /// Size at which a revision's log file is cut (checked each autoscaler tick): its last
    /// quarter goes to `<revision>.log.1` and the file starts again, so a chatty worker cannot
    /// fill a small host's disk.
    public var maxLogBytes: Int = 16 << 20
    /// Knative's `config-autoscaler` settings (stable window, grace period, targets, rates…),
    /// which `autoscaling.knative.dev/*` annotations override per revision.
    public var autoscaler: AutoscalerDefaults
    /// Period of the autoscaler's decisions (Knative's `tick-interval`, 2 s).
    public var tickInterval: Duration
    /// Time between SIGTERM and SIGKILL when a worker stops; not tied to the request timeout.
    public var terminationGracePeriod: Duration
    /// How long a starting worker may take to pass its readiness probe before it counts as failed.
    public var progressDeadline: Duration
    /// Requests that may wait for a worker of one revision; more get 503 at once.
    public var maxQueuedRequests: Int
    /// Period of the level-triggered resync (scale-to-zero checks, status writes).
    public var resyncInterval: Duration
    /// Environment variables of the daemon that workers inherit (when set).
    public var inheritedEnvironment: [String]
    /// Extra environment of a service's workers (namespace, service), for example the paths of
    /// its workload certificate; called each time a worker starts.
    public var workloadEnvironment: (@Sendable (_ namespace: String, _ service: String) -> [String: String])?

    /// Creates a configuration with Knative's defaults.
    public init(
        logDirectory: String,
        autoscaler: AutoscalerDefaults = AutoscalerDefaults(),
        tickInterval: Duration = .seconds(2),
        terminationGracePeriod: Duration = .seconds(10),
        progressDeadline: Duration = .seconds(60),
        maxQueuedRequests: Int = 1000,
        resyncInterval: Duration = .seconds(1),
        inheritedEnvironment: [String] = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"]
    ) {
        self.logDirectory = logDirectory
        self.autoscaler = autoscaler
        self.tickInterval = tickInterval
        self.terminationGracePeriod = terminationGracePeriod
        self.progressDeadline = progressDeadline
        self.maxQueuedRequests = maxQueuedRequests
        self.resyncInterval = resyncInterval
        self.inheritedEnvironment = inheritedEnvironment
        self.workloadEnvironment = nil
    }
}
