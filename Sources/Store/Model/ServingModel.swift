public import Foundation

/// An environment variable given to a workload.
public struct EnvVar: Codable, Hashable, Sendable {
    /// Variable name.
    public var name: String
    /// Variable value.
    public var value: String

    /// Creates a variable.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// How Outpost decides that a freshly started worker can take requests.
public struct ReadinessProbe: Codable, Hashable, Sendable {
    /// An HTTP GET that must answer 2xx/3xx.
    public struct HTTPGet: Codable, Hashable, Sendable {
        /// Request path, for example `/healthz`.
        public var path: String
        /// Creates the probe action.
        public init(path: String) { self.path = path }
    }
    /// A TCP connect to the worker's port (the default when no probe is given).
    public struct TCPSocket: Codable, Hashable, Sendable {
        /// Creates the probe action.
        public init() {}
    }

    /// HTTP probe, exclusive with `tcpSocket`.
    public var httpGet: HTTPGet?
    /// TCP probe, exclusive with `httpGet`.
    public var tcpSocket: TCPSocket?

    /// Creates a probe.
    public init(httpGet: HTTPGet? = nil, tcpSocket: TCPSocket? = nil) {
        self.httpGet = httpGet
        self.tcpSocket = tcpSocket
    }
}

/// KServe's dynamic batcher: requests that arrive close together run as one batch.
public struct ModelBatcher: Codable, Hashable, Sendable {
    /// Most requests (rows of the batch dimension) joined into one run.
    public var maxBatchSize: Int
    /// Longest a request waits for others to join its batch, in milliseconds.
    public var maxLatency: Int

    /// Default batch size (KServe's: 32).
    public static let defaultMaxBatchSize = 32
    /// Default wait for a batch to fill, in milliseconds. Short on purpose: an edge host's
    /// in-process model answers in microseconds, so a long wait only adds latency.
    public static let defaultMaxLatency = 5

    /// Creates a batcher.
    public init(maxBatchSize: Int = ModelBatcher.defaultMaxBatchSize, maxLatency: Int = ModelBatcher.defaultMaxLatency) {
        self.maxBatchSize = maxBatchSize
        self.maxLatency = maxLatency
    }
}

/// A model a revision serves in the daemon's own process (KServe's predictor `model`): its
/// workers are loaded instances of it instead of processes.
public struct ModelSpec: Codable, Hashable, Sendable {
    /// The model format; `onnx` is the one Outpost runs.
    public var modelFormat: String
    /// Where the model file is: an absolute path or a `file://` URI.
    public var storageUri: String
    /// The name the model answers to in the inference protocols (the InferenceService's name).
    public var name: String
    /// Dynamic batching, when set.
    public var batcher: ModelBatcher?

    /// Creates a model spec.
    public init(modelFormat: String = "onnx", storageUri: String, name: String, batcher: ModelBatcher? = nil) {
        self.modelFormat = modelFormat
        self.storageUri = storageUri
        self.name = name
        self.batcher = batcher
    }

    /// The file system path of `storageUri`.
    public var path: String {
        storageUri.hasPrefix("file://") ? String(storageUri.dropFirst("file://".count)) : storageUri
    }
}

/// The template a revision is cut from: everything needed to start one worker process (or,
/// with `model`, to load one model instance). Revisions keep an immutable copy of it.
public struct RevisionTemplate: Codable, Hashable, Sendable {
    /// Per-revision annotations (`autoscaling.knative.dev/*` and friends).
    public var annotations: [String: String]
    /// Executable to run: an absolute path, or a name looked up in the daemon's `PATH`.
    public var command: String
    /// Arguments after the executable.
    public var args: [String]
    /// Extra environment; `PORT` and `K_*` are set by Outpost and cannot be overridden.
    public var env: [EnvVar]
    /// Working directory of the worker; the daemon's when absent.
    public var workingDir: String?
    /// Fixed port the worker listens on; when absent Outpost picks a free port per worker.
    public var port: Int?
    /// Readiness probe; a TCP connect to the port when absent.
    public var readinessProbe: ReadinessProbe?
    /// Hard limit of concurrent requests per worker; 0 means unlimited.
    public var containerConcurrency: Int
    /// Longest time a request may take, in seconds.
    public var timeoutSeconds: Int
    /// The model this revision serves in process; `command` is empty then.
    public var model: ModelSpec?

