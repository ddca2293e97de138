import Foundation
import GRDB
@testable import Store
import TestSupport
import Synchronization
import Testing

@Suite struct WALCheckpointTests {
    /// Commits leave the checkpoint to the store's own thread: the writer checkpoints only past
    /// the backstop, and after a burst of event-log commits the thread has copied every WAL
    /// frame back into the database file.
    @Test func aBurstOfCommitsIsCheckpointedInTheBackground() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let store = try Store(path: "\(directory.path)/outpost.db")
        let checkpointer = try #require(store.checkpointer)
        #expect(try store.writer.writeWithoutTransaction { try Int.fetchOne($0, sql: "PRAGMA wal_autocheckpoint") }
                == WALCheckpointer.backstopPages)

        let payload = [UInt8](repeating: 120, count: 1024)
        for i in 0..<500 {
            _ = try store.commitEventLog(
                appending: [NewEvent(namespace: "default", broker: "main", eventId: "\(i)", source: "/s", type: "t", payload: payload, triggers: [])],
                progress: [], durability: .normal, now: 100)
        }
        let deadline = Date().addingTimeInterval(5)
        var frames = checkpointer.lastFrames.withLock { $0 }
        while !(frames.log > 0 && frames.checkpointed == frames.log), Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
            frames = checkpointer.lastFrames.withLock { $0 }
        }
        #expect(frames.log > 0 && frames.checkpointed == frames.log, "last checkpoint: \(frames)")
        #expect(checkpointer.runs.load(ordering: .relaxed) >= 1)
        #expect(try store.eventLogCounts().0 == 500)
    }
}

extension WALCheckpointTests {
    /// Under commits that never pause, a checkpoint from the thread's own connection never
    /// catches up with the writer, and the log only started over at the backstop (64 MiB) or
    /// later. The thread's last step on the writer's connection makes it start over near
    /// `restartFrames`: the WAL header's checkpoint sequence advances, and the file stays far
    /// below the backstop.
    @Test func aLogUnderSteadyCommitsStartsOverNearItsRestartLength() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/outpost.db"
        let restartFrames = 256
        let store = try Store(path: path, walRestartFrames: restartFrames)
        let checkpointer = try #require(store.checkpointer)

        let stop = Atomic<Bool>(false)
        let committed = Atomic<Int>(0)
        let failure = Mutex<String?>(nil)
        let producer = Thread {
            let payload = [UInt8](repeating: 120, count: 1024)
            var i = 0
            while !stop.load(ordering: .relaxed) {
                let events = (0..<4).map {
                    NewEvent(namespace: "default", broker: "main", eventId: "\(i)-\($0)", source: "/s", type: "t", payload: payload, triggers: [])
                }
                do {
                    _ = try store.commitEventLog(appending: events, progress: [], durability: .normal, now: 100)
                } catch {
                    failure.withLock { $0 = "\(error)" }
                    break
                }
                i += 1
                committed.add(4, ordering: .relaxed)
            }
            stop.store(true, ordering: .relaxed)
        }
        producer.start()

        let deadline = Date().addingTimeInterval(20)
        while committed.load(ordering: .relaxed) == 0, Date() < deadline, !stop.load(ordering: .relaxed) {
            Thread.sleep(forTimeInterval: 0.001)
        }
        let firstSequence = try Self.walCheckpointSequence(path + "-wal")
        var restarts = 0
        while restarts < 3, Date() < deadline, !stop.load(ordering: .relaxed) {
            Thread.sleep(forTimeInterval: 0.01)
            restarts = Int(try Self.walCheckpointSequence(path + "-wal") &- firstSequence)
        }
        stop.store(true, ordering: .relaxed)
        while producer.isExecuting { Thread.sleep(forTimeInterval: 0.01) }

        #expect(failure.withLock { $0 } == nil)
        #expect(restarts >= 3, "the log started over \(restarts) times under \(committed.load(ordering: .relaxed)) events")
        #expect(checkpointer.writerSteps.load(ordering: .relaxed) >= 1)
        // 4,096 frames (16 MiB) is far above the restart length and a quarter of the backstop.
        let walBytes = try #require(try FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int)
        #expect(walBytes < 4_096 * (4_096 + 24), "WAL file: \(walBytes) bytes")
        #expect(try store.eventLogCounts().0 == committed.load(ordering: .relaxed))
    }

    /// The checkpoint sequence number in a WAL file's header: it grows by one each time the
    /// log starts over.
    static func walCheckpointSequence(_ path: String) throws -> UInt32 {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let header = try #require(try handle.read(upToCount: 16))
        guard header.count == 16 else { return 0 }
        return header[12..<16].reduce(0) { $0 << 8 | UInt32($1) }
    }
}
