import Dispatch
import Glibc
import Synchronization

/// Learns when worker processes exit: a SIGCHLD source wakes it, and a slow poll covers any
/// signal that was coalesced away. Only pids registered here are reaped, so other children of
/// the process are left alone.
final class ChildReaper: Sendable {
    private let watched = Mutex<[pid_t: @Sendable (WorkerExit) -> Void]>([:])
    private let queue = DispatchQueue(label: "outpost.reaper")
    nonisolated(unsafe) private var source: (any DispatchSourceSignal)?
    nonisolated(unsafe) private var timer: (any DispatchSourceTimer)?

    init() {
        let source = DispatchSource.makeSignalSource(signal: SIGCHLD, queue: queue)
        source.setEventHandler { [weak self] in self?.reap() }
        source.resume()
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + .seconds(1), repeating: .seconds(1), leeway: .milliseconds(200))
        timer.setEventHandler { [weak self] in self?.reap() }
        timer.resume()
        self.source = source
        self.timer = timer
    }

    deinit {
        source?.cancel()
        timer?.cancel()
    }

    /// Calls `onExit` once, on the reaper's queue, when `pid` exits.
    func watch(_ pid: pid_t, onExit: @escaping @Sendable (WorkerExit) -> Void) {
        watched.withLock { $0[pid] = onExit }
        queue.async { [weak self] in self?.reap() }  // it may have exited already
    }

    private func reap() {
        let pids = watched.withLock { Array($0.keys) }
        for pid in pids {
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            guard result == pid || (result < 0 && errno == ECHILD) else { continue }
            let exit: WorkerExit
            if result < 0 {
                exit = .exited(-1)
            } else if status & 0x7f == 0 {
                exit = .exited((status >> 8) & 0xff)
            } else {
                exit = .signaled(status & 0x7f)
            }
            if let callback = watched.withLock({ $0.removeValue(forKey: pid) }) {
                callback(exit)
            }
        }
    }
}