    /// Knative's `revision-timeout-seconds` default.
    public static let defaultTimeoutSeconds = 300

    /// Creates a template.
    public init(
        annotations: [String: String] = [:], command: String, args: [String] = [], env: [EnvVar] = [],
        workingDir: String? = nil, port: Int? = nil, readinessProbe: ReadinessProbe? = nil,
        containerConcurrency: Int = 0, timeoutSeconds: Int = RevisionTemplate.defaultTimeoutSeconds,
        model: ModelSpec? = nil
    ) {
        self.annotations = annotations
        self.command = command
        self.args = args
        self.env = env
        self.workingDir = workingDir
        self.port = port
        self.readinessProbe = readinessProbe
        self.containerConcurrency = containerConcurrency
        self.timeoutSeconds = timeoutSeconds
        self.model = model
    }
}

/// One entry of a service's traffic block (Knative's `TrafficTarget`).
public struct TrafficTarget: Codable, Hashable, Sendable {
    /// A fixed revision; exclusive with `latestRevision`.
    public var revisionName: String?
    /// Follow the latest ready revision.
    public var latestRevision: Bool?
    /// Share of requests; the entries of a block sum to 100.
    public var percent: Int?
    /// Optional name giving the target its own URL.
    public var tag: String?

    /// Creates a target.
    public init(revisionName: String? = nil, latestRevision: Bool? = nil, percent: Int? = nil, tag: String? = nil) {
        self.revisionName = revisionName
        self.latestRevision = latestRevision
        self.percent = percent
        self.tag = tag
    }

    /// All traffic to the latest ready revision: the default block.
    public static let allToLatest = [TrafficTarget(latestRevision: true, percent: 100)]
}

/// Desired state of a service.
public struct ServiceSpec: Codable, Hashable, Sendable {
    /// Template of the next revision.
    public var template: RevisionTemplate
    /// Traffic block.
    public var traffic: [TrafficTarget]

    /// Creates a spec.
    public init(template: RevisionTemplate, traffic: [TrafficTarget] = TrafficTarget.allToLatest) {
        self.template = template
        self.traffic = traffic
    }
}

/// A Knative-style status condition.
public struct Condition: Codable, Hashable, Sendable {
    /// Condition type, for example `Ready`.
    public var type: String
    /// `True`, `False` or `Unknown`.
    public var status: String
    /// One-word reason in CamelCase.
    public var reason: String?
    /// Human-readable detail.
    public var message: String?
    /// When `status` last changed.
    public var lastTransitionTime: Date

    /// Creates a condition.
    public init(type: String, status: String, reason: String? = nil, message: String? = nil, lastTransitionTime: Date) {
        self.type = type
        self.status = status
        self.reason = reason
        self.message = message
        self.lastTransitionTime = lastTransitionTime
    }
}

extension [Condition] {
    /// Sets a condition, keeping `lastTransitionTime` when the status does not change.
    /// Returns whether anything changed.
    @discardableResult
    public mutating func set(_ type: String, status: String, reason: String? = nil, message: String? = nil, now: Date) -> Bool {
        if let index = firstIndex(where: { $0.type == type }) {
            var condition = self[index]
            if condition.status == status, condition.reason == reason, condition.message == message { return false }
            if condition.status != status { condition.lastTransitionTime = now }
            condition.status = status
            condition.reason = reason
            condition.message = message
            self[index] = condition
        } else {
            append(Condition(type: type, status: status, reason: reason, message: message, lastTransitionTime: now))
        }
        return true
    }

    /// The condition of a type, if present.
    public subscript(type: String) -> Condition? { first { $0.type == type } }
}

/// A gradual rollout in progress (`serving.knative.dev/rollout-duration`): traffic of the
/// latest-revision target moves from `from` to `to` in steps.
public struct RolloutStatus: Codable, Hashable, Sendable {
    /// The previous latest ready revision.
    public var from: String
    /// The new latest ready revision.
    public var to: String
    /// When the rollout began.
    public var startedAt: Date

    /// Creates a rollout record.
    public init(from: String, to: String, startedAt: Date) {
        self.from = from
        self.to = to
        self.startedAt = startedAt
    }
}

/// Observed state of a service, written by the serving controller.
public struct ServiceStatus: Codable, Hashable, Sendable {
    /// The service generation this status reflects.
    public var observedGeneration: Int64
    /// `Ready`, `ConfigurationsReady`, `RoutesReady`.
    public var conditions: [Condition]
    /// Newest revision cut from the template.
    public var latestCreatedRevisionName: String?
    /// Newest revision that passed its readiness check.
    public var latestReadyRevisionName: String?
    /// Traffic as routed, always with revision names.
    public var traffic: [TrafficTarget]
    /// The gradual rollout in progress, if any.
    public var rollout: RolloutStatus?

