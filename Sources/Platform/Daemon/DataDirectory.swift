import Foundation
import Glibc

/// Where the daemon keeps its state, and the files in it.
struct DataDirectory: Sendable {
    let path: String

    /// `--data-dir`, else `$OUTPOST_DATA_DIR`, else `/var/lib/outpost` as root or
    /// `~/.local/share/outpost` otherwise.
    static func resolve(_ flag: String?) -> DataDirectory {
        if let flag, !flag.isEmpty { return DataDirectory(path: absolute(flag)) }
        if let env = ProcessInfo.processInfo.environment["OUTPOST_DATA_DIR"], !env.isEmpty {
            return DataDirectory(path: absolute(env))
        }
        if getuid() == 0 { return DataDirectory(path: "/var/lib/outpost") }
        let home = ProcessInfo.processInfo.environment["HOME"] ?? NSHomeDirectory()
        return DataDirectory(path: "\(home)/.local/share/outpost")
    }

    private static func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    var databasePath: String { "\(path)/outpost.db" }
    var tokenPath: String { "\(path)/admin.token" }
    var logDirectory: String { "\(path)/logs" }
    var modelDirectory: String { "\(path)/models" }
    var caDirectory: String { "\(path)/ca" }
    var securityDirectory: String { "\(path)/security" }
    var lockPath: String { "\(path)/outpost.lock" }

    /// Creates the folder (mode 0700) if needed.
    func create() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }

    /// Takes an exclusive lock so that two daemons never share one data directory. The lock is
    /// held until the process exits.
    func lock() throws -> Int32 {
        let fd = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot open \(lockPath): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw DaemonError("another outpost daemon is already using \(path); stop it or pass another --data-dir")
        }
        return fd
    }

    /// Reads the admin token, creating one (mode 0600) on first start. Returns the token and
    /// whether it was created now.
    func adminToken() throws -> (token: String, created: Bool) {
        if let existing = try? String(contentsOfFile: tokenPath, encoding: .utf8) {
            let token = existing.trimmingCharacters(in: .whitespacesAndNewlines)
            if !token.isEmpty { return (token, false) }
        }
        let token = AdminTokens.generate()
        let temporary = tokenPath + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw DaemonError("cannot write \(temporary): \(String(cString: strerror(errno)))") }
        let line = token + "\n"
        let written = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        fsync(fd)
        close(fd)
        guard written == line.utf8.count, rename(temporary, tokenPath) == 0 else {
            throw DaemonError("cannot write \(tokenPath): \(String(cString: strerror(errno)))")
        }
        return (token, true)
    }
}

/// A daemon start-up failure, printed as one line.
struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
