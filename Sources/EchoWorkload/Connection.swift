// HTTP/1.1 wire handling for outpost-echo: buffered socket I/O, request-head parsing and body
// decoding (Content-Length and chunked). One `Connection` is used by exactly one thread.

import Glibc

/// Why a request could not be completed.
enum HTTPError: Error {
    /// The peer went away or the socket failed: close without answering.
    case disconnected
    /// The request is unacceptable: answer `status` with `reason`, then close.
    case rejected(status: Int, reason: String)
}

/// How a request body is delimited on the wire.
enum BodyFraming {
    case none
    case length(Int)
    case chunked
}

/// A parsed request line and header block.
struct Request {
    var method = "-"
    var target = "-"
    /// The target up to `?`.
    var path = ""
    /// The raw query string after `?` (empty when absent).
    var query = ""
    var isHTTP10 = false
    /// Header fields in arrival order; names lowercased, repeated fields joined with ", ".
    var headers: [(name: String, value: String)] = []
    /// Whether the client allows the connection to stay open after this exchange.
    var keepAlive = false
    /// Whether the client waits for `100 Continue` before sending the body.
    var expectsContinue = false

    /// The value of header `name` (lowercase), if present.
    func header(_ name: String) -> String? {
        headers.first { $0.name == name }?.value
    }

    /// How the body is delimited; chunked takes precedence over Content-Length (RFC 9112 §6.3).
    func bodyFraming() throws -> BodyFraming {
        if let codings = header("transfer-encoding") {
            guard commaSeparatedTokens(codings).last == "chunked" else {
                throw HTTPError.rejected(status: 501, reason: "unsupported transfer-encoding '\(codings)'")
            }
            return .chunked
        }
        guard let text = header("content-length") else { return .none }
        let values = commaSeparatedTokens(text)
        guard let first = values.first, values.allSatisfy({ $0 == first }),
              first.utf8.allSatisfy({ $0 >= 48 && $0 <= 57 }), let length = Int(first)
        else { throw HTTPError.rejected(status: 400, reason: "invalid content-length '\(text)'") }
        return length == 0 ? .none : .length(length)
    }
}

/// Largest request line or header field, and largest header block, accepted.
let maxHeadBytes = 64 * 1024

/// Buffered reader and writer over one accepted socket.
final class Connection {
    let fd: Int32
    private var input = [UInt8](repeating: 0, count: maxHeadBytes)
    private var start = 0
    private var end = 0
    private var output: [UInt8] = []
    private var continuePending = false

    init(fd: Int32) {
        self.fd = fd
        output.reserveCapacity(64 * 1024)
    }

    /// Waits for the first byte of the next request. Returns false on EOF, socket error, or when
    /// shutdown begins while the connection is idle.
    func waitForRequest() -> Bool {
        if start < end { return true }
        var fds = [
            pollfd(fd: fd, events: Int16(POLLIN), revents: 0),
            pollfd(fd: Shutdown.readFD, events: Int16(POLLIN), revents: 0),
        ]
        while poll(&fds, 2, -1) < 0 {
            if errno != EINTR { return false }
        }
        // Bytes that already arrived count as an in-flight request even during shutdown.
        if fds[0].revents == 0 { return false }
        return (try? fill()) == true
    }

    /// Reads a request line and header block into `request` (fields are set as they are parsed,
    /// so a failure still leaves the method and target for the access log).
    func readRequestHead(into request: inout Request) throws {
        var line = try readLine()
        if line.isEmpty { line = try readLine() }  // tolerate a stray CRLF after a previous body
        let parts = line.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else {
            throw HTTPError.rejected(status: 400, reason: "malformed request line")
        }
        request.method = String(parts[0])
        request.target = String(parts[1])
        switch parts[2] {
        case "HTTP/1.1": request.isHTTP10 = false
        case "HTTP/1.0": request.isHTTP10 = true
        default: throw HTTPError.rejected(status: 505, reason: "unsupported protocol '\(parts[2])'")
        }
        if let mark = request.target.firstIndex(of: "?") {
            request.path = String(request.target[..<mark])
            request.query = String(request.target[request.target.index(after: mark)...])
        } else {
            request.path = request.target
        }

        var headBytes = line.utf8.count
        while true {
            let field = try readLine()
            if field.isEmpty { break }
            headBytes += field.utf8.count + 2
            guard headBytes <= maxHeadBytes else {
                throw HTTPError.rejected(status: 431, reason: "request header block larger than 64 KiB")
            }
            guard let colon = field.firstIndex(of: ":"), colon != field.startIndex,
                  !field[..<colon].contains(where: { $0 == " " || $0 == "\t" })
            else { throw HTTPError.rejected(status: 400, reason: "malformed header field") }
            let name = field[..<colon].lowercased()
            let value = trimmingWhitespace(field[field.index(after: colon)...])
            if let index = request.headers.firstIndex(where: { $0.name == name }) {
                request.headers[index].value += ", " + value
            } else {
                request.headers.append((name, value))
            }
        }

        let connection = commaSeparatedTokens(request.header("connection") ?? "")
        request.keepAlive = request.isHTTP10 ? connection.contains("keep-alive") : !connection.contains("close")
        if request.header("transfer-encoding") != nil && request.header("content-length") != nil {
            request.keepAlive = false  // ambiguous framing: never reuse the connection (RFC 9112 §6.3)
        }
        request.expectsContinue = !request.isHTTP10 && request.header("expect")?.lowercased() == "100-continue"
        continuePending = request.expectsContinue
    }

