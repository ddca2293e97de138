// Test knobs of outpost-echo that make it fail or record what it receives, for the gateway's
// resilience and mirroring tests:
//
// - `?fail=<fraction>` answers 503 to that share of requests, each drawn independently.
// - `ECHO_FAIL_FILE=<path>`: while the file exists and holds this worker's port (one port per
//   line), every request except `/healthz` gets 503: one worker of a revision can be made to fail
//   while its siblings (same environment) keep serving.
// - `ECHO_RECORD_FILE=<path>`: appends `METHOD TARGET HOST` for every request (one `write(2)`
//   with `O_APPEND` per line, so concurrent connections never interleave).

import Glibc
import Synchronization

/// Per-process random state for `fail=` (seeded from the pid and the clock).
private let randomState = Mutex<UInt64>(UInt64(UInt32(bitPattern: getpid())) << 32 ^ UInt64(monotonicMicros()))

/// A uniform number in `0..<1` (SplitMix64).
private func nextUnit() -> Double {
    let value = randomState.withLock { state -> UInt64 in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    return Double(value >> 11) * 0x1p-53
}

/// Whether this request should get a 503: the `fail=` roll or `ECHO_FAIL_FILE` naming this port.
func failsOnPurpose(_ options: Options) -> Bool {
    if options.failFraction > 0, nextUnit() < options.failFraction { return true }
    guard let path = environment("ECHO_FAIL_FILE"), let contents = readSmallFile(path) else { return false }
    let port = String(Config.shared.port)
    return contents.split(whereSeparator: { $0 == "\n" || $0 == " " || $0 == "," }).contains { $0 == port }
}

/// Appends the request line to `ECHO_RECORD_FILE`, if set.
func recordRequest(_ request: Request) {
    guard let path = environment("ECHO_RECORD_FILE") else { return }
    let line = "\(request.method) \(request.target) \(request.header("host") ?? "-")\n"
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return }
    _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    close(fd)
}

/// The contents of a file of at most 4 KiB, or nil when it cannot be read.
private func readSmallFile(_ path: String) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 4096)
    let count = read(fd, &buffer, buffer.count)
    guard count >= 0 else { return nil }
    return String(decoding: buffer[0..<count], as: UTF8.self)
}
