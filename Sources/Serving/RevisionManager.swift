// Serving: the revision manager. It keeps one `RevisionPool` per stored revision; a pool starts
// worker processes on demand (a request for a revision at zero waits in the pool's bounded queue
// while a worker starts at once) and proves a new revision by starting its initial scale. Every
// tick (2 s) Knative's KPA decider turns each pool's measured concurrency (or rps) into a
// worker count; the pool starts or drains workers to match, down to zero after the stable
// window and the grace period.
//
// The manager is level-triggered: it wakes on every store change, on every pool event and on a
// resync tick, reads desired state from the store and observed state from the pools, writes
// statuses back, and publishes a fresh route table to the gateway. It implements the gateway's
// `UpstreamResolver`, so the data path reaches pools without touching SQLite.
import Foundation
public import Gateway
public import Logging
public import ServiceLifecycle
public import Store
import Synchronization

/// Runs revisions: worker pools, scale to zero, statuses and the gateway's route table.
public final class RevisionManager: Service, UpstreamResolver, Sendable {
    let store: Store
    private let configuration: ServingConfiguration
    private let domain: String
    private let publish: @Sendable (RouteTable) -> Void
    let logger: Logger
    private let pools = Mutex<[RevisionID: ManagedRevision]>([:])
    private let routed = Mutex<Set<RevisionID>>([])
    private let metrics: (any ServingMetricsSink)?
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let runtimeParts: (spawner: WorkerSpawner, reaper: ChildReaper, models: ModelLoader)

