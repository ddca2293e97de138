import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Store
import Synchronization

/// One delivery of one event to one trigger's subscriber (or, after the subscriber attempts are
/// used up, to its dead-letter sink), as the dispatcher carries it.
struct DeliveryJob: Sendable {
    var eventSeq: Int64
    var namespace: String
    var broker: String
    var trigger: TriggerRef
    /// Attempts go to the dead-letter sink.
    var toDeadLetter = false
    /// Attempts made so far at the current target.
    var attempts = 0
    var payload: [UInt8]
    /// Attempts made to the subscriber (what the log shows once dead-lettering starts).
    var subscriberAttempts = 0
    /// The subscriber's last status and answer (the body, or the network error), for the
    /// dead-letter extensions and the log.
    var subscriberStatus: Int?
    var subscriberError: String?
    /// `partitionkey` of the event, for ordered triggers.
    var partition: String?

    var key: DeliveryKey { DeliveryKey(seq: eventSeq, trigger: trigger.uid) }

    init(_ delivery: OpenDelivery) {
        eventSeq = delivery.eventSeq
        namespace = delivery.namespace
        broker = delivery.broker
        trigger = delivery.trigger
        toDeadLetter = delivery.state == .deadLetterPending
        // The log counts subscriber attempts; dead-letter attempts start over after a restart.
        attempts = toDeadLetter ? 0 : delivery.attempts
        subscriberAttempts = delivery.attempts
        payload = delivery.payload
        subscriberStatus = delivery.lastStatus
        subscriberError = delivery.lastError
    }
}

struct DeliveryKey: Hashable, Sendable {
    var seq: Int64
    var trigger: String
}

/// Sends committed deliveries to subscribers over HTTP, with Knative's retry, backoff,
/// timeout and dead-letter semantics, and records every outcome in the event log.
///
/// Each trigger has a queue with a bound on deliveries in flight (its parallelism). An ordered
/// trigger keeps one delivery in flight per `partitionkey` (including its retries), so events of
/// a partition arrive in log order. Deliveries waiting for a retry hold no in-flight slot and
/// sit on an event-loop timer.
///
/// Memory is bounded: at most `maxBuffered` deliveries are held. When more are committed, the
/// rest stay only in SQLite and are paged in once the queues have drained to half. After a
/// restart every open delivery is paged in the same way, so nothing committed is lost.
final class Dispatcher: Sendable {
    struct TriggerQueue {
        var waiting = CircularBuffer<DeliveryJob>()
        /// Retries that are due, and dead-letter hand-offs: they go before new work.
        var due = CircularBuffer<DeliveryJob>()
        var inFlight = 0
        /// Ordered triggers: jobs per partition, partitions with work and no job out.
        var partitions: [String: CircularBuffer<DeliveryJob>] = [:]
        var busy: Set<String> = []
        var runnable = CircularBuffer<String>()

        var isIdle: Bool { waiting.isEmpty && due.isEmpty && inFlight == 0 && partitions.isEmpty && busy.isEmpty }
    }

    private struct State {
        var queues: [String: TriggerQueue] = [:]
        var known: Set<DeliveryKey> = []
        var spilled = false
        var reloading = false
        /// Deliveries that ended while a reload ran. Their rows may still read as open (the
        /// outcome is committed a moment later), so the reload must not take them again.
        var finishedWhileReloading: Set<DeliveryKey> = []
        var stopped = false
    }

    private let state = Mutex(State())
    private let directory: EventingDirectory
    private let writer: EventLogWriter
    private let store: Store
    private let sender: EventSender
    private let logger: Logger
    private let maxBuffered: Int
    private let metrics: EventingMetrics?
    private let clock: @Sendable () -> Double
    /// Stores reply events in the broker; returns an error message when they were not stored.
    private let storeReplies: @Sendable ([CloudEvent], BrokerKey) async -> String?

    /// How much of a failing subscriber's answer goes into `knativeerrordata`.
    static let maxErrorDataBytes = 1024

    init(
        directory: EventingDirectory, writer: EventLogWriter, store: Store, sender: EventSender, logger: Logger, maxBuffered: Int = 50_000,
        metrics: EventingMetrics? = nil, clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        storeReplies: @escaping @Sendable ([CloudEvent], BrokerKey) async -> String?
    ) {
        self.directory = directory
        self.writer = writer
        self.store = store
        self.sender = sender
        self.logger = logger
        self.maxBuffered = maxBuffered
        self.metrics = metrics
        self.clock = clock
        self.storeReplies = storeReplies
    }

    /// Deliveries held in memory (queued, in flight or waiting for a retry).
    var buffered: Int { state.withLock { $0.known.count } }

