import Foundation
import Gateway
import Glibc
import Logging
import Store
import Synchronization

extension RevisionPool {
    /// Starts one worker process, waits for its readiness probe, and reports the outcome.
    func startWorker(_ workerID: UInt64) async {
        if let model = template.model {
            await startModelWorker(workerID, model: model)
            return
        }
        let configuration = runtime.configuration
        let port: Int
        let pid: Int32
        do {
            port = try template.port ?? WorkerSpawner.freeLoopbackPort()
            pid = try await runtime.spawner.spawn(launch(port: port))
        } catch {
            log("cannot start worker: \(error)")
            let actions = state.withLock { state -> [PoolAction] in
                state.workers.removeValue(forKey: workerID)
                return state.recordFailure(PoolFailure(reason: "StartFailed", message: "\(error)"), fatal: true, now: .now)
                    + state.dispatch(now: .now)
            }
            perform(actions)
            runtime.notify()
            return
        }
        let terminateNow = state.withLock { state -> Bool in
            guard state.workers[workerID] != nil else { return true }
            state.workers[workerID]!.pid = pid
            state.workers[workerID]!.port = port
            return state.workers[workerID]!.machine.state == .terminating
        }
        runtime.reaper.watch(pid) { [weak self] status in self?.workerExited(workerID, pid: pid, status: status) }
        log("started worker pid \(pid) on port \(port)")
        runtime.logger.info("worker started", metadata: ["revision": "\(id)", "pid": "\(pid)", "port": "\(port)"])
        if terminateNow {
            perform([.terminate(workerID: workerID, pid: pid)])
            return
        }
        let started = ContinuousClock.now
        let ready = await ReadinessProber.waitUntilReady(
            port: port, probe: template.readinessProbe, deadline: started + configuration.progressDeadline,
            isAbandoned: { [weak self] in
                self?.state.withLock { $0.workers[workerID]?.machine.state != .starting } ?? true
            })
        let actions = state.withLock { state -> [PoolAction] in
            guard state.workers[workerID] != nil else { return [] }
            if ready {
                guard state.workers[workerID]!.machine.probeSucceeded() == .becameReady else { return [] }
                state.everReady = true
                state.failure = nil
                state.consecutiveFailures = 0
                return state.dispatch(now: .now)
            }
            guard state.workers[workerID]!.machine.probeFailed() == .terminate else { return [] }
            let failure = PoolFailure(
                reason: "ProgressDeadlineExceeded",
                message: "worker did not pass its readiness probe within \(DurationText.format(configuration.progressDeadline))")
            return [.terminate(workerID: workerID, pid: pid)] + state.recordFailure(failure, fatal: true, now: .now)
        }
        if ready {
            let elapsed = ContinuousClock.now - started
            runtime.metrics?.coldStart(revision: id, duration: elapsed, kind: .started)
            log("worker pid \(pid) ready after \(elapsed.formatted(.units(allowed: [.milliseconds], fractionalPart: .show(length: 1))))")
        }
        perform(actions)
        runtime.notify()
    }

    /// The reaper saw the process end.
    func workerExited(_ workerID: UInt64, pid: Int32, status: WorkerExit) {
        let actions = state.withLock { state -> [PoolAction] in
            guard var slot = state.workers.removeValue(forKey: workerID) else { return [] }
            var actions: [PoolAction] = []
            if case .unexpectedExit(let status, let wasReady) = slot.machine.processExited(status) {
                let failure = wasReady
                    ? PoolFailure(reason: "WorkerCrashed", message: "worker pid \(pid) \(status)")
                    : PoolFailure(reason: "ExitCode", message: "worker pid \(pid) \(status) before becoming ready")
                actions = state.recordFailure(failure, fatal: false, now: .now)
            }
            return actions + state.dispatch(now: .now)
        }
        log("worker pid \(pid) \(status)")
        runtime.logger.info("worker exited", metadata: ["revision": "\(id)", "pid": "\(pid)", "status": "\(status)"])
        perform(actions)
        runtime.notify()
    }

    /// The process description of one worker, following Knative's runtime contract.
    func launch(port: Int) -> WorkerLaunch {
        var environment: [String: String] = [:]
        let daemonEnvironment = ProcessInfo.processInfo.environment
        for name in runtime.configuration.inheritedEnvironment {
            if let value = daemonEnvironment[name] { environment[name] = value }
        }
        for variable in template.env { environment[variable.name] = variable.value }
        if let workload = runtime.configuration.workloadEnvironment {
            environment.merge(workload(id.namespace, serviceName)) { _, platform in platform }
        }
        environment["PORT"] = String(port)
        environment["K_SERVICE"] = serviceName
        environment["K_CONFIGURATION"] = serviceName
        environment["K_REVISION"] = id.name
        return WorkerLaunch(
            executable: template.command, arguments: template.args, environment: environment,
            workingDirectory: template.workingDir, logPath: logPath)
    }

    /// Appends a line from the platform to the revision's log, beside the worker's own output.
    /// Keeps the revision's log under `limit` bytes (see ``LogFile/cap(_:limit:)``).
    func capLog(limit: Int) {
        guard let kept = LogFile.cap(logPath, limit: limit) else { return }
        log("log passed \(limit) bytes; its last \(kept) bytes are in \(URL(fileURLWithPath: logPath).lastPathComponent).1")
    }

    func log(_ message: String) {
        let line = "[outpost] \(Date().formatted(.iso8601)) \(message)\n"
        let fd = open(logPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o640)
        guard fd >= 0 else { return }
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
    }
}

/// A worker's log file, written by the worker itself (its stdout and stderr, `O_APPEND`).
enum LogFile {
    /// Cuts the file when it exceeds `limit` bytes: its last quarter replaces `<path>.1`, and
    /// the file is emptied in place; writers using `O_APPEND` go on at its new end. Lines written
    /// between the copy and the cut are lost. Returns the bytes kept, or nil when nothing was cut.
    static func cap(_ path: String, limit: Int) -> Int? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let size = Int(lseek(fd, 0, SEEK_END))
        guard size > limit else { return nil }
        let keep = min(size, max(limit / 4, 1))
        var tail = [UInt8](repeating: 0, count: keep)
        let read = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, keep, off_t(size - keep)) }
        guard read > 0 else { return nil }
        try? Data(tail[0..<read]).write(to: URL(fileURLWithPath: path + ".1"), options: .atomic)
        _ = ftruncate(fd, 0)
        return read
    }
}
