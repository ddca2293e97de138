public import Foundation
public import Gateway
public import Store

/// Pure rules that turn stored resources plus what the pools observe into statuses and routes,
/// Knative's way: traffic follows the latest *ready* revision, a failed newest revision leaves
/// traffic where it was and makes the service not Ready.
public enum ServiceReconciler {
    /// What a pool reports about its revision.
    public struct Observation: Hashable, Sendable {
        /// Workers that passed readiness and take requests.
        public var ready: Int
        /// Workers wanted.
        public var desired: Int
        /// Whether the autoscaler is panicking.
        public var inPanic: Bool
        /// Why the count last changed.
        public var scaleReason: String?
        /// The revision passed readiness at least once.
        public var everReady: Bool
        /// The revision never became ready and Outpost gave up on it.
        public var failed: Bool
        /// The latest failure (start failure, crash, probe timeout), if one is current.
        public var failureReason: String?
        /// Detail of the latest failure.
        public var failureMessage: String?

        /// Creates an observation.
        public init(
            ready: Int, desired: Int, inPanic: Bool = false, scaleReason: String? = nil, everReady: Bool, failed: Bool,
            failureReason: String? = nil, failureMessage: String? = nil
        ) {
            self.ready = ready
            self.desired = desired
            self.inPanic = inPanic
            self.scaleReason = scaleReason
            self.everReady = everReady
            self.failed = failed
            self.failureReason = failureReason
            self.failureMessage = failureMessage
        }
    }

    /// A revision's status from its previous status and the observation.
    public static func revisionStatus(previous: RevisionStatus, observation: Observation, now: Date) -> RevisionStatus {
        var status = previous
        status.actualReplicas = observation.ready
        status.desiredReplicas = observation.desired
        status.panicMode = observation.inPanic
        status.lastScaleReason = observation.scaleReason ?? status.lastScaleReason
        if observation.failed {
            status.conditions.set("Ready", status: "False", reason: observation.failureReason, message: observation.failureMessage, now: now)
        } else if observation.everReady {
            status.conditions.set("Ready", status: "True", now: now)
        } else {
            status.conditions.set("Ready", status: "Unknown", reason: "Deploying", message: "waiting for the first worker to pass its readiness probe", now: now)
        }
        if let reason = observation.failureReason {
            status.conditions.set("ContainerHealthy", status: "False", reason: reason, message: observation.failureMessage, now: now)
        } else if observation.everReady {
            status.conditions.set("ContainerHealthy", status: "True", now: now)
        } else {
            status.conditions.set("ContainerHealthy", status: "Unknown", reason: "Deploying", now: now)
        }
        if observation.ready > 0 {
            status.conditions.set("Active", status: "True", now: now)
        } else {
            status.conditions.set("Active", status: "False", reason: "NoTraffic", message: "The revision has no running worker; the next request starts one.", now: now)
        }
        return status
    }

