@testable import Eventing
import Store
import Testing

/// The per-trigger queue's ordering rules, without sockets: an ordered trigger keeps one job
/// out per partition; due retries go first.
@Suite struct TriggerQueueTests {
    func job(_ seq: Int64, partition: String?) -> DeliveryJob {
        var job = DeliveryJob(OpenDelivery(
            eventSeq: seq, namespace: "default", broker: "main", trigger: TriggerRef(uid: "u", name: "t"), state: .pending,
            attempts: 0, nextAttemptAt: 0, payload: []))
        job.partition = partition
        return job
    }

    @Test func orderedPartitionsHaveOneJobOutAtATime() {
        var queue = Dispatcher.TriggerQueue()
        for (seq, key) in [(1, "a"), (2, "a"), (3, "b"), (4, "a"), (5, "b")] { queue.append(job(Int64(seq), partition: key)) }
        // One per partition, in log order.
        #expect(queue.next()?.eventSeq == 1)
        #expect(queue.next()?.eventSeq == 3)
        #expect(queue.next() == nil)
        queue.release("a")
        #expect(queue.next()?.eventSeq == 2)
        #expect(queue.next() == nil)
        queue.release("b")
        queue.release("a")
        #expect(queue.next()?.eventSeq == 5)
        #expect(queue.next()?.eventSeq == 4)
        #expect(queue.next() == nil)
    }

    @Test func unorderedJobsComeInLogOrderAndDueRetriesFirst() {
        var queue = Dispatcher.TriggerQueue()
        for seq in 1...3 { queue.append(job(Int64(seq), partition: nil)) }
        #expect(queue.next()?.eventSeq == 1)
        queue.due.append(job(9, partition: nil))
        #expect(queue.next()?.eventSeq == 9)
        #expect(queue.next()?.eventSeq == 2)
        #expect(queue.next()?.eventSeq == 3)
        #expect(queue.next() == nil)
    }
}