    /// Pages in every open delivery from the log (after a restart).
    func recover() {
        state.withLock { $0.spilled = true }
        reloadIfNeeded()
    }

    /// Stops starting deliveries; in-flight ones finish and record their outcome.
    func stop() {
        state.withLock { $0.stopped = true }
    }

    /// Takes deliveries of events the log writer has just committed.
    func enqueue(committed: [(NewEvent, Int64)]) {
        var jobs: [DeliveryJob] = []
        for (event, seq) in committed {
            for trigger in event.triggers {
                jobs.append(DeliveryJob(OpenDelivery(
                    eventSeq: seq, namespace: event.namespace, broker: event.broker, trigger: trigger, state: .pending, attempts: 0,
                    nextAttemptAt: 0, payload: event.payload)))
            }
        }
        enqueue(jobs)
    }

    /// Takes deliveries (new, reloaded or redriven); ones already held are ignored, and so are
    /// ones that ended during the current reload when `reloaded`.
    func enqueue(_ jobs: [DeliveryJob], reloaded: Bool = false) {
        guard !jobs.isEmpty else { return }
        var touched: Set<String> = []
        state.withLock { state in
            for var job in jobs where !state.known.contains(job.key) {
                if reloaded && state.finishedWhileReloading.contains(job.key) { continue }
                if state.known.count >= maxBuffered {
                    state.spilled = true
                    continue
                }
                state.known.insert(job.key)
                let route = directory.trigger(uid: job.trigger.uid)
                if route?.ordered == true { job.partition = Self.partition(of: job.payload) }
                state.queues[job.trigger.uid, default: TriggerQueue()].append(job)
                touched.insert(job.trigger.uid)
            }
        }
        pump(touched)
    }

    /// Reopened deliveries whose next attempt lies in the future wait on a timer first.
    func enqueue(_ deliveries: [OpenDelivery], reloaded: Bool = false) {
        let now = clock()
        var ready: [DeliveryJob] = []
        for delivery in deliveries {
            let job = DeliveryJob(delivery)
            if delivery.nextAttemptAt > now + 0.001 {
                var waiting = job
                if directory.trigger(uid: job.trigger.uid)?.ordered == true { waiting.partition = Self.partition(of: job.payload) }
                let accepted = state.withLock { state -> Bool in
                    guard state.known.count < maxBuffered else {
                        state.spilled = true
                        return false
                    }
                    if reloaded && state.finishedWhileReloading.contains(job.key) { return false }
                    guard state.known.insert(job.key).inserted else { return false }
                    // The partition waits for this retry before its next event goes out.
                    if let partition = waiting.partition { state.queues[job.trigger.uid, default: TriggerQueue()].busy.insert(partition) }
                    return true
                }
                if accepted { scheduleRetry(waiting, at: delivery.nextAttemptAt) }
            } else {
                ready.append(job)
            }
        }
        enqueue(ready, reloaded: reloaded)
    }

    // MARK: Scheduling

    /// Starts as many deliveries of the given triggers as their parallelism allows.
    private func pump(_ triggers: Set<String>) {
        guard !triggers.isEmpty else { return }
        var starts: [DeliveryJob] = []
        state.withLock { state in
            guard !state.stopped else { return }
            for uid in triggers {
                let limit = max(1, directory.trigger(uid: uid)?.parallelism ?? 1)
                // Mutated in place through the dictionary: a copied-out queue would share its
                // buffers and copy them whole on the first pop.
                while let job = state.queues[uid]?.take(limit: limit) { starts.append(job) }
            }
        }
        for job in starts {
            Task { await self.deliver(job) }
        }
    }

    /// Ends a delivery: frees its slot and partition, forgets it, and starts what can start.
    private func finish(_ job: DeliveryJob, holdsSlot: Bool = true) {
        let reload = state.withLock { state -> Bool in
            state.known.remove(job.key)
            if state.reloading { state.finishedWhileReloading.insert(job.key) }
            let uid = job.trigger.uid
            if holdsSlot { state.queues[uid]?.inFlight -= 1 }
            if let partition = job.partition { state.queues[uid]?.release(partition) }
            if state.queues[uid]?.isIdle == true { state.queues[uid] = nil }
            return state.spilled && !state.reloading && state.known.count <= maxBuffered / 2
        }
        pump([job.trigger.uid])
        if reload { reloadIfNeeded() }
    }

    /// Gives up the in-flight slot of a job that waits for a retry; the job comes back when due.
    private func scheduleRetry(_ job: DeliveryJob, at time: Double, releasingSlot: Bool = false) {
        if releasingSlot {
            state.withLock { state in state.queues[job.trigger.uid]?.inFlight -= 1 }
            pump([job.trigger.uid])
        }
        let delay = max(0, time - clock())
        sender.client.eventLoopGroup.any().scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { [self] in
            retryDue(job)
        }
    }