    /// A service's status and route from its revisions (oldest first, with current statuses).
    public static func serviceStatus(
        service: ServiceResource, revisions: [RevisionResource], now: Date
    ) -> (status: ServiceStatus, route: Route) {
        var status = service.status
        status.observedGeneration = service.meta.generation
        let latestCreated = revisions.last
        let latestReady = revisions.last { $0.status.conditions["Ready"]?.status == "True" }
        status.latestCreatedRevisionName = latestCreated?.meta.name
        status.latestReadyRevisionName = latestReady?.meta.name

        // Configuration readiness follows the newest revision.
        let newestReady = latestCreated?.status.conditions["Ready"]
        switch newestReady?.status {
        case "True":
            status.conditions.set("ConfigurationsReady", status: "True", now: now)
        case "False":
            status.conditions.set(
                "ConfigurationsReady", status: "False", reason: "RevisionFailed",
                message: "Revision \"\(latestCreated!.meta.name)\" failed with message: \(newestReady?.message ?? newestReady?.reason ?? "unknown")", now: now)
        default:
            status.conditions.set("ConfigurationsReady", status: "Unknown", reason: "RevisionDeploying", now: now)
        }

        // Resolve the traffic block to revision names; a gradual rollout splits the
        // latest-revision entry between the previous and the new latest ready revision.
        let byName = Dictionary(revisions.map { ($0.meta.name, $0) }, uniquingKeysWith: { $1 })
        let rollout = Self.rollout(service: service, previous: service.status, latestReady: latestReady?.meta.name, byName: byName, now: now)
        status.rollout = rollout?.status
        var resolved: [TrafficTarget] = []
        var targets: [RouteTarget] = []
        var tags: [String: RouteTarget] = [:]
        var versions: [String: RouteTarget] = [:]
        var missing: String?
        func routeTarget(_ name: String, timeoutSeconds: Int, percent: Int = 100) -> RouteTarget {
            RouteTarget(revision: RevisionID(namespace: service.meta.namespace, name: name), percent: percent, timeout: .seconds(timeoutSeconds))
        }
        for entry in service.spec.traffic {
            let name = entry.latestRevision == true ? latestReady?.meta.name : entry.revisionName
            guard let name, let revision = byName[name] else {
                missing = entry.revisionName.map { "revision \"\($0)\" does not exist" } ?? "no revision is ready yet"
                continue
            }
            let percent = entry.percent ?? 0
            var shares = [(name, revision, percent)]
            if entry.latestRevision == true, let rollout, let from = byName[rollout.status.from] {
                let moved = rollout.share(of: percent)
                shares = [(rollout.status.from, from, percent - moved), (name, revision, moved)]
            }
            for (shareName, shareRevision, sharePercent) in shares {
                // A model version path reaches every revision that serves (a rollout's `from` too).
                if service.spec.template.model != nil {
                    versions[shareName] = routeTarget(shareName, timeoutSeconds: shareRevision.spec.timeoutSeconds)
                }
                resolved.append(TrafficTarget(revisionName: shareName, latestRevision: entry.latestRevision, percent: sharePercent, tag: shareName == name ? entry.tag : nil))
                if sharePercent > 0 {
                    targets.append(routeTarget(shareName, timeoutSeconds: shareRevision.spec.timeoutSeconds, percent: sharePercent))
                }
            }
            if let tag = entry.tag {
                tags[tag] = routeTarget(name, timeoutSeconds: revision.spec.timeoutSeconds)
            }
        }
        status.traffic = resolved
        // Before any revision is ready, requests wait for the first one to finish starting (as at
        // scale zero) instead of failing; a failed first revision answers 503 with its reason.
        if targets.isEmpty, latestReady == nil, let first = latestCreated, service.spec.traffic.contains(where: { $0.latestRevision == true }) {
            targets = [routeTarget(first.meta.name, timeoutSeconds: first.spec.timeoutSeconds)]
            // The first load of a model: its host already answers errors in KServe's shape.
            if service.spec.template.model != nil { versions[first.meta.name] = targets[0] }
        }
        if let missing {
            let failed = latestReady == nil && newestReady?.status == "False"
            status.conditions.set("RoutesReady", status: failed ? "False" : "Unknown", reason: failed ? "RevisionFailed" : "RevisionMissing", message: missing, now: now)
        } else {
            status.conditions.set("RoutesReady", status: "True", now: now)
        }

        let parts = [status.conditions["ConfigurationsReady"], status.conditions["RoutesReady"]].compactMap { $0 }
        if let failedPart = parts.first(where: { $0.status == "False" }) {
            status.conditions.set("Ready", status: "False", reason: failedPart.reason, message: failedPart.message, now: now)
        } else if let pending = parts.first(where: { $0.status != "True" }) {
            status.conditions.set("Ready", status: "Unknown", reason: pending.reason, message: pending.message, now: now)
        } else {
            status.conditions.set("Ready", status: "True", now: now)
        }
        return (status, Route(namespace: service.meta.namespace, service: service.meta.name, targets: targets, tags: tags, modelVersions: versions))
    }

    /// Knative's rollout annotation on a service.
    public static let rolloutDurationAnnotation = "serving.knative.dev/rollout-duration"

    /// A rollout in progress and the share of traffic it has moved so far.
    struct Rollout {
        var status: RolloutStatus
        /// 0...1: 1 % at the start, then linearly to all of it at the end of the duration.
        var progress: Double

        func share(of percent: Int) -> Int {
            min(percent, max(1, Int((Double(percent) * progress).rounded(.down))))
        }
    }

    /// Starts, continues or ends a gradual rollout.
    static func rollout(
        service: ServiceResource, previous: ServiceStatus, latestReady: String?,
        byName: [String: RevisionResource], now: Date
    ) -> Rollout? {
        guard let text = service.meta.annotations[rolloutDurationAnnotation], let duration = DurationText.parse(text),
              duration > .zero, let latestReady else { return nil }
        var current = previous.rollout
        if current?.to != latestReady {
            // A new latest ready revision: roll from the one that served until now.
            guard let from = previous.latestReadyRevisionName, from != latestReady, byName[from] != nil else { return nil }
            current = RolloutStatus(from: from, to: latestReady, startedAt: now)
        }
        guard let current, byName[current.from] != nil else { return nil }
        let total = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let elapsed = now.timeIntervalSince(current.startedAt)
        guard elapsed < total else { return nil }
        return Rollout(status: current, progress: 0.01 + 0.99 * max(0, elapsed) / total)
    }
}
