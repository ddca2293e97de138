import AsyncHTTPClient
import Foundation
import NIOCore
public import Gateway
public import Logging
public import ServiceLifecycle
public import Store

/// How the eventing bus is set up.
public struct EventingConfiguration: Sendable {
    /// Domain of service hosts; the broker ingress is `broker-ingress.<domain>`.
    public var domain: String
    /// Loopback base URL of the gateway, e.g. `http://127.0.0.1:8080` (deliveries to services
    /// go through it).
    public var gatewayURL: String
    /// The gateway port shown in addresses.
    public var publicPort: Int
    /// Largest request accepted by the broker ingress (one event or a batch); larger gets 413.
    /// The CloudEvents spec asks for at least 64 KiB.
    public var maxEventBytes: Int
    /// How long fully delivered events stay in the log.
    public var retention: Duration
    /// Most deliveries the dispatcher holds in memory; the rest wait in SQLite.
    public var maxBufferedDeliveries: Int

    /// Creates a configuration.
    public init(
        domain: String, gatewayURL: String, publicPort: Int, maxEventBytes: Int = 256 << 10, retention: Duration = .seconds(24 * 3600),
        maxBufferedDeliveries: Int = 50_000
    ) {
        self.domain = domain
        self.gatewayURL = gatewayURL
        self.publicPort = publicPort
        self.maxEventBytes = maxEventBytes
        self.retention = retention
        self.maxBufferedDeliveries = maxBufferedDeliveries
    }
}

/// The event bus: the broker ingress (mounted on the gateway), the durable log writer, the
/// dispatcher, the controller that compiles brokers and triggers, ping sources, platform
/// events and retention. One `Service`; on graceful shutdown it stops taking work, lets the
/// writer commit what it has, and returns.
public final class EventingSystem: Service, Sendable {
    private let store: Store
    private let configuration: EventingConfiguration
    private let logger: Logger
    private let directory = EventingDirectory()
    private let writer: EventLogWriter
    private let dispatcher: Dispatcher
    private let sender: EventSender
    private let ingress: BrokerIngress
    private let addresses: EventingAddresses
    private let metrics = EventingMetrics()

