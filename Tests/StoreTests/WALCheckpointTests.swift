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
