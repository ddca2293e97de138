import Foundation
import Glibc
import Logging
import Synchronization

/// Appends the gateway's access-log lines to a file (or standard error for `-`) from a thread of
/// its own, so an event loop never blocks on the file.
///
/// A `write(2)` to a file can block for milliseconds while the file system commits its journal
/// (under a broker's load at 64 connections, while the store fsyncs, single lines took 4–10 ms),
/// and an event loop blocked in it holds every connection it serves. Here the event loop only
/// appends the line to a buffer; the thread writes the buffer every ``flushInterval``, or sooner
/// once it holds ``flushBytes``. The buffer is bounded by ``maxBufferedBytes``: when the file
/// cannot keep up, further lines are dropped and counted, and the drop is logged once the
/// thread catches up. Lines are whole in the file, in the order their requests finished, and at
/// most one interval's worth is lost if the process is killed. ``stop()`` writes what is left.
/// ``reopen()`` (the daemon calls it on SIGHUP) makes the thread open the path again before
/// its next write: after logrotate renames the file, lines go to a new one.
final class AccessLogWriter: @unchecked Sendable {
    static let flushInterval: TimeInterval = 0.1
    static let flushBytes = 64 * 1024
    static let maxBufferedBytes = 4 * 1024 * 1024

    private let path: String
    /// Used by the thread only (and by ``stop()`` once the thread has ended).
    private var fd: Int32
    private let logger: Logger
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var reopenRequested = false
    private var buffer: [UInt8] = []
    private var dropped = 0
    private var stopping = false
    private var stopped = false
    /// Lines dropped so far because the buffer was full (or ``stop()`` had been called).
    let droppedLines = Atomic<Int>(0)

    init(path: String, logger: Logger) throws {
        self.path = path
        if path == "-" {
            fd = STDERR_FILENO
        } else {
            fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
            guard fd >= 0 else { throw DaemonError("cannot open the access log \(path): \(String(cString: strerror(errno)))") }
        }
        self.logger = logger
        buffer.reserveCapacity(Self.flushBytes * 2)
        let thread = Thread { [self] in
            Thread.current.name = "access-log"
            run()
        }
        thread.start()
    }

    /// Queues one line (without its newline).
    var sink: @Sendable (String) -> Void {
        { [self] line in append(line) }
    }

    func append(_ line: String) {
        let count = line.utf8.count + 1
        condition.lock()
        defer { condition.unlock() }
        guard !stopping, buffer.count + count <= Self.maxBufferedBytes else {
            dropped += 1
            droppedLines.add(1, ordering: .relaxed)
            return
        }
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        // Wake the thread for the first line after a write, and when a write's worth is queued.
        if buffer.count == count || (buffer.count >= Self.flushBytes && buffer.count - count < Self.flushBytes) {
            condition.signal()
        }
    }

    /// Makes the thread open the file's path again before its next write (no effect on `-`).
    func reopen() {
        condition.lock()
        reopenRequested = true
        condition.signal()
        condition.unlock()
    }

    /// Writes every line queued before the call, then ends the thread. Blocks until it has;
    /// lines that come later are dropped.
    func stop() {
        condition.lock()
        guard !stopping else {
            condition.unlock()
            return
        }
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
        if fd != STDERR_FILENO { close(fd) }
    }

    private func run() {
        var pending: [UInt8] = []
        pending.reserveCapacity(Self.flushBytes * 2)
        while true {
            condition.lock()
            // Idle, the thread sleeps until a line comes; then it gives others an interval to follow.
            while buffer.isEmpty && !stopping && !reopenRequested { condition.wait() }
            let deadline = Date().addingTimeInterval(Self.flushInterval)
            while buffer.count < Self.flushBytes && !stopping && !reopenRequested && condition.wait(until: deadline) {}
            swap(&buffer, &pending)
            let lost = dropped
            dropped = 0
            let last = stopping
            let reopening = reopenRequested
            reopenRequested = false
            condition.unlock()

            if reopening { reopenFile() }
            writeAll(pending)
            pending.removeAll(keepingCapacity: true)
            if lost > 0 {
                logger.warning("access log: dropped lines the file could not take in time", metadata: ["lines": "\(lost)"])
            }
            if last {
                condition.lock()
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
        }
    }

    private func reopenFile() {
        guard path != "-" else { return }
        let new = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard new >= 0 else {
            logger.error("access log: cannot open it again; writing on to the old file", metadata: [
                "path": "\(path)", "error": "\(String(cString: strerror(errno)))",
            ])
            return
        }
        close(fd)
        fd = new
        logger.info("access log reopened", metadata: ["path": "\(path)"])
    }

    private func writeAll(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 {
                    if errno == EINTR { continue }
                    logger.error("access log: write failed", metadata: ["error": "\(String(cString: strerror(errno)))"])
                    return
                }
                offset += n
            }
        }
    }
}
