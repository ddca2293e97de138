@testable import Eventing
import Foundation
import Logging
import Store
import Synchronization
import Testing

/// The log writer's progress barrier, which a dispatcher reload waits on before it reads which
/// deliveries are still open; where commits run.
@Suite struct EventLogWriterTests {
    static func events(_ id: String) -> [NewEvent] {
        [NewEvent(namespace: "default", broker: "main", eventId: id, source: "/s", type: "t", payload: [1], triggers: [])]
    }

    /// Submits and waits; returns the submitting and the completing thread.
    static func submit(_ writer: EventLogWriter, _ id: String, _ durability: CommitDurability) async -> (pthread_t, pthread_t, Bool) {
        await withCheckedContinuation { continuation in
            let submitter = pthread_self()
            let accepted = writer.submit(events(id), durability: durability) { result in
                continuation.resume(returning: (submitter, pthread_self(), (try? result.get()) != nil))
            }
            if !accepted { continuation.resume(returning: (submitter, submitter, false)) }
        }
    }

    @Test func aRequestThatFindsTheLogIdleCommitsOnTheSubmittingThread() throws {
        let store = try Store(inMemory: ())
        let writer = EventLogWriter(store: store, logger: Logger(label: "test")) { _ in }
        writer.start()
        defer { writer.stop() }
        let submitter = pthread_self()
        let completed = Mutex<(pthread_t, Bool)?>(nil)
        #expect(writer.submit(Self.events("1"), durability: .normal) { result in
            completed.withLock { $0 = (pthread_self(), (try? result.get()) != nil) }
        })
        // Done before submit returned, on this thread.
        let (thread, ok) = try #require(completed.withLock { $0 })
        #expect(thread == submitter && ok)
        #expect(try store.eventLogCounts().events == 1)
    }

    @Test func aRequestRightBehindACommitOrOneThatFsyncsGoesToTheWriterThread() async throws {
        let store = try Store(inMemory: ())
        // Idle for an hour before a submitter commits: every commit after the first is "right behind".
        let writer = EventLogWriter(store: store, inlineAfterIdle: .seconds(3600), logger: Logger(label: "test")) { _ in }
        writer.start()
        defer { writer.stop() }
        let first = await Self.submit(writer, "1", .normal)
        #expect(first.0 == first.1 && first.2)
        let second = await Self.submit(writer, "2", .normal)
        #expect(second.0 != second.1 && second.2)

        let eager = EventLogWriter(store: store, inlineAfterIdle: .zero, logger: Logger(label: "test")) { _ in }
        eager.start()
        defer { eager.stop() }
        let fsynced = await Self.submit(eager, "3", .full)
        #expect(fsynced.0 != fsynced.1 && fsynced.2)
        #expect(try store.eventLogCounts().events == 3)
    }

    @Test func aBarrierRunsOnlyAfterTheProgressQueuedBeforeItIsCommitted() async throws {
        let store = try Store(inMemory: ())
        let writer = EventLogWriter(store: store, logger: Logger(label: "test")) { _ in }
        writer.start()
        defer { writer.stop() }
        let trigger = TriggerRef(uid: "u", name: "t")
        let seqs: [Int64] = try await withCheckedThrowingContinuation { continuation in
            let events = (0..<200).map {
                NewEvent(namespace: "default", broker: "main", eventId: "\($0)", source: "/s", type: "t", payload: [1], triggers: [trigger])
            }
            let accepted = writer.submit(events, durability: .normal) { continuation.resume(with: $0) }
            #expect(accepted)
        }
        #expect(try store.eventLogCounts().openDeliveries == 200)
        // Each outcome is queued and a barrier right behind it: when the barrier runs, the
        // delivery no longer reads as open.
        let stillOpen = Mutex<[Int64]>([])
        for seq in seqs {
            writer.record([DeliveryProgress(eventSeq: seq, triggerUID: trigger.uid, state: .delivered, attempts: 1, nextAttemptAt: 0, lastStatus: 204, lastError: nil)])
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                writer.afterQueuedProgress {
                    if (try? store.openDeliveries(afterSeq: seq - 1, limit: 1).first?.eventSeq) == seq {
                        stillOpen.withLock { $0.append(seq) }
                    }
                    done.resume()
                }
            }
        }
        #expect(stillOpen.withLock { $0 }.isEmpty)
        #expect(try store.eventLogCounts().openDeliveries == 0)
    }

    @Test func aBarrierAfterStopRunsAtOnce() async throws {
        let writer = EventLogWriter(store: try Store(inMemory: ()), logger: Logger(label: "test")) { _ in }
        writer.start()
        writer.stop()
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            writer.afterQueuedProgress { done.resume() }
        }
    }
}
