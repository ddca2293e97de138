import Foundation
import GRDB
import Synchronization

/// Copies the write-ahead log back into the database file from a connection of its own, so
/// commits never wait for it.
///
/// With SQLite's default, the commit that takes the WAL past 1,000 pages runs the checkpoint
/// itself: it copies up to 4 MiB and fsyncs the database file before it returns, so one
/// commit in a few hundred took milliseconds (the ingest p99 of a broker). Here the writer's
/// automatic checkpoint is only a backstop (``backstopPages``), and this thread runs a PASSIVE
/// checkpoint at most every ``interval`` while commits arrive. A PASSIVE checkpoint never blocks
/// the writer or readers, and the next write transaction after a complete one starts the WAL
/// from its beginning again. Idle, the thread sleeps.
final class WALCheckpointer: @unchecked Sendable {
    /// The writer checkpoints on its own only past this many WAL pages (64 MiB of 4 KiB pages),
    /// in case this thread falls behind.
    static let backstopPages = 16_384
    /// Commits within this window share one checkpoint.
    static let interval: TimeInterval = 0.02

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var pending = false
    private var stopping = false

    private let connection: DatabaseQueue
    /// Checkpoints run so far.
    let runs = Atomic<Int>(0)
    /// WAL frames and frames copied back, as the last checkpoint reported them (-1 before one).
    let lastFrames = Mutex<(log: Int, checkpointed: Int)>((-1, -1))

    init(path: String) throws {
        var configuration = Configuration()
        configuration.label = "outpost-checkpoint"
        connection = try DatabaseQueue(path: path, configuration: configuration)
        let thread = Thread { [self] in loop() }
        thread.name = "outpost-checkpoint"
        thread.start()
    }

    /// Tells the thread that a transaction committed.
    func noteCommit() {
        condition.lock()
        if !pending {
            pending = true
            condition.signal()
        }
        condition.unlock()
    }

    /// Ends the thread after its current checkpoint, if any.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while !pending && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                return
            }
            pending = false
            condition.unlock()
            Thread.sleep(forTimeInterval: Self.interval)
            // A failed checkpoint leaves the WAL longer; the next one (or the backstop) catches up.
            if let frames = try? connection.writeWithoutTransaction({ db in try db.checkpoint(.passive) }) {
                lastFrames.withLock { $0 = (frames.walFrameCount, frames.checkpointedFrameCount) }
            }
            runs.add(1, ordering: .relaxed)
        }
    }
}
