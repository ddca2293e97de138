import CWorkerSpawn
import Foundation
import Glibc

/// What a worker process is started with.
struct WorkerLaunch: Sendable {
    var executable: String
    var arguments: [String]
    var environment: [String: String]
    var workingDirectory: String?
    var logPath: String
}

/// Why a worker could not be started.
struct SpawnError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// Starts worker processes from one long-lived thread. Linux delivers PR_SET_PDEATHSIG when the
/// thread that forked exits, so forking from Swift's cooperative pool (whose threads come and go)
/// could kill healthy workers; this thread lives as long as the daemon.
final class WorkerSpawner: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []  // guarded by `condition`
    private var thread: Thread?

    init() {
        let thread = Thread { [unowned self] in
            Thread.current.name = "outpost-spawner"
            self.loop()
        }
        thread.stackSize = 256 * 1024
        self.thread = thread
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty { condition.wait() }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Starts the process; returns its pid.
    func spawn(_ launch: WorkerLaunch) async throws -> pid_t {
        try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            jobs.append { continuation.resume(with: Result { try Self.spawnNow(launch) }) }
            condition.signal()
            condition.unlock()
        }
    }

    private static func spawnNow(_ launch: WorkerLaunch) throws -> pid_t {
        guard let path = resolveExecutable(launch.executable, searchPath: launch.environment["PATH"]) else {
            throw SpawnError(message: "command \"\(launch.executable)\" not found (give an absolute path or a name on the daemon's PATH)")
        }
        let logFD = open(launch.logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard logFD >= 0 else {
            throw SpawnError(message: "cannot open log file \(launch.logPath): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }
        let argv = [path] + launch.arguments
        let envp = launch.environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        let pid = withCStrings(argv) { argvPointer in
            withCStrings(envp) { envPointer in
                outpost_spawn_worker(path, argvPointer, envPointer, launch.workingDirectory, logFD)
            }
        }
        guard pid > 0 else {
            let reason = String(cString: strerror(-pid))
            if let dir = launch.workingDirectory, -pid == ENOENT, !FileManager.default.fileExists(atPath: dir) {
                throw SpawnError(message: "working directory \(dir) does not exist")
            }
            throw SpawnError(message: "cannot start \(path): \(reason)")
        }
        return pid
    }

    /// An absolute path for `command`: as given when it contains a slash, else the first
    /// executable of that name on `searchPath`.
    static func resolveExecutable(_ command: String, searchPath: String?) -> String? {
        if command.contains("/") { return command }
        for directory in (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let candidate = "\(directory)/\(command)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// A free TCP port on 127.0.0.1, chosen by the kernel.
    static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw SpawnError(message: "socket: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw SpawnError(message: "cannot reserve a port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Calls `body` with a NULL-terminated C array of the strings.
private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}