    /// Builds the bus; nothing runs until ``run()``.
    public init(store: Store, configuration: EventingConfiguration, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        // The client of `https://` destinations (`http://` ones, such as the gateway's address
        // that deliveries to services go to, use `PlainHTTPClient`, which has no connection limit).
        var clientConfiguration = HTTPClient.Configuration()
        // Many destinations may share a host: a limit below what the triggers' parallelism allows
        // in flight would queue one trigger's deliveries behind another's slow subscriber until
        // their timeouts ran out.
        clientConfiguration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 1_024)
        // A refused connection fails its attempt at once, so the trigger's retry and backoff
        // apply; by default the client would keep reconnecting until the attempt's timeout.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        clientConfiguration.redirectConfiguration = .disallow  // the webhook spec forbids following redirects
        // No tracer is bootstrapped, yet the client would start and end a no-op span with its
        // attributes per request.
        clientConfiguration.tracing.tracer = nil
        let sender = EventSender(client: HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: clientConfiguration))
        self.sender = sender
        let directory = self.directory
        let dispatcherBox = DispatcherBox()
        let metrics = self.metrics
        let writer = EventLogWriter(store: store, logger: logger) { committed in
            metrics.eventsStored(committed)
            dispatcherBox.dispatcher?.enqueue(committed: committed)
        }
        self.writer = writer
        addresses = EventingAddresses(domain: configuration.domain, gatewayURL: configuration.gatewayURL, publicPort: configuration.publicPort)
        let dispatcher = Dispatcher(
            directory: directory, writer: writer, store: store, sender: sender, logger: logger,
            maxBuffered: configuration.maxBufferedDeliveries, metrics: metrics
        ) { events, broker in
            await Self.ingest(events, into: broker, directory: directory, writer: writer)
        }
        dispatcherBox.dispatcher = dispatcher
        self.dispatcher = dispatcher
        ingress = BrokerIngress(directory: directory, writer: writer)
    }

    /// The broker ingress, for the gateway's configuration.
    public var ingressMount: GatewayMount {
        GatewayMount(host: addresses.brokerIngressHost, upstream: ingress, maxBodyBytes: configuration.maxEventBytes, answersAddressHosts: true)
    }

    /// The bus's metrics in the Prometheus text format.
    public func prometheusText() -> String {
        metrics.prometheusText(bufferedDeliveries: dispatcher.buffered, writeQueue: writer.backlog)
    }

    /// The URL of a broker's ingress.
    public func brokerURL(namespace: String, name: String) -> String {
        addresses.brokerURL(namespace: namespace, name: name)
    }

    /// Resolves a destination to the URL a workload should post to (`K_SINK`). A broker gets
    /// the gateway's loopback address (which serves the broker ingress for address hosts), so
    /// the workload needs no DNS for `broker-ingress.<domain>`.
    public func sinkURL(_ destination: Destination, namespace: String) -> String? {
        guard let resolved = addresses.resolve(destination, namespace: namespace) else { return nil }
        return resolved.host == addresses.brokerIngressHost ? resolved.url : resolved.display
    }

    public func run() async throws {
        writer.start()
        let reconciler = EventingReconciler(store: store, directory: directory, addresses: addresses, logger: logger)
        do { try reconciler.reconcile() } catch { logger.error("eventing reconcile failed", metadata: ["error": "\(error)"]) }
        dispatcher.recover()
        let pings = PingScheduler(store: store, addresses: addresses, sender: sender, logger: logger) { [directory, writer] events, broker in
            await Self.ingest(events, into: broker, directory: directory, writer: writer)
        }
        let platformEvents = PlatformEventSource(store: store, logger: logger) { [directory, writer] events, broker in
            await Self.ingest(events, into: broker, directory: directory, writer: writer)
        }
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.controlLoop(reconciler) }
                group.addTask { await pings.run() }
                group.addTask { await platformEvents.run() }
                group.addTask { await self.retentionLoop() }
                await group.next()
                group.cancelAll()
            }
        } onGracefulShutdown: {}
        dispatcher.stop()
        writer.stop()
        await sender.shutdown()
        logger.info("eventing stopped")
    }

    /// Rebuilds the directory whenever a broker, trigger or service changes (coalesced), and
    /// every 30 s in case a change was missed.
    private func controlLoop(_ reconciler: EventingReconciler) async {
        let changes = store.changes()
        let relevant: Set<StoreChange.Kind> = [.broker, .trigger, .service]
        let wake = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let feeder = Task {
            for await change in changes where relevant.contains(change.kind) { wake.continuation.yield() }
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(30))
                wake.continuation.yield()
            }
        }
        defer {
            feeder.cancel()
            ticker.cancel()
        }
        await withTaskCancellationOrGracefulShutdownHandler {
            for await _ in wake.stream {
                do { try reconciler.reconcile() } catch { logger.error("eventing reconcile failed", metadata: ["error": "\(error)"]) }
            }
        } onCancelOrGracefulShutdown: {
            wake.continuation.finish()
        }
    }

    /// Deletes fully delivered events older than the retention period, once a minute.
    private func retentionLoop() async {
        let seconds = Double(configuration.retention.components.seconds)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let deleted = try store.pruneEvents(receivedBefore: Date().timeIntervalSince1970 - seconds)
                if deleted > 0 { logger.debug("pruned delivered events", metadata: ["count": "\(deleted)"]) }
            } catch {
                logger.warning("event retention failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(60))
        }
    }

    /// Sends events into a broker as its ingress would (hop budget, trigger matching, durable
    /// commit) and returns once they are committed, or the reason they were not.
    public func publish(_ events: [CloudEvent], namespace: String, broker: String) async -> String? {
        await Self.ingest(events, into: BrokerKey(namespace: namespace, name: broker), directory: directory, writer: writer)
    }

    static func ingest(_ events: [CloudEvent], into key: BrokerKey, directory: EventingDirectory, writer: EventLogWriter) async -> String? {
        guard let broker = directory.broker(namespace: key.namespace, name: key.name) else {
            return "broker \(key.namespace)/\(key.name) does not exist"
        }
        let accepted: [NewEvent]
        do {
            accepted = try events.map { event throws(IngressRejection) in try BrokerIngress.admit(event, to: broker) }
        } catch {
            return error.message
        }
        return await withCheckedContinuation { continuation in
            let queued = writer.submit(accepted, durability: broker.durability.commitDurability) { result in
                switch result {
                case .success: continuation.resume(returning: nil)
                case .failure(let error): continuation.resume(returning: error.message)
                }
            }
            if !queued { continuation.resume(returning: "the broker's write queue is full") }
        }
    }

    /// Sends failed deliveries of a namespace (one trigger's, or some events') back to their
    /// subscribers. Returns how many were reopened; deliveries of triggers that no longer exist
    /// stay as they are.
    public func redrive(namespace: String, trigger: String? = nil, eventSeqs: [Int64]? = nil) throws(EventingError) -> Int {
        let reopened: [OpenDelivery]
        do {
            reopened = try store.redriveDeliveries(
                namespace: namespace, triggerName: trigger, eventSeqs: eventSeqs, triggerUIDs: directory.triggerUIDs(),
                now: Date().timeIntervalSince1970)
        } catch {
            throw EventingError(.storage, "\(error)")
        }
        dispatcher.enqueue(reopened)
        return reopened.count
    }
}

/// Lets the log writer's callback reach the dispatcher built after it.
private final class DispatcherBox: @unchecked Sendable {
    // Written once during EventingSystem.init, before the writer thread starts.
    var dispatcher: Dispatcher?
}
