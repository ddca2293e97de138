import Foundation
import Logging
import Store

/// A batch of events from one request, waiting for the log writer.
struct PendingAppend {
    var events: [NewEvent]
    var durability: CommitDurability
    var completion: @Sendable (Result<[Int64], StoreError>) -> Void
}

/// The one writer of the event log: a thread that commits whatever has queued up since its
/// last commit in one SQLite transaction (group commit), then acknowledges every request in it.
///
/// Nothing waits on purpose: while one commit (and its fsync) runs, new events queue, and the
/// next commit takes them all. One producer at a time gets one commit per event; many in flight
/// share commits, which is where the throughput comes from. A commit is `synchronous=FULL` when
/// any of its events belongs to an fsync broker, else `NORMAL`.
///
/// When the log has been idle a while (nothing queued, no commit for `inlineAfterIdle`), a
/// request whose events need no fsync is committed on the thread that submits it (the gateway's
/// event loop), and its completion runs there: one producer at a time then pays no handoff to
/// this thread and back, two cross-CPU wakeups per event. A commit that fsyncs always runs
/// here, off the event loops.
///
/// The queue is bounded: ``submit(_:durability:completion:)`` refuses when it is full, and the
/// ingress answers 429 with `Retry-After`. Delivery progress is queued without a bound because
/// the dispatcher's in-flight limit bounds it already.
final class EventLogWriter: @unchecked Sendable {
    // Everything mutable is guarded by `condition`.
    private let condition = NSCondition()
    private var appends: [PendingAppend] = []
    private var queuedEvents = 0
    private var progress: [DeliveryProgress] = []
    /// Called once the progress queued before them is committed.
    private var barriers: [@Sendable () -> Void] = []
    private var stopping = false
    private var stopped = false
    /// A commit is running, on this thread or on a submitting one.
    private var committing = false
    /// When the last commit ended (uptime nanoseconds); nil before the first.
    private var lastCommitEnd: UInt64?
    private var thread: Thread?

    private let store: Store
    private let maxQueuedEvents: Int
    private let maxEventsPerCommit: Int
    /// How long the log must have been idle before a submitting thread commits for itself, in
    /// nanoseconds. Under load commits follow one another closely, and one committed on an
    /// event loop holds up every other request on that loop: wrk at 64 connections made
    /// 15–17 k requests/s with no idle bound, 18–21 k with 100 µs, as many as without inline
    /// commits.
    private let inlineAfterIdle: UInt64
    private let logger: Logger
    private let clock: @Sendable () -> Double
    /// Called after each commit with the new events and their sequence numbers, on the thread
    /// that committed them (the writer's, or a submitting one).
    private let onCommitted: @Sendable ([(NewEvent, Int64)]) -> Void

    init(
        store: Store, maxQueuedEvents: Int = 16_384, maxEventsPerCommit: Int = 4_096, inlineAfterIdle: Duration = .microseconds(100),
        logger: Logger,
        clock: @escaping @Sendable () -> Double = { Date().timeIntervalSince1970 },
        onCommitted: @escaping @Sendable ([(NewEvent, Int64)]) -> Void
    ) {
        self.store = store
        self.maxQueuedEvents = maxQueuedEvents
        self.maxEventsPerCommit = maxEventsPerCommit
        self.inlineAfterIdle = UInt64(max(0, inlineAfterIdle.totalNanoseconds ?? .max))
        self.logger = logger
        self.clock = clock
        self.onCommitted = onCommitted
    }

    /// Starts the writer thread.
    func start() {
        let thread = Thread { [self] in
            Thread.current.name = "event-log"
            run()
        }
        thread.qualityOfService = .userInitiated
        condition.lock()
        self.thread = thread
        condition.unlock()
        thread.start()
    }