    private func retryDue(_ job: DeliveryJob) {
        state.withLock { state in
            state.queues[job.trigger.uid, default: TriggerQueue()].due.append(job)
        }
        pump([job.trigger.uid])
    }

    /// Pages open deliveries in from the log while the dispatcher has room.
    private func reloadIfNeeded() {
        let start = state.withLock { state -> Bool in
            guard state.spilled, !state.reloading, !state.stopped else { return false }
            state.reloading = true
            state.spilled = false
            return true
        }
        guard start else { return }
        Task {
            // Outcomes of deliveries that ended before this reload must be in the log before it
            // reads; later ones are in `finishedWhileReloading`.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                writer.afterQueuedProgress { done.resume() }
            }
            var after: Int64 = 0
            var afterTrigger: String?
            while true {
                let room = maxBuffered - buffered
                guard room > maxBuffered / 4 else {
                    state.withLock { $0.spilled = true }
                    break
                }
                let page: [OpenDelivery]
                do {
                    page = try store.openDeliveries(afterSeq: after, afterTrigger: afterTrigger, limit: min(room, 5_000))
                } catch {
                    logger.error("cannot read open deliveries", metadata: ["error": "\(error)"])
                    state.withLock { $0.spilled = true }
                    try? await Task.sleep(for: .seconds(1))
                    break
                }
                guard let last = page.last else { break }
                after = last.eventSeq
                afterTrigger = last.trigger.uid
                enqueue(page, reloaded: true)
            }
            let again = state.withLock { state -> Bool in
                state.reloading = false
                state.finishedWhileReloading = []
                return state.spilled && state.known.count <= maxBuffered / 2
            }
            if again { reloadIfNeeded() }
        }
    }

    static func partition(of payload: [UInt8]) -> String {
        guard let event = try? CloudEvent(storageBytes: payload) else { return "" }
        return event.extensions["partitionkey"]?.canonicalString ?? ""
    }

    // MARK: One attempt

    private func deliver(_ job: DeliveryJob) async {
        guard let route = directory.trigger(uid: job.trigger.uid) else {
            record(job, .dropped, status: nil, error: "the trigger was deleted")
            finish(job)
            return
        }
        guard let event = try? CloudEvent(storageBytes: job.payload) else {
            record(job, .dropped, status: nil, error: "the stored event cannot be decoded")
            finish(job)
            return
        }
        let target = job.toDeadLetter ? route.deadLetterSink : route.subscriber
        guard let target else {
            record(job, .dropped, status: job.subscriberStatus, error: job.subscriberError ?? "no dead-letter sink")
            finish(job)
            return
        }
        var outgoing = event
        let ttl = outgoing.extensions.removeValue(forKey: BrokerIngress.ttlExtension)
        if job.toDeadLetter {
            outgoing.extensions["knativeerrordest"] = .string(route.subscriber.display)
            if let code = job.subscriberStatus { outgoing.extensions["knativeerrorcode"] = .integer(Int32(clamping: code)) }
            if job.subscriberStatus != nil, let data = job.subscriberError, !data.isEmpty {
                outgoing.extensions["knativeerrordata"] = .string(Self.errorData(data))
            }
        }
        var result = await sender.send(
            outgoing, to: target, timeout: route.delivery.attemptTimeout, wantsReply: !job.toDeadLetter, format: route.delivery.format)
        if let problem = result.problem {
            logger.warning("delivery attempt failed", metadata: [
                "namespace": "\(job.namespace)", "broker": "\(job.broker)", "trigger": "\(job.trigger.name)", "id": "\(event.id)",
                "problem": "\(problem)",
            ])
        }
        if !job.toDeadLetter, let replies = result.replies, !replies.isEmpty, BrokerIngress.hopBudgetUsedUp(ttl) {
            // Knative drops a reply that has no hop left: the delivery itself succeeded, and
            // retrying it would only call the subscriber again for a reply that is refused again.
            logger.info("reply dropped: the event has used up its hop budget (a loop?)", metadata: [
                "namespace": "\(job.namespace)", "broker": "\(job.broker)", "trigger": "\(job.trigger.name)", "replies": "\(replies.count)",
            ])
        } else if !job.toDeadLetter, let replies = result.replies, !replies.isEmpty {
            let stamped = replies.map { reply -> CloudEvent in
                var reply = reply
                if let ttl { reply.extensions[BrokerIngress.ttlExtension] = ttl }
                return reply
            }
            if let problem = await storeReplies(stamped, BrokerKey(namespace: job.namespace, name: job.broker)) {
                // Knative: a reply that cannot be stored fails the whole delivery, which is retried.
                result = EventSender.Result(status: 500, error: "the reply was not stored: \(problem)")
            }
        }
        var machine = DeliveryStateMachine(
            policy: route.delivery,
            restoring: job.toDeadLetter ? .deadLettering(attempt: job.attempts + 1) : .pending(attempt: job.attempts + 1),
            target: job.toDeadLetter ? .deadLetterSink : .subscriber, attempt: job.attempts + 1,
            subscriberErrorCode: job.subscriberStatus)
        let now = clock()
        let action = machine.attemptFinished(status: result.status, retryAfter: result.retryAfter, now: now)
        var next = job
        next.attempts += 1
        switch action {
        case .complete:
            record(next, job.toDeadLetter ? .deadLettered : .delivered, status: result.status, error: nil)
            finish(job)
        case .scheduleRetry(let at, _):
            if !job.toDeadLetter {
                next.subscriberAttempts = next.attempts
                next.subscriberStatus = result.status
                next.subscriberError = result.error
            }
            record(next, job.toDeadLetter ? .deadLetterPending : .pending, status: result.status, error: result.error, nextAttemptAt: at)
            scheduleRetry(next, at: at, releasingSlot: true)
        case .sendToDeadLetter:
            next.toDeadLetter = true
            next.subscriberAttempts = next.attempts
            next.attempts = 0
            next.subscriberStatus = result.status
            next.subscriberError = result.error
            record(next, .deadLetterPending, status: result.status, error: result.error, nextAttemptAt: now)
            state.withLock { state in
                state.queues[job.trigger.uid]?.inFlight -= 1
                state.queues[job.trigger.uid, default: TriggerQueue()].due.append(next)
            }
            pump([job.trigger.uid])
        case .drop:
            record(next, .dropped, status: result.status, error: result.error ?? "gave up")
            finish(job)
        }
    }

    /// Writes a delivery's new state. Once dead-lettering has started, the row keeps showing the
    /// subscriber's attempts and last answer (what a person looking at the dead letters needs);
    /// a dead-letter sink that fails too is mentioned in the error.
    private func record(_ job: DeliveryJob, _ state: DeliveryState, status: Int?, error: String?, nextAttemptAt: Double = 0) {
        var attempts = job.attempts
        var lastStatus = status
        var lastError = error
        if job.toDeadLetter {
            attempts = job.subscriberAttempts
            lastStatus = job.subscriberStatus
            lastError = job.subscriberError
            if state != .deadLettered, let error {
                lastError = (lastError.map { $0 + "; " } ?? "") + "dead-letter sink: " + error
            }
        }
        if !state.isOpen { metrics?.deliveryEnded(namespace: job.namespace, trigger: job.trigger.name, outcome: state.name) }
        writer.record([DeliveryProgress(
            eventSeq: job.eventSeq, triggerUID: job.trigger.uid, state: state, attempts: attempts, nextAttemptAt: nextAttemptAt,
            lastStatus: lastStatus, lastError: lastError.map { String($0.prefix(Self.maxErrorDataBytes)) })])
    }

    static func errorData(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        var bytes = 0
        for scalar in text.unicodeScalars {
            let size = UTF8.width(scalar)
            guard bytes + size <= maxErrorDataBytes else { break }
            bytes += size
            // Control characters are not allowed in CloudEvents strings.
            scalars.append(scalar.value < 0x20 || (0x7F...0x9F).contains(scalar.value) ? " " : scalar)
        }
        return String(scalars)
    }
}