    /// Creates a status.
    public init(observedGeneration: Int64 = 0, conditions: [Condition] = [], latestCreatedRevisionName: String? = nil,
                latestReadyRevisionName: String? = nil, traffic: [TrafficTarget] = []) {
        self.observedGeneration = observedGeneration
        self.conditions = conditions
        self.latestCreatedRevisionName = latestCreatedRevisionName
        self.latestReadyRevisionName = latestReadyRevisionName
        self.traffic = traffic
    }
}

/// Observed state of a revision.
public struct RevisionStatus: Codable, Hashable, Sendable {
    /// `Ready`, `ContainerHealthy`, `Active`.
    public var conditions: [Condition]
    /// Workers that are ready now.
    public var actualReplicas: Int
    /// Workers wanted now.
    public var desiredReplicas: Int
    /// Whether the autoscaler is in panic mode.
    public var panicMode: Bool?
    /// Why the worker count last changed.
    public var lastScaleReason: String?

    /// Creates a status.
    public init(conditions: [Condition] = [], actualReplicas: Int = 0, desiredReplicas: Int = 0, panicMode: Bool? = nil, lastScaleReason: String? = nil) {
        self.conditions = conditions
        self.actualReplicas = actualReplicas
        self.desiredReplicas = desiredReplicas
        self.panicMode = panicMode
        self.lastScaleReason = lastScaleReason
    }
}

/// Identity and bookkeeping shared by every stored resource.
public struct ResourceMeta: Hashable, Sendable {
    /// Namespace (default `default`).
    public var namespace: String
    /// DNS-1035 name, unique in its namespace and kind.
    public var name: String
    /// Unique id for this incarnation of the resource.
    public var uid: String
    /// Incremented when the spec changes.
    public var generation: Int64
    /// Incremented on every write; clients send it back for optimistic concurrency.
    public var resourceVersion: Int64
    /// User annotations of the resource.
    public var annotations: [String: String]
    /// When the resource was created.
    public var createdAt: Date
    /// When the resource was last written.
    public var updatedAt: Date

    /// Creates metadata.
    public init(namespace: String, name: String, uid: String, generation: Int64, resourceVersion: Int64,
                annotations: [String: String], createdAt: Date, updatedAt: Date) {
        self.namespace = namespace
        self.name = name
        self.uid = uid
        self.generation = generation
        self.resourceVersion = resourceVersion
        self.annotations = annotations
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// A service as stored: metadata, desired spec and observed status.
public struct ServiceResource: Hashable, Sendable {
    /// Metadata.
    public var meta: ResourceMeta
    /// Desired state.
    public var spec: ServiceSpec
    /// Observed state.
    public var status: ServiceStatus

    /// Creates a service value.
    public init(meta: ResourceMeta, spec: ServiceSpec, status: ServiceStatus) {
        self.meta = meta
        self.spec = spec
        self.status = status
    }
}

/// An immutable revision of a service's template, plus its observed status.
public struct RevisionResource: Hashable, Sendable {
    /// Metadata (`generation` is always 1: revisions never change).
    public var meta: ResourceMeta
    /// The owning service.
    public var serviceName: String
    /// Ordinal of this revision within its service (1, 2, …).
    public var configurationGeneration: Int64
    /// The template snapshot.
    public var spec: RevisionTemplate
    /// Observed state.
    public var status: RevisionStatus

    /// Creates a revision value.
    public init(meta: ResourceMeta, serviceName: String, configurationGeneration: Int64, spec: RevisionTemplate, status: RevisionStatus) {
        self.meta = meta
        self.serviceName = serviceName
        self.configurationGeneration = configurationGeneration
        self.spec = spec
        self.status = status
    }
}

/// A service's route: its traffic block as desired and as resolved to revision names.
public struct RouteResource: Hashable, Sendable {
    /// Metadata (same name as the service).
    public var meta: ResourceMeta
    /// Traffic as desired.
    public var traffic: [TrafficTarget]
    /// Traffic resolved to revision names.
    public var resolvedTraffic: [TrafficTarget]
}
