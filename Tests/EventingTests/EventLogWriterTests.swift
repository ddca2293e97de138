@testable import Eventing
import Foundation
import Logging
import Store
import Synchronization
import Testing

/// The log writer's progress barrier, which a dispatcher reload waits on before it reads which
/// deliveries are still open.
@Suite struct EventLogWriterTests {
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
