import Foundation
import Glibc
import Logging
@testable import Platform
import Synchronization
import TestSupport
import Testing

@Suite struct AccessLogWriterTests {
    /// Lines from several threads reach the file whole, one per line, within a flush interval
    /// or so; after `stop()` every queued line is in the file and later lines are dropped.
    @Test func linesFromManyThreadsArriveWhole() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/access.log"
        let writer = try AccessLogWriter(path: path, logger: Logger(label: "test"))
        writer.append(#"{"first":true}"#)
        let deadline = Date().addingTimeInterval(10)
        while ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").isEmpty, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "{\"first\":true}\n", "written without stop()")

        let padding = String(repeating: "x", count: 300)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for i in 0..<2_000 { writer.append(#"{"thread":\#(thread),"i":\#(i),"pad":"\#(padding)"}"#) }
        }
        writer.stop()
        writer.append(#"{"late":true}"#)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 1 + 8_000 + 1, "8,000 lines, the first one and the empty string after the last newline")
        var next = [0, 0, 0, 0]
        for line in lines.dropFirst().dropLast() {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "a whole JSON line: \(line.prefix(80))")
            let thread = try #require(object["thread"] as? Int)
            #expect(object["i"] as? Int == next[thread], "each thread's lines in order")
            next[thread] += 1
        }
        #expect(next == [2_000, 2_000, 2_000, 2_000])
        #expect(writer.droppedLines.load(ordering: .relaxed) == 1, "only the line after stop()")
    }

    /// When the file does not take lines (here a pipe nobody reads), appending neither blocks
    /// nor grows without bound: past the buffer's cap lines are dropped and counted, and once the
    /// reader drains the pipe the queued lines follow.
    @Test func aStalledFileDropsLinesInsteadOfBlocking() throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = "\(directory.path)/access.fifo"
        #expect(mkfifo(path, 0o600) == 0)
        let reader = open(path, O_RDONLY | O_NONBLOCK)
        #expect(reader >= 0)
        defer { close(reader) }
        let writer = try AccessLogWriter(path: path, logger: Logger(label: "test"))

        let line = String(repeating: "y", count: 1_023)
        let lines = 2 * AccessLogWriter.maxBufferedBytes / 1_024
        let started = Date()
        for _ in 0..<lines { writer.append(line) }
        let elapsed = Date().timeIntervalSince(started)
        let dropped = writer.droppedLines.load(ordering: .relaxed)
        #expect(dropped > 0 && dropped < lines, "dropped \(dropped) of \(lines)")
        #expect(elapsed < 5, "appending \(lines) lines took \(elapsed) s")

        // Drain the pipe on another thread while stop() writes what is queued.
        let received = Atomic<Int>(0)
        let drained = Atomic<Bool>(false)
        let drainer = Thread {
            var chunk = [UInt8](repeating: 0, count: 65_536)
            while !drained.load(ordering: .relaxed) {
                let n = chunk.withUnsafeMutableBytes { read(reader, $0.baseAddress, $0.count) }
                if n > 0 { received.add(n, ordering: .relaxed) } else { Thread.sleep(forTimeInterval: 0.001) }
            }
        }
        drainer.start()
        writer.stop()
        let deadline = Date().addingTimeInterval(10)
        while received.load(ordering: .relaxed) < (lines - dropped) * 1_024, Date() < deadline {
            Thread.sleep(forTimeInterval: 0.01)
        }
        drained.store(true, ordering: .relaxed)
        #expect(received.load(ordering: .relaxed) == (lines - dropped) * 1_024, "every line that was not dropped, whole")
    }
}