extension Dispatcher.TriggerQueue {
    mutating func append(_ job: DeliveryJob) {
        guard let partition = job.partition else {
            waiting.append(job)
            return
        }
        let wasEmpty = partitions[partition]?.isEmpty ?? true
        partitions[partition, default: CircularBuffer()].append(job)
        if wasEmpty && !busy.contains(partition) { runnable.append(partition) }
    }

    /// Starts the next job if fewer than `limit` are in flight.
    mutating func take(limit: Int) -> DeliveryJob? {
        guard inFlight < limit, let job = next() else { return nil }
        inFlight += 1
        return job
    }

    /// The next job to start: due retries first, then new work (one per idle partition).
    mutating func next() -> DeliveryJob? {
        if let job = due.popFirst() { return job }
        if let job = waiting.popFirst() { return job }
        while let partition = runnable.popFirst() {
            guard var jobs = partitions[partition], let job = jobs.popFirst() else { continue }
            partitions[partition] = jobs.isEmpty ? nil : jobs
            busy.insert(partition)
            return job
        }
        return nil
    }

    /// A partition's job has ended: its next job may start.
    mutating func release(_ partition: String) {
        busy.remove(partition)
        if let jobs = partitions[partition], !jobs.isEmpty { runnable.append(partition) }
    }
}