    /// Creates the manager; `publish` receives every new route table.
    public init(
        store: Store, configuration: ServingConfiguration, domain: String, logger: Logger,
        metrics: (any ServingMetricsSink)? = nil, publish: @escaping @Sendable (RouteTable) -> Void
    ) {
        self.store = store
        self.metrics = metrics
        self.configuration = configuration
        self.domain = domain
        self.logger = logger
        self.publish = publish
        (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        runtimeParts = (WorkerSpawner(), ChildReaper(), ModelLoader())
    }

    /// Reconciles until graceful shutdown, then stops every worker.
    public func run() async throws {
        try FileManager.default.createDirectory(atPath: configuration.logDirectory, withIntermediateDirectories: true)
        await reconcile()
        await cancelWhenGracefulShutdown { [self] in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { [store, wake] in
                    for await _ in store.changes() { wake.yield() }
                }
                group.addTask { [configuration, wake] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: configuration.resyncInterval)
                        wake.yield()
                    }
                }
                group.addTask { [self] in
                    for await _ in wakeups { await reconcile() }
                }
                group.addTask { [self] in
                    while !Task.isCancelled {
                        try? await Task.sleep(for: configuration.tickInterval)
                        autoscale()
                    }
                }
                await group.waitForAll()
            }
        }
        await stopAll()
    }

    /// Runs the first reconcile pass (pools for stored revisions, first route table) before the
    /// gateway opens, so that the first requests after a restart find their routes.
    public func prime() async {
        try? FileManager.default.createDirectory(atPath: configuration.logDirectory, withIntermediateDirectories: true)
        await reconcile()
    }

    // MARK: UpstreamResolver

    /// Leases a ready worker of the revision without waiting.
    public func tryAcquire(_ revision: RevisionID) -> UpstreamLease? {
        pool(for: revision)?.tryAcquire()
    }

    /// The pool of a revision, if it is known.
    func pool(for revision: RevisionID) -> RevisionPool? {
        pools.withLock { $0[revision] }?.pool
    }

    /// Waits (bounded) for a worker, starting one when the revision is at zero.
    public func acquire(_ revision: RevisionID, timeout: Duration) async throws -> UpstreamLease {
        guard let managed = pools.withLock({ $0[revision] }) else {
            throw UpstreamUnavailable(code: "RevisionNotFound", message: "revision \(revision) is not known")
        }
        return try await managed.pool.acquire(timeout: timeout)
    }

    /// Returns a lease to the pool that issued it, even when its revision has since been
    /// removed (its pool drains) or replaced by a new revision of the same name.
    public func release(_ lease: UpstreamLease, outcome: UpstreamOutcome) {
        if let issuer = lease.issuer {
            issuer.release(lease, outcome: outcome)
        } else {
            pools.withLock { $0[lease.revision] }?.pool.release(lease, outcome: outcome)
        }
    }

    // MARK: Autoscaling

    /// One autoscaler tick over every revision.
    func autoscale() {
        let now = ContinuousClock.now
        let all = pools.withLock { $0 }
        let reachable = routed.withLock { $0 }
        for (id, managed) in all {
            managed.pool.capLog(limit: configuration.maxLogBytes)
            guard let recheck = managed.autoscale(now: now, reachable: reachable.contains(id)),
                  recheck < configuration.tickInterval else { continue }
            // Look again when the idle window or grace period ends, between ticks.
            Task { [weak self, weak managed] in
                try? await Task.sleep(for: recheck)
                guard let self, let managed else { return }
                managed.autoscale(now: .now, reachable: self.routed.withLock { $0.contains(id) })
                self.wake.yield()
            }
        }
        wake.yield()  // statuses follow
    }

    /// The scale of every running revision, for `/metrics`.
    public func scaleSnapshots() -> [RevisionScale] {
        pools.withLock { $0 }.map { id, managed in
            let snapshot = managed.pool.snapshot()
            let outcome = managed.outcome
            return RevisionScale(
                revision: id, desiredWorkers: outcome.desired, readyWorkers: snapshot.ready,
                activeWorkers: snapshot.active, frozenWorkers: snapshot.frozen, queuedRequests: snapshot.queued,
                inFlightRequests: snapshot.inFlight, inPanic: outcome.inPanic, excessBurstCapacity: outcome.excessBurstCapacity)
        }
    }

    // MARK: Reconcile

    /// One level-triggered pass: pools ⇄ stored revisions, statuses, route table.
    func reconcile() async {
        let services: [ServiceResource]
        var revisions: [RevisionResource]
        do {
            services = try store.services()
            revisions = try store.revisions()
        } catch {
            logger.error("reconcile: cannot read the store", metadata: ["error": "\(error)"])
            return
        }
        let now = Date()
        let policies = compiledTrafficPolicies()
        let all = pools.withLock { $0 }
        let wanted = Dictionary(revisions.map { (RevisionID(namespace: $0.meta.namespace, name: $0.meta.name), $0.meta.uid) }) { first, _ in first }
        // A pool belongs to one revision object: a name deleted and created again gets a new one.
        let current = all.filter { wanted[$0.key] == $0.value.pool.uid }

        // Revisions that are gone: stop their workers, then drop their logs.
        for (id, managed) in all where current[id] == nil {
            pools.withLock { _ = $0.removeValue(forKey: id) }
            let pool = managed.pool
            Task { [logger, weak self] in
                await pool.shutdown()
                // The log path is the revision's name: a new revision of that name writes it now.
                if self?.pools.withLock({ $0[id] == nil }) ?? true {
                    try? FileManager.default.removeItem(atPath: pool.logPath)
                    try? FileManager.default.removeItem(atPath: pool.logPath + ".1")
                }
                logger.info("revision removed", metadata: ["revision": "\(id)"])
            }
        }

        // New revisions get a pool; stopped services hold theirs at zero.
        let stopped = Set(services.filter { $0.meta.annotations[ServingAnnotations.stopped] == "true" }
            .map { "\($0.meta.namespace)/\($0.meta.name)" })
        for index in revisions.indices {
            let revision = revisions[index]
            let id = RevisionID(namespace: revision.meta.namespace, name: revision.meta.name)
            let managed = current[id] ?? makePool(revision)
            let pool = managed.pool
            pool.hold(stopped.contains("\(id.namespace)/\(revision.serviceName)"))
            pool.apply(policies["\(id.namespace)/\(revision.serviceName)"]?.workers ?? WorkerPolicy())
            managed.syncDesired()
            let snapshot = pool.snapshot()
            let outcome = managed.outcome
            let observation = ServiceReconciler.Observation(
                ready: snapshot.ready, desired: snapshot.failedPermanently ? 0 : outcome.desired,
                inPanic: outcome.inPanic, scaleReason: outcome.reason, everReady: snapshot.everReady,
                failed: snapshot.failedPermanently,
                failureReason: snapshot.consecutiveFailures > 0 || snapshot.failedPermanently ? snapshot.failure?.reason : nil,
                failureMessage: snapshot.consecutiveFailures > 0 || snapshot.failedPermanently ? snapshot.failure?.message : nil)
            let status = ServiceReconciler.revisionStatus(previous: revision.status, observation: observation, now: now)
            if status != revision.status {
                revisions[index].status = status
                write { try store.updateRevisionStatus(namespace: id.namespace, name: id.name) { $0 = status } }
            }
        }

        // Services: statuses and routes.
        let byService = Dictionary(grouping: revisions) { "\($0.meta.namespace)/\($0.serviceName)" }
        var routes: [Route] = []
        for service in services {
            let key = "\(service.meta.namespace)/\(service.meta.name)"
            let (status, serviceRoute) = ServiceReconciler.serviceStatus(service: service, revisions: byService[key] ?? [], now: now)
            var route = serviceRoute
            route.policy = policies[key]?.route ?? .default
            routes.append(route)
            if status != service.status {
                write {
                    try store.updateServiceStatus(namespace: service.meta.namespace, name: service.meta.name, now: now) { current, stored in
                        // Recompute against the stored copy in case the spec moved on meanwhile.
                        if stored.meta.generation == service.meta.generation { current = status }
                    }
                }
            }
        }
        routed.withLock { $0 = Set(routes.flatMap { $0.targets.map(\.revision) }) }
        publish(RouteTable(domain: domain, routes: routes))
    }

    private func makePool(_ revision: RevisionResource) -> ManagedRevision {
        let logFolder = "\(configuration.logDirectory)/\(revision.meta.namespace)"
        try? FileManager.default.createDirectory(atPath: logFolder, withIntermediateDirectories: true)
        let runtime = PoolRuntime(
            spawner: runtimeParts.spawner, models: runtimeParts.models, reaper: runtimeParts.reaper, configuration: configuration,
            logger: logger, metrics: metrics, notify: { [wake] in wake.yield() },
            parkService: { [weak self] namespace, name in self?.park(namespace: namespace, service: name) })
        // Annotations were checked on the way in; a stored value that no longer parses falls
        // back to the defaults rather than leaving the revision unmanaged. Without annotations
        // nothing can fail: the daemon's defaults were checked at start (`problem`).
        let scaling = (try? ScalingSpec(
            annotations: revision.spec.annotations, containerConcurrency: revision.spec.containerConcurrency,
            defaults: configuration.autoscaler))
            ?? (try! ScalingSpec(annotations: [:], containerConcurrency: revision.spec.containerConcurrency, defaults: configuration.autoscaler))
        let frozenRetention = ServingAnnotations.frozenRetention(revision.spec.annotations)
        let pool = RevisionPool(revision: revision, scaling: scaling, freezeAtZero: frozenRetention != nil, runtime: runtime)
        let managed = ManagedRevision(
            pool: pool, scaling: scaling, frozenRetention: frozenRetention,
            restoredAtZero: revision.status.conditions["Ready"] != nil && revision.status.conditions["Ready"]?.status != "Unknown")
        pools.withLock { $0[pool.id] = managed }
        pool.kick()
        return managed
    }

    /// Unloads every revision of a service (a canary's too) until its next request.
    private func park(namespace: String, service: String) {
        let parked = pools.withLock { pools in
            pools.values.map(\.pool).filter { $0.id.namespace == namespace && $0.serviceName == service }
        }
        for pool in parked { pool.park() }
    }

    private func write(_ body: () throws -> Void) {
        do { try body() } catch { logger.error("reconcile: status write failed", metadata: ["error": "\(error)"]) }
    }

    private func stopAll() async {
        let all = pools.withLock { pools in
            defer { pools.removeAll() }
            return pools.values.map(\.pool)
        }
        await withTaskGroup(of: Void.self) { group in
            for pool in all { group.addTask { await pool.shutdown() } }
        }
        logger.info("all workers stopped", metadata: ["revisions": "\(all.count)"])
    }
}
