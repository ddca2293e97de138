public import Foundation
import Glibc

/// Where the built `outpost` and `outpost-echo` binaries are: `$OUTPOST_BIN_DIR`, else the folder
/// of the running test bundle (SwiftPM puts products beside it).
public enum Binaries {
    /// The products folder.
    public static var directory: String {
        if let override = ProcessInfo.processInfo.environment["OUTPOST_BIN_DIR"] { return override }
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = runner.deletingLastPathComponent()
        // On Linux the runner is `<bin>/OutpostPackageTests.xctest`; on macOS it sits inside the bundle.
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("outpost").path), folder.path != "/" {
            folder.deleteLastPathComponent()
        }
        return folder.path
    }

    /// The daemon and CLI.
    public static var outpost: String { "\(directory)/outpost" }
    /// The sample workload.
    public static var echo: String { "\(directory)/outpost-echo" }
}

/// A free TCP port on 127.0.0.1 (the kernel's choice, released before return).
public func freePort() -> Int {
    guard let (fd, port) = loopbackSocket(listening: false) else { return 0 }
    close(fd)
    return port
}

/// A TCP socket bound to a port of the kernel's choice on 127.0.0.1, listening if asked; the
/// caller closes it.
public func loopbackSocket(listening: Bool) -> (fd: Int32, port: Int)? {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return nil }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(fd, $0, length) == 0 && (!listening || listen(fd, 16) == 0) && getsockname(fd, $0, &length) == 0
        }
    }
    guard bound else {
        close(fd)
        return nil
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

/// Whether a process with this pid exists (and is not a zombie).
public func processIsAlive(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
          let close = stat.lastIndex(of: ")") else { return false }
    let state = stat[stat.index(close, offsetBy: 2)]
    return state != "Z" && state != "X"
}

/// What a finished command printed.
public struct CommandResult: Sendable {
    /// Exit code (128 + signal when killed).
    public var status: Int32
    /// Standard output.
    public var stdout: String
    /// Standard error.
    public var stderr: String
}

/// Runs a program to completion and captures its output.
public func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)) throws -> CommandResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env["SWIFT_BACKTRACE"] = "enable=no"
    for (key, value) in environment { env[key] = value }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Read both pipes fully before waiting so that a large output cannot block the child.
    nonisolated(unsafe) var errData = Data()
    let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
    errReader.start()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let deadline = ContinuousClock.now + timeout
    while process.isRunning {
        if ContinuousClock.now > deadline { process.terminate() }
        usleep(2_000)
    }
    while !errReader.isFinished { usleep(1_000) }
    return CommandResult(
        status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
}

/// Runs blocking test code (sockets, sleeps, child processes) on a thread of its own, so that it
/// never occupies Swift's cooperative pool (two threads on two cores), which the async tests
/// running beside it need.
public func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.stackSize = 1 << 20
        thread.start()
    }
}
