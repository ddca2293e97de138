import Foundation
import GRDB
import GRDBSQLite
import Synchronization

/// Copies the write-ahead log back into the database file from a connection of its own, so
/// commits never wait for it, and makes the log start over once it has grown long.
///
/// With SQLite's default, the commit that takes the WAL past 1,000 pages runs the checkpoint
/// itself: it copies up to 4 MiB and fsyncs the database file before it returns, so one
/// commit in a few hundred took milliseconds (the ingest p99 of a broker). Here the writer's
/// automatic checkpoint is only a backstop (``backstopPages``), and this thread runs a PASSIVE
/// checkpoint at most every ``interval`` while commits arrive. A PASSIVE checkpoint never blocks
/// the writer or readers.
///
/// The log starts from its beginning again only at a write transaction that finds every frame
/// copied back. Under a steady stream of commits a checkpoint from this thread never gets there:
/// the writer appends frames while it copies. Left alone, the log grew past the backstop (to
/// 250 MiB under a broker's load at 64 connections), and the commit whose checkpoint finally got
/// there fsynced all of it while requests waited (tens of milliseconds). Also, a PASSIVE
/// checkpoint that does not reach the end of the log copies pages into the database file but
/// does not fsync it; the one that does reach the end fsyncs everything copied before.
///
/// So once the log holds ``restartFrames`` frames, this thread writes the copied pages to disk
/// and copies again (``catchUpRounds`` times), and then runs one last PASSIVE checkpoint on the
/// writer's own connection, between two commits: it copies and fsyncs only what arrived in the
/// last few milliseconds, and the next commit starts the log over. In two wrk runs at 64
/// connections (32 last steps, about three a second) that step held commits 1.2–1.3 ms at the
/// median and 2.9 ms at most.
final class WALCheckpointer: @unchecked Sendable {
    /// The writer checkpoints on its own only past this many WAL pages (64 MiB of 4 KiB pages),
    /// in case this thread falls behind.
    static let backstopPages = 16_384
    /// Commits within this window share one checkpoint.
    static let interval: TimeInterval = 0.02
    /// Rounds of flushing the database file and copying new frames before the last step.
    static let catchUpRounds = 2

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var pending = false
    private var stopping = false
    /// The thread has ended and closed its connection.
    private var finished = false

    private let connection: DatabaseQueue
    /// Weak: the store owns its writer, so the writer closes when the store goes, on the thread
    /// that lets it go, never later on this one.
    private weak var writer: (any DatabaseWriter)?
    /// The log length, in frames, at which this thread makes the log start over.
    let restartFrames: Int
    /// Checkpoints run so far.
    let runs = Atomic<Int>(0)
    /// Last steps run on the writer's connection so far.
    let writerSteps = Atomic<Int>(0)
    /// WAL frames and frames copied back, as the last checkpoint reported them (-1 before one).
    let lastFrames = Mutex<(log: Int, checkpointed: Int)>((-1, -1))

    /// - Parameters:
    ///   - writer: the store's writer; the last step before a restart runs on it.
    ///   - restartFrames: see ``restartFrames``.
    init(path: String, writer: any DatabaseWriter, restartFrames: Int) throws {
        var configuration = Configuration()
        configuration.label = "outpost-checkpoint"
        connection = try DatabaseQueue(path: path, configuration: configuration)
        self.writer = writer
        self.restartFrames = restartFrames
        let thread = Thread { [self] in
            Thread.current.name = "wal-checkpoint"
            loop()
        }
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

    /// Ends the thread after its current checkpoint, if any, and waits until it has closed its
    /// connection: a store opened again on the same file right after must not meet this one's
    /// connection closing (SQLite can then answer "database is locked" without waiting).
    func stop() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while !finished { condition.wait() }
        condition.unlock()
    }

    private func loop() {
        // After a last step that readers kept from copying every frame, the next one waits for
        // the log to grow a quarter of `restartFrames` more, so commits are not held each round.
        var nextRestartAt = restartFrames
        while true {
            condition.lock()
            while !pending && !stopping { condition.wait() }
            if stopping {
                try? connection.close()
                finished = true
                condition.broadcast()
                condition.unlock()
                return
            }
            pending = false
            condition.unlock()
            Thread.sleep(forTimeInterval: Self.interval)
            // A failed checkpoint leaves the WAL longer; the next one (or the backstop) catches up.
            guard let frames = checkpoint(on: connection) else { continue }
            if frames.log < restartFrames {
                nextRestartAt = restartFrames
                continue
            }
            guard frames.log >= nextRestartAt else { continue }
            // Each round writes the pages copied so far to disk and copies what arrived in the
            // meantime; the second round has only a few milliseconds' worth left.
            for _ in 0..<Self.catchUpRounds {
                flushDatabaseFile()
                _ = checkpoint(on: connection)
            }
            guard let writer, let last = checkpoint(on: writer) else { continue }
            writerSteps.add(1, ordering: .relaxed)
            nextRestartAt = last.checkpointed == last.log ? restartFrames : last.log + restartFrames / 4
        }
    }

    /// Writes the database file's dirty pages to disk from this thread's connection, so the
    /// fsync that ends a complete checkpoint finds little left to write.
    private func flushDatabaseFile() {
        connection.writeWithoutTransaction { db in
            var file: UnsafeMutablePointer<sqlite3_file>? = nil
            guard sqlite3_file_control(db.sqliteConnection, "main", SQLITE_FCNTL_FILE_POINTER, &file) == SQLITE_OK,
                  let file, let sync = file.pointee.pMethods?.pointee.xSync else { return }
            _ = sync(file, SQLITE_SYNC_NORMAL | SQLITE_SYNC_DATAONLY)
        }
    }

    private func checkpoint(on database: some DatabaseWriter) -> (log: Int, checkpointed: Int)? {
        defer { runs.add(1, ordering: .relaxed) }
        guard let result = try? database.writeWithoutTransaction({ db in try db.checkpoint(.passive) }) else { return nil }
        let frames = (log: result.walFrameCount, checkpointed: result.checkpointedFrameCount)
        lastFrames.withLock { $0 = frames }
        return frames
    }
}
