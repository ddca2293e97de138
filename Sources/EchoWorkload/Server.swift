// Process lifecycle of outpost-echo: configuration, signals, the listening socket, the accept
// loop (one detached thread per connection) and the graceful drain on SIGTERM / SIGINT.

import Glibc
import Synchronization

/// Settings read once from the environment; invalid values end the process with exit code 2.
struct Config: Sendable {
    /// Address to bind: `$HOST`, default 127.0.0.1 (numeric IPv4 / IPv6 or a resolvable name).
    let host: String
    /// Port to bind: `$PORT`, default 8080.
    let port: UInt16
    /// `$K_REVISION`, or "unknown", for the startup line.
    let revision: String
    /// The constant end of every JSON echo: `"env":{...},"pid":N,"message":"..."}` plus newline.
    let jsonTail: String

    /// The configuration of this process, validated on first use (main.swift touches it early).
    static let shared = Config()

    /// `host:port`, with brackets around IPv6 literals.
    var displayAddress: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

    private init() {
        let host = environment("HOST") ?? ""
        self.host = host.isEmpty ? "127.0.0.1" : host
        let portText = environment("PORT") ?? "8080"
        guard let port = Int(portText), (1...65535).contains(port) else {
            fail("invalid PORT '\(portText)': expected an integer between 1 and 65535", code: 2)
        }
        self.port = UInt16(port)
        revision = environment("K_REVISION") ?? "unknown"

        var tail = "\"env\":{"
        for (index, name) in ["PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION", "OUTPOST_SPIFFE_ID", "OUTPOST_SVID_CERT"].enumerated() {
            if index > 0 { tail += "," }
            appendJSONString(name, to: &tail)
            tail += ":"
            if let value = environment(name) { appendJSONString(value, to: &tail) } else { tail += "null" }
        }
        tail += "},\"pid\":\(getpid()),\"message\":"
        appendJSONString(environment("MESSAGE") ?? "hello from Outpost", to: &tail)
        jsonTail = tail + "}\n"
    }
}

/// Process-wide shutdown flag plus a pipe whose read end becomes (and stays) readable once
/// shutdown starts, so any thread can wait on it in `poll(2)` next to its own socket.
enum Shutdown {
    private static let flag = Atomic<Bool>(false)
    private static let pipeEnds: (read: Int32, write: Int32) = {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { fail("pipe: \(errnoDescription())") }
        return (ends[0], ends[1])
    }()

    /// File descriptor to poll for POLLIN; readable once shutdown has been requested.
    static var readFD: Int32 { pipeEnds.read }
    /// Whether shutdown has started (new responses then carry `Connection: close`).
    static var isRequested: Bool { flag.load(ordering: .acquiring) }

    /// Starts shutdown; returns false if it had already started.
    @discardableResult
    static func request() -> Bool {
        guard !flag.exchange(true, ordering: .acquiringAndReleasing) else { return false }
        var byte: UInt8 = 1
        _ = write(pipeEnds.write, &byte, 1)
        return true
    }

    /// Waits up to `micros` microseconds (`nil`: forever); returns true if shutdown was requested.
    static func wait(micros: Int?) -> Bool {
        let deadline = micros.map { monotonicMicros() + $0 }
        while !isRequested {
            let remaining = deadline.map { max(0, ($0 - monotonicMicros() + 999) / 1000) }
            if remaining == 0 { return false }
            var fd = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
            _ = poll(&fd, 1, remaining.map { Int32(clamping: $0) } ?? -1)
        }
        return true
    }
}

/// Number of accepted connections whose thread has not finished yet.
let activeConnections = Atomic<Int>(0)

/// Blocks SIGTERM and SIGINT in the calling thread (and so in every thread created later) and
/// handles them with `sigwait` on a dedicated thread: the first starts a graceful shutdown, a
/// second one exits immediately.
func installSignalHandling() {
    var signals = sigset_t()
    sigemptyset(&signals)
    sigaddset(&signals, SIGTERM)
    sigaddset(&signals, SIGINT)
    pthread_sigmask(SIG_BLOCK, &signals, nil)
    let started = spawnDetachedThread {
        var signals = sigset_t()
        sigemptyset(&signals)
        sigaddset(&signals, SIGTERM)
        sigaddset(&signals, SIGINT)
        while true {
            var received: Int32 = 0
            guard sigwait(&signals, &received) == 0 else { continue }
            let name = received == SIGTERM ? "SIGTERM" : "SIGINT"
            if Shutdown.request() {
                logInfo("received \(name): no longer accepting, finishing in-flight requests")
            } else {
                logInfo("received \(name) again: exiting now")
                _exit(0)  // other threads are still running: skip atexit handlers
            }
        }
    }
    if !started { fail("cannot start the signal thread") }
}

/// Holds a closure while it travels through `pthread_create`'s untyped argument.
private final class ThreadBody {
    let run: @Sendable () -> Void
    init(_ run: @escaping @Sendable () -> Void) { self.run = run }
}

