import Foundation
import Glibc

/// A real `outpost serve` process on ephemeral loopback ports with its own data folder.
public final class Daemon: @unchecked Sendable {
    /// The data folder.
    public let dataDirectory: String
    /// Gateway port on 127.0.0.1.
    public let gatewayPort: Int
    /// Admin API port on 127.0.0.1.
    public let adminPort: Int
    /// The gateway's TLS listener port.
    public let tlsPort: Int
    /// Extra `serve` flags.
    public let extraArguments: [String]
    private var process: Process?
    private var logHandle: FileHandle?

    /// The admin API speaks HTTPS (`--admin-tls`).
    public var adminTLS: Bool { extraArguments.contains("--admin-tls") }
    /// Admin API base URL.
    public var adminURL: String { "\(adminTLS ? "https" : "http")://127.0.0.1:\(adminPort)" }
    /// The CA's root, to verify the HTTPS admin API with.
    public var caRootPath: String { "\(dataDirectory)/ca/root.pem" }
    /// Where the daemon's own output goes.
    public var logPath: String { "\(dataDirectory)/daemon.log" }
    /// The daemon's pid while it runs.
    public var pid: Int32? { process?.processIdentifier }

    /// Prepares a daemon; `start()` runs it.
    public init(dataDirectory: String, extraArguments: [String] = []) {
        self.dataDirectory = dataDirectory
        self.gatewayPort = freePort()
        self.adminPort = freePort()
        self.tlsPort = freePort()
        self.extraArguments = extraArguments
    }

    /// Starts the daemon and waits until `/healthz` answers.
    public func start(timeout: Duration = .seconds(30)) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Binaries.outpost)
        process.arguments = [
            "serve", "--data-dir", dataDirectory,
            "--gateway-address", "127.0.0.1:\(gatewayPort)", "--admin-address", "127.0.0.1:\(adminPort)",
            "--tls-address", "127.0.0.1:\(tlsPort)",
        ] + extraArguments
        var env = ProcessInfo.processInfo.environment
        env["SWIFT_BACKTRACE"] = "enable=no"
        process.environment = env
        try FileManager.default.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        handle.seekToEndOfFile()
        process.standardOutput = handle
        process.standardError = handle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        self.process = process
        self.logHandle = handle
        let healthy = eventually(timeout: timeout) {
            if !process.isRunning { return true }
            if adminTLS {
                return (try? run("/usr/bin/curl", ["-sfk", "--max-time", "2", "\(adminURL)/healthz"]))?.status == 0
            }
            return SimpleHTTP.request(port: adminPort, path: "/healthz", timeout: .seconds(2)).status == 200
        }
        guard healthy, process.isRunning else {
            throw DaemonHarnessError("daemon did not become healthy; its log:\n\(log())")
        }
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status.
    @discardableResult
    public func stop(timeout: Duration = .seconds(30)) -> Int32 {
        guard let process else { return -1 }
        process.terminate()
        _ = eventually(timeout: timeout) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        self.process = nil
        try? logHandle?.close()
        return process.terminationStatus
    }

    /// Kills the daemon with SIGKILL (no chance to clean up).
    public func kill9() {
        guard let process else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
        try? logHandle?.close()
    }

    /// The daemon's output so far.
    public func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    /// The admin token the daemon created.
    public var token: String {
        ((try? String(contentsOfFile: "\(dataDirectory)/admin.token", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the CLI against this daemon.
    public func cli(_ arguments: String...) throws -> CommandResult {
        try cli(arguments)
    }

    /// Runs the CLI with these arguments against this daemon.
    public func cli(_ arguments: [String]) throws -> CommandResult {
        var environment = ["OUTPOST_ADMIN_URL": adminURL, "OUTPOST_DATA_DIR": dataDirectory]
        if adminTLS { environment["OUTPOST_ADMIN_CACERT"] = caRootPath }
        return try run(Binaries.outpost, arguments, environment: environment)
    }

    /// Sends a request through the gateway for `<service>.<namespace>.localhost`.
    public func gateway(_ service: String, namespace: String = "default", path: String = "/", timeout: Duration = .seconds(30)) -> SimpleResponse {
        SimpleHTTP.request(port: gatewayPort, path: path, host: "\(service).\(namespace).localhost:\(gatewayPort)", timeout: timeout)
    }

    /// Calls the admin API with the daemon's token (or the given one).
    public func api(_ method: String, _ path: String, body: String? = nil, token: String? = nil) -> SimpleResponse {
        var headers: [(String, String)] = []
        if let token = token ?? Optional(self.token), !token.isEmpty { headers.append(("Authorization", "Bearer \(token)")) }
        if body != nil { headers.append(("Content-Type", "application/json")) }
        return SimpleHTTP.request(port: adminPort, method: method, path: path, headers: headers, body: Data((body ?? "").utf8))
    }

    deinit {
        if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) }
    }
}

/// A harness failure with the daemon's log attached.
public struct DaemonHarnessError: Error, CustomStringConvertible {
    /// What went wrong.
    public var description: String
    /// Creates the error.
    public init(_ description: String) { self.description = description }
}
