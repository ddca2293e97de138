import Foundation
import Glibc
@testable import Serving
import TestSupport
import Testing

@Suite struct LogFileTests {
    @Test func aLogPastItsLimitKeepsItsLastQuarterAndStartsAgain() throws {
        let directory = try TemporaryDirectory(prefix: "outpost-log")
        defer { directory.remove() }
        let path = "\(directory.path)/rev.log"
        // A writer like a worker's: O_APPEND, kept open across the cut.
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        defer { close(fd) }
        let line = Array("0123456789abcdef".utf8)
        for _ in 0..<100 { _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        #expect(LogFile.cap(path, limit: 4096) == nil, "1,600 bytes are under the limit")
        for _ in 0..<200 { _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        #expect(LogFile.cap(path, limit: 4096) == 1024)
        #expect(try Data(contentsOf: URL(fileURLWithPath: path + ".1")) == Data(Array(repeating: line, count: 64).joined()))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)).isEmpty)
        _ = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(line), "the writer goes on at the start")
    }
}
