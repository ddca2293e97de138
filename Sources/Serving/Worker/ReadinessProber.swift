import Glibc
import Store

/// Polls a starting worker until it accepts connections (or answers its HTTP probe). Loopback
/// connects succeed or fail within microseconds, so tries come at most 1 ms apart for the first
/// 100 ms (most workers listen within that) and back off to 5 ms after: readiness is noticed
/// within about a millisecond of the worker listening.
enum ReadinessProber {
    /// Returns true once the probe passes, false when `deadline` passes or `isAbandoned` says the
    /// worker is gone.
    static func waitUntilReady(
        port: Int, probe: ReadinessProbe?, deadline: ContinuousClock.Instant,
        isAbandoned: @Sendable () -> Bool
    ) async -> Bool {
        var interval = Duration.microseconds(200)
        let fastUntil = ContinuousClock.now + .milliseconds(100)
        while ContinuousClock.now < deadline {
            if isAbandoned() { return false }
            if await check(port: port, probe: probe) { return true }
            do { try await Task.sleep(for: interval) } catch { return false }
            interval = min(interval * 3 / 2, ContinuousClock.now < fastUntil ? .milliseconds(1) : .milliseconds(5))
        }
        return false
    }

    /// How long one attempt may take (the connect, then the HTTP answer).
    static let attemptTimeout = Duration.seconds(1)

    /// One probe attempt. The socket never blocks: this runs on the shared cooperative thread
    /// pool, and a worker that accepts connections but answers its HTTP probe late must not hold
    /// one of its few threads (two on a small host) for the attempt's second.
    static func check(port: Int, probe: ReadinessProbe?) async -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        let until = ContinuousClock.now + attemptTimeout
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        if result != 0 {
            guard errno == EINPROGRESS, await wait(fd, for: Int16(POLLOUT), until: until) else { return false }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0, error == 0 else { return false }
        }
        guard let path = probe?.httpGet?.path else { return true }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: outpost-probe\r\nConnection: close\r\n\r\n"
        // A fresh socket's send buffer takes the whole (short) request at once.
        let sent = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        guard sent == request.utf8.count, await wait(fd, for: Int16(POLLIN), until: until) else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let received = recv(fd, &buffer, buffer.count, 0)
        guard received >= 12 else { return false }
        // "HTTP/1.1 200": the status's first digit is the 10th byte.
        let firstDigit = buffer[9]
        return firstDigit == UInt8(ascii: "2") || firstDigit == UInt8(ascii: "3")
    }

    /// Waits without blocking the thread until `fd` reports `events` (or an error or hang-up,
    /// which the caller's next call sees), checking every millisecond; false at `until`.
    private static func wait(_ fd: Int32, for events: Int16, until: ContinuousClock.Instant) async -> Bool {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, 0)
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
            if ContinuousClock.now >= until { return false }
            do { try await Task.sleep(for: .milliseconds(1)) } catch { return false }
        }
    }
}