/// Runs `body` on a new detached pthread; returns false if the thread could not be created.
func spawnDetachedThread(_ body: @escaping @Sendable () -> Void) -> Bool {
    let argument = Unmanaged.passRetained(ThreadBody(body)).toOpaque()
    var thread = pthread_t()
    let result = pthread_create(&thread, nil, { argument in
        Unmanaged<ThreadBody>.fromOpaque(argument!).takeRetainedValue().run()
        return nil
    }, argument)
    guard result == 0 else {
        Unmanaged<ThreadBody>.fromOpaque(argument).release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// Binds and listens on `host:port`, or exits with code 1 and a message on stderr.
func openListener(host: String, port: UInt16) -> Int32 {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
    var addresses: UnsafeMutablePointer<addrinfo>?
    let resolved = getaddrinfo(host, String(port), &hints, &addresses)
    guard resolved == 0 else {
        fail("cannot resolve HOST '\(host)': \(String(cString: gai_strerror(resolved)))")
    }
    defer { freeaddrinfo(addresses) }

    var lastError = EADDRNOTAVAIL
    var next = addresses
    while let address = next?.pointee {
        next = address.ai_next
        let fd = socket(address.ai_family, address.ai_socktype, address.ai_protocol)
        guard fd >= 0 else { lastError = errno; continue }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        if bind(fd, address.ai_addr, address.ai_addrlen) == 0, listen(fd, SOMAXCONN) == 0 {
            // Non-blocking so a connection reset between poll and accept cannot stall the loop.
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return fd
        }
        lastError = errno
        close(fd)
    }
    fail("cannot listen on \(Config.shared.displayAddress): \(errnoDescription(lastError))")
}

/// Accepts connections until shutdown is requested, serving each on its own thread.
func acceptConnections(on listener: Int32) {
    var fds = [
        pollfd(fd: listener, events: Int16(POLLIN), revents: 0),
        pollfd(fd: Shutdown.readFD, events: Int16(POLLIN), revents: 0),
    ]
    while true {
        guard poll(&fds, 2, -1) >= 0 else {
            if errno == EINTR { continue }
            fail("poll: \(errnoDescription())")
        }
        if fds[1].revents != 0 { return }
        let fd = accept(listener, nil, nil)
        guard fd >= 0 else {
            switch errno {
            case EAGAIN, EWOULDBLOCK, EINTR, ECONNABORTED, EPROTO: continue
            default:
                logError("accept: \(errnoDescription())")  // e.g. EMFILE: back off briefly
                usleep(10_000)
                continue
            }
        }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        activeConnections.add(1, ordering: .relaxed)
        if !spawnDetachedThread({ serveConnection(fd) }) {
            logError("cannot start a connection thread")
            close(fd)
            activeConnections.subtract(1, ordering: .relaxed)
        }
    }
}

/// Upper bound on the drain, in case a client keeps a request open forever.
let drainLimitMicros = 30_000_000

/// Waits until every connection thread has finished its in-flight request, then exits 0.
/// Idle keep-alive connections close at once because their threads also wait on `Shutdown`.
func drainAndExit() -> Never {
    let open = activeConnections.load(ordering: .acquiring)
    if open > 0 { logInfo("draining \(open) open connection(s)") }
    let deadline = monotonicMicros() + drainLimitMicros
    while activeConnections.load(ordering: .acquiring) > 0 {
        if monotonicMicros() > deadline {
            logError("drain limit reached with requests still in flight; exiting anyway")
            break
        }
        usleep(2_000)
    }
    logInfo("shutdown complete")
    exit(0)
}

/// The value of environment variable `name`, or nil when it is unset.
func environment(_ name: String) -> String? {
    getenv(name).map { String(cString: $0) }
}

/// Writes `line` plus a newline to stdout in a single write(2), so lines from concurrent
/// threads never interleave and nothing sits in a buffer.
func logInfo(_ line: String) { writeLine(line, to: STDOUT_FILENO) }

/// Writes `outpost-echo: <line>` to stderr in a single write(2).
func logError(_ line: String) { writeLine("outpost-echo: " + line, to: STDERR_FILENO) }

/// Reports `message` on stderr and exits with `code`.
func fail(_ message: String, code: Int32 = 1) -> Never {
    logError(message)
    exit(code)
}

/// Writes one line to `fd` with a single `write` call (retrying on partial writes).
private func writeLine(_ line: String, to fd: Int32) {
    var text = line + "\n"
    text.withUTF8 { _ = writeAll(fd, UnsafeRawBufferPointer($0)) }
}

/// Writes all of `bytes` to `fd`, retrying partial writes and EINTR; false on any other error.
func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += written
    }
    return true
}

/// `strerror` for `code` (default: the current errno).
func errnoDescription(_ code: Int32 = errno) -> String {
    String(cString: strerror(code))
}

/// Microseconds on the monotonic clock.
func monotonicMicros() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1_000_000 + now.tv_nsec / 1_000
}

/// Sleeps for `micros` microseconds.
func sleepMicros(_ micros: Int) {
    var request = timespec(tv_sec: micros / 1_000_000, tv_nsec: (micros % 1_000_000) * 1_000)
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
}

/// Formats microseconds as milliseconds with three decimals, e.g. `12.345ms`.
func formatMillis(_ micros: Int) -> String {
    let fraction = String(micros % 1_000)
    return "\(micros / 1_000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction)ms"
}
