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
            if check(port: port, probe: probe) { return true }
            do { try await Task.sleep(for: interval) } catch { return false }
            interval = min(interval * 3 / 2, ContinuousClock.now < fastUntil ? .milliseconds(1) : .milliseconds(5))
        }
        return false
    }

    /// One probe attempt.
    static func check(port: Int, probe: ReadinessProbe?) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 1, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        guard connected else { return false }
        guard let path = probe?.httpGet?.path else { return true }
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: outpost-probe\r\nConnection: close\r\n\r\n"
        let sent = request.utf8CString.withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count - 1, Int32(MSG_NOSIGNAL)) }
        guard sent > 0 else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let received = recv(fd, &buffer, buffer.count, 0)
        guard received >= 12 else { return false }
        // "HTTP/1.1 200": the status's first digit is the 10th byte.
        let firstDigit = buffer[9]
        return firstDigit == UInt8(ascii: "2") || firstDigit == UInt8(ascii: "3")
    }
}