    /// Queues events for the next commit; `completion` runs on the writer thread once they are
    /// committed (or the commit failed), or on this thread before `submit` returns when they are
    /// committed here. Returns false, without calling `completion`, when the queue is full or the
    /// writer has stopped.
    func submit(_ events: [NewEvent], durability: CommitDurability, completion: @escaping @Sendable (Result<[Int64], StoreError>) -> Void) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, queuedEvents + events.count <= maxQueuedEvents || queuedEvents == 0 else { return false }
        let append = PendingAppend(events: events, durability: durability, completion: completion)
        if durability == .normal && thread != nil && !committing && appends.isEmpty && progress.isEmpty && barriers.isEmpty
            && lastCommitEnd.map({ DispatchTime.now().uptimeNanoseconds &- $0 >= inlineAfterIdle }) ?? true {
            committing = true
            condition.unlock()
            _ = commit([append], progress: [])
            condition.lock()
            commitEnded()
            // The writer thread waits for this commit to end if work queued meanwhile; with none,
            // waking it would only cost it a futile round trip through the scheduler.
            if !appends.isEmpty || !progress.isEmpty || !barriers.isEmpty || stopping { condition.broadcast() }
            return true
        }
        appends.append(append)
        queuedEvents += events.count
        condition.signal()
        return true
    }

    /// Queues a change to delivery rows for the next commit.
    func record(_ items: [DeliveryProgress]) {
        guard !items.isEmpty else { return }
        condition.lock()
        progress.append(contentsOf: items)
        condition.signal()
        condition.unlock()
    }

    /// Calls `done` (on the writer thread) once every delivery progress queued so far is
    /// committed; at once when the writer has stopped.
    func afterQueuedProgress(_ done: @escaping @Sendable () -> Void) {
        condition.lock()
        guard !stopped else {
            condition.unlock()
            done()
            return
        }
        barriers.append(done)
        condition.signal()
        condition.unlock()
    }

    /// Events waiting for a commit.
    var backlog: Int {
        condition.lock()
        defer { condition.unlock() }
        return queuedEvents
    }

    /// Commits what is queued, then stops the thread. Blocks until it has.
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while thread != nil && !stopped { condition.wait() }
        condition.unlock()
    }

    /// Notes that the running commit ended (the lock held).
    private func commitEnded() {
        committing = false
        lastCommitEnd = DispatchTime.now().uptimeNanoseconds
    }

    private func run() {
        while true {
            condition.lock()
            while committing || (appends.isEmpty && progress.isEmpty && barriers.isEmpty && !stopping) { condition.wait() }
            if appends.isEmpty && progress.isEmpty && stopping {
                stopped = true
                let waiting = barriers
                barriers = []
                condition.broadcast()
                condition.unlock()
                for done in waiting { done() }
                return
            }
            let batch = takeBatch()
            let items = progress
            progress = []
            let waiting = barriers
            barriers = []
            committing = true
            condition.unlock()
            let committed = (batch.isEmpty && items.isEmpty) || commit(batch, progress: items)
            if committed {
                for done in waiting { done() }
            }
            condition.lock()
            commitEnded()
            // The progress was put back for the next commit; so are its barriers.
            if !committed { barriers.insert(contentsOf: waiting, at: 0) }
            condition.unlock()
        }
    }

    /// Takes whole requests up to ``maxEventsPerCommit`` events (at least one request).
    private func takeBatch() -> [PendingAppend] {
        var count = 0
        var taken = 0
        for append in appends {
            if taken > 0 && count + append.events.count > maxEventsPerCommit { break }
            count += append.events.count
            taken += 1
        }
        let batch = Array(appends.prefix(taken))
        appends.removeFirst(taken)
        queuedEvents -= count
        return batch
    }

    /// Commits one batch; false when the commit failed.
    private func commit(_ batch: [PendingAppend], progress: [DeliveryProgress]) -> Bool {
        var events: [NewEvent] = []
        events.reserveCapacity(batch.reduce(0) { $0 + $1.events.count })
        var durability = CommitDurability.normal
        for append in batch {
            events.append(contentsOf: append.events)
            if append.durability == .full { durability = .full }
        }
        do {
            let seqs = try store.commitEventLog(appending: events, progress: progress, durability: durability, now: clock())
            var offset = 0
            for append in batch {
                append.completion(.success(Array(seqs[offset..<offset + append.events.count])))
                offset += append.events.count
            }
            if !events.isEmpty { onCommitted(Array(zip(events, seqs))) }
            return true
        } catch {
            let storeError = error as? StoreError ?? StoreError(.storage, "\(error)")
            logger.error("event log commit failed", metadata: ["error": "\(storeError)", "events": "\(events.count)"])
            for append in batch { append.completion(.failure(storeError)) }
            if !progress.isEmpty {
                // Delivery progress is not acknowledged to anyone; put it back for the next commit.
                record(progress)
                Thread.sleep(forTimeInterval: 0.1)
            }
            return false
        }
    }
}
