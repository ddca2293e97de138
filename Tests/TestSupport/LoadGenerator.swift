import Foundation
import Synchronization

/// A closed-loop load: `concurrency` threads each send one request at a time, over and over,
/// until `stop()`. Counts every status code seen (0 = the connection failed).
public final class LoadGenerator: Sendable {
    private let running = Atomic<Bool>(true)
    private let finished = Atomic<Int>(0)
    private let statuses = Mutex<[Int: Int]>([:])
    private let threads: Int

    /// Starts the load at once.
    public init(concurrency: Int, port: Int, host: String, path: String) {
        threads = concurrency
        for _ in 0..<concurrency {
            let thread = Thread { [self] in
                var local: [Int: Int] = [:]
                while running.load(ordering: .relaxed) {
                    let status = SimpleHTTP.request(port: port, path: path, host: host, timeout: .seconds(30)).status
                    local[status, default: 0] += 1
                    if local.values.reduce(0, +) % 50 == 0 { flush(&local) }
                }
                flush(&local)
                finished.add(1, ordering: .relaxed)
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
    }

    private func flush(_ local: inout [Int: Int]) {
        statuses.withLock { total in for (status, count) in local { total[status, default: 0] += count } }
        local.removeAll()
    }

    /// Stops the load, waits for every thread, and returns the status counts.
    @discardableResult
    public func stop() -> [Int: Int] {
        running.store(false, ordering: .relaxed)
        while finished.load(ordering: .relaxed) < threads { usleep(5_000) }
        return statuses.withLock { $0 }
    }

    /// Status counts so far (approximate while running).
    public var counts: [Int: Int] { statuses.withLock { $0 } }
}
