// Serving: the revision manager. It keeps one `RevisionPool` per stored revision; a pool starts
// worker processes on demand (a request for a revision at zero waits in the pool's bounded queue
// while a worker starts), proves a new revision by starting one worker, and stops workers after
// the revision has been idle for its stable window plus the scale-to-zero grace period.
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
    private let store: Store
    private let configuration: ServingConfiguration
    private let domain: String
    private let publish: @Sendable (RouteTable) -> Void
    private let logger: Logger
    private let pools = Mutex<[RevisionID: RevisionPool]>([:])
    private let wakeups: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation
    private let runtimeParts: (spawner: WorkerSpawner, reaper: ChildReaper)

    /// Creates the manager; `publish` receives every new route table.
    public init(
        store: Store, configuration: ServingConfiguration, domain: String, logger: Logger,
        publish: @escaping @Sendable (RouteTable) -> Void
    ) {
        self.store = store
        self.configuration = configuration
        self.domain = domain
        self.logger = logger
        self.publish = publish
        (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        runtimeParts = (WorkerSpawner(), ChildReaper())
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
                await group.waitForAll()
            }
        }
        await stopAll()
    }

    /// Asks for a reconcile pass soon.
    public func poke() { wake.yield() }

    // MARK: UpstreamResolver

    /// Leases a ready worker of the revision without waiting.
    public func tryAcquire(_ revision: RevisionID) -> UpstreamLease? {
        pools.withLock { $0[revision] }?.tryAcquire()
    }

    /// Waits (bounded) for a worker, starting one when the revision is at zero.
    public func acquire(_ revision: RevisionID, timeout: Duration) async throws -> UpstreamLease {
        guard let pool = pools.withLock({ $0[revision] }) else {
            throw UpstreamUnavailable(code: "RevisionNotFound", message: "revision \(revision) is not known")
        }
        return try await pool.acquire(timeout: timeout)
    }

    /// Returns a lease to its pool.
    public func release(_ lease: UpstreamLease, outcome: UpstreamOutcome) {
        pools.withLock { $0[lease.revision] }?.release(lease, outcome: outcome)
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
        let current = pools.withLock { $0 }
        let wanted = Set(revisions.map { RevisionID(namespace: $0.meta.namespace, name: $0.meta.name) })

        // Revisions that are gone: stop their workers, then drop their logs.
        for (id, pool) in current where !wanted.contains(id) {
            pools.withLock { _ = $0.removeValue(forKey: id) }
            Task { [logger] in
                await pool.shutdown()
                try? FileManager.default.removeItem(atPath: pool.logPath)
                logger.info("revision removed", metadata: ["revision": "\(id)"])
            }
        }

        // New revisions get a pool; every pool gets its idle check.
        for index in revisions.indices {
            let revision = revisions[index]
            let id = RevisionID(namespace: revision.meta.namespace, name: revision.meta.name)
            let pool = current[id] ?? makePool(revision)
            pool.scaleToZeroIfIdle(idlePeriod: idlePeriod(revision))
            let snapshot = pool.snapshot()
            let observation = ServiceReconciler.Observation(
                ready: snapshot.ready, desired: max(snapshot.desired, snapshot.active), everReady: snapshot.everReady,
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
            let (status, route) = ServiceReconciler.serviceStatus(service: service, revisions: byService[key] ?? [], now: now)
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
        publish(RouteTable(domain: domain, routes: routes))
    }

    /// Stable window (annotation or default) plus the scale-to-zero grace period.
    func idlePeriod(_ revision: RevisionResource) -> Duration {
        ServingAnnotations.stableWindow(revision.spec.annotations, default: configuration.stableWindow)
            + configuration.scaleToZeroGracePeriod
    }

    private func makePool(_ revision: RevisionResource) -> RevisionPool {
        let logFolder = "\(configuration.logDirectory)/\(revision.meta.namespace)"
        try? FileManager.default.createDirectory(atPath: logFolder, withIntermediateDirectories: true)
        let runtime = PoolRuntime(
            spawner: runtimeParts.spawner, reaper: runtimeParts.reaper, configuration: configuration,
            logger: logger, notify: { [wake] in wake.yield() })
        let pool = RevisionPool(revision: revision, runtime: runtime)
        pools.withLock { $0[pool.id] = pool }
        pool.kick()
        return pool
    }

    private func write(_ body: () throws -> Void) {
        do { try body() } catch { logger.error("reconcile: status write failed", metadata: ["error": "\(error)"]) }
    }

    private func stopAll() async {
        let all = pools.withLock { pools in
            defer { pools.removeAll() }
            return Array(pools.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for pool in all { group.addTask { await pool.shutdown() } }
        }
        logger.info("all workers stopped", metadata: ["revisions": "\(all.count)"])
    }
}