    /// Reads the whole body, handing it to `sink` piece by piece as it arrives, and returns its
    /// size. Sends `100 Continue` first if the client asked for it.
    @discardableResult
    func readBody(_ framing: BodyFraming, _ sink: (UnsafeRawBufferPointer) throws -> Void = { _ in }) throws -> Int {
        if case .none = framing { return 0 }
        if continuePending {
            continuePending = false
            // Straight to the socket: anything in `output` is this request's response head,
            // which must come after the interim response.
            var interim = "HTTP/1.1 100 Continue\r\n\r\n"
            guard interim.withUTF8({ writeAll(fd, UnsafeRawBufferPointer($0)) }) else { throw HTTPError.disconnected }
        }
        switch framing {
        case .none:
            return 0
        case .length(let length):
            try readExactly(length, sink)
            return length
        case .chunked:
            var total = 0
            while true {
                let sizeLine = try readLine()
                let digits = trimmingWhitespace(sizeLine.prefix { $0 != ";" })
                guard !digits.isEmpty, digits.utf8.allSatisfy(isHexDigit), let size = Int(digits, radix: 16) else {
                    throw HTTPError.rejected(status: 400, reason: "invalid chunk size '\(sizeLine)'")
                }
                if size == 0 {
                    while try !readLine().isEmpty {}  // skip trailer fields
                    return total
                }
                try readExactly(size, sink)
                total += size
                guard try readLine().isEmpty else {
                    throw HTTPError.rejected(status: 400, reason: "missing CRLF after chunk data")
                }
            }
        }
    }

    /// Reads exactly `count` bytes (WebSocket frames), waiting for the socket as needed.
    func readBytes(_ count: Int) throws -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(count)
        try readExactly(count) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Queues `bytes` for sending; large writes go straight to the socket.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if output.count + bytes.count > output.capacity { try flush() }
        if bytes.count >= output.capacity {
            guard writeAll(fd, bytes) else { throw HTTPError.disconnected }
        } else {
            output.append(contentsOf: bytes)
        }
    }

    /// Queues the UTF-8 bytes of `text` for sending.
    func write(_ text: String) throws {
        var text = text
        try text.withUTF8 { try write(UnsafeRawBufferPointer($0)) }
    }

    /// Sends everything queued so far.
    func flush() throws {
        guard !output.isEmpty else { return }
        let sent = output.withUnsafeBytes { writeAll(fd, $0) }
        output.removeAll(keepingCapacity: true)
        guard sent else { throw HTTPError.disconnected }
    }

    /// After an error response sent while request bytes may still be arriving: stops sending
    /// and discards input for a moment, so closing does not reset the connection (RST) before
    /// the client has read the response.
    func lingeringClose() {
        shutdown(fd, Int32(SHUT_WR))
        let deadline = monotonicMicros() + 500_000
        var discard = [UInt8](repeating: 0, count: 16 * 1024)
        var pending = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while true {
            let left = deadline - monotonicMicros()
            guard left > 0, poll(&pending, 1, Int32(left / 1_000)) > 0 else { return }
            if discard.withUnsafeMutableBytes({ read(fd, $0.baseAddress!, $0.count) }) <= 0 { return }
        }
    }

    /// Returns the next line without its line ending (CRLF, or a bare LF).
    private func readLine() throws -> String {
        var scanned = 0
        while true {
            if let newline = input[(start + scanned)..<end].firstIndex(of: 10) {
                let lineEnd = newline > start && input[newline - 1] == 13 ? newline - 1 : newline
                let line = String(decoding: input[start..<lineEnd], as: UTF8.self)
                start = newline + 1
                return line
            }
            scanned = end - start
            guard try fill() else { throw HTTPError.disconnected }
        }
    }

    /// Passes exactly `count` body bytes to `sink`, reading from the socket as needed.
    private func readExactly(_ count: Int, _ sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        var remaining = count
        while remaining > 0 {
            if start == end { guard try fill() else { throw HTTPError.disconnected } }
            let take = min(remaining, end - start)
            try input.withUnsafeBytes { try sink(UnsafeRawBufferPointer(rebasing: $0[start..<(start + take)])) }
            start += take
            remaining -= take
        }
    }

    /// Reads more bytes from the socket into the input buffer; false on EOF.
    private func fill() throws -> Bool {
        if start == end {
            start = 0
            end = 0
        } else if end == input.count && start > 0 {
            let count = end - start
            input.withUnsafeMutableBytes { _ = memmove($0.baseAddress!, $0.baseAddress! + start, count) }
            start = 0
            end = count
        }
        guard end < input.count else {
            throw HTTPError.rejected(status: 431, reason: "line longer than 64 KiB")
        }
        while true {
            let received = input.withUnsafeMutableBytes { read(fd, $0.baseAddress! + end, $0.count - end) }
            if received > 0 {
                end += received
                return true
            }
            if received == 0 { return false }
            if errno != EINTR { throw HTTPError.disconnected }
        }
    }
}

/// Lowercased, whitespace-trimmed, non-empty items of a comma-separated header value.
func commaSeparatedTokens(_ value: String) -> [String] {
    value.split(separator: ",").map { trimmingWhitespace($0).lowercased() }.filter { !$0.isEmpty }
}

/// `text` without leading and trailing spaces and tabs.
func trimmingWhitespace(_ text: Substring) -> String {
    let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
    guard let first = text.firstIndex(where: { !isBlank($0) }),
          let last = text.lastIndex(where: { !isBlank($0) }) else { return "" }
    return String(text[first...last])
}

/// Whether `byte` is an ASCII hexadecimal digit.
private func isHexDigit(_ byte: UInt8) -> Bool {
    (48...57).contains(byte) || (65...70).contains(byte) || (97...102).contains(byte)
}
