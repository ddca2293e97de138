// Request behaviour of outpost-echo: the connection loop, the JSON echo, `/healthz`, the
// query-parameter knobs and the access log.

import Glibc

/// Largest body `echo=1` buffers before answering; larger Content-Length bodies are streamed
/// back, larger chunked ones are refused with 413.
let maxBufferedEchoBytes = 64 * 1024 * 1024

/// Behaviour switches from the query string; they combine (e.g. `?delay=1s&status=503`).
struct Options {
    /// `delay=<duration>`: sleep this long before answering.
    var delayMicros = 0
    /// `status=<code>`: answer with this status (200-599).
    var status = 200
    /// `crash=1`: exit the process with code 3 instead of answering.
    var crash = false
    /// `bytes=<n>`: answer with n bytes of 'x' (text/plain) instead of JSON.
    var bytes: Int?
    /// `echo=1`: answer with the request body itself.
    var echo = false
    /// `fail=<fraction>`: answer 503 to this share (0...1) of requests, drawn independently.
    var failFraction = 0.0

    /// Parses the recognised parameters of `query`; others are ignored.
    init(query: String) throws {
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let value = percentDecoded(parts.count > 1 ? parts[1] : "")
            switch percentDecoded(parts[0]) {
            case "delay":
                guard let micros = parseDuration(value) else { throw InvalidOption("delay '\(value)'") }
                delayMicros = micros
            case "status":
                guard let code = Int(value), (200...599).contains(code) else {
                    throw InvalidOption("status '\(value)'")
                }
                status = code
            case "crash": crash = value == "1" || value == "true"
            case "bytes":
                guard let count = Int(value), count >= 0 else { throw InvalidOption("bytes '\(value)'") }
                bytes = count
            case "echo": echo = value == "1" || value == "true"
            case "fail":
                guard let fraction = Double(value), (0...1).contains(fraction) else { throw InvalidOption("fail '\(value)'") }
                failFraction = fraction
            default: continue
            }
        }
    }
}

/// A query parameter with an unusable value.
struct InvalidOption: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Serves requests on one accepted socket until the peer closes, an exchange ends the
/// connection, or shutdown begins while it is idle. Runs on the connection's own thread.
func serveConnection(_ fd: Int32) {
    defer {
        close(fd)
        activeConnections.subtract(1, ordering: .releasing)
    }
    let connection = Connection(fd: fd)
    while connection.waitForRequest() {
        let started = monotonicMicros()
        var request = Request()
        var outcome: (status: Int, keepAlive: Bool)
        do {
            try connection.readRequestHead(into: &request)
            outcome = try respond(to: request, on: connection)
            try connection.flush()
        } catch HTTPError.rejected(let status, let reason) {
            outcome = (status, false)
            _ = try? connection.send(request, status: status, body: "\(reason)\n", close: true)
            try? connection.flush()
            connection.lingeringClose()
        } catch {
            let elapsed = formatMillis(monotonicMicros() - started)
            logInfo("\(request.method) \(request.target) - \(elapsed) (connection lost)")
            return
        }
        logInfo("\(request.method) \(request.target) \(outcome.status) \(formatMillis(monotonicMicros() - started))")
        if !outcome.keepAlive { return }
    }
}

/// Answers one request, reading its body. Returns the status sent and whether the connection
/// stays open.
func respond(to request: Request, on connection: Connection) throws -> (status: Int, keepAlive: Bool) {
    let framing = try request.bodyFraming()
    if request.path == "/healthz" && (request.method == "GET" || request.method == "HEAD") {
        try connection.readBody(framing)
        return try connection.send(request, status: 200, body: "ok")
    }
    if let key = webSocketKey(request) {
        recordRequest(request)
        return try serveWebSocket(request, key: key, on: connection)
    }
    let options: Options
    do {
        options = try Options(query: request.query)
    } catch {
        try connection.readBody(framing)
        return try connection.send(request, status: 400, body: "invalid query parameter: \(error)\n")
    }
    recordRequest(request)
    if options.delayMicros > 0 { sleepMicros(options.delayMicros) }
    if failsOnPurpose(options) {
        try connection.readBody(framing)
        return try connection.send(request, status: 503, body: "failing on purpose (fail= or ECHO_FAIL_FILE)\n")
    }
    if options.crash {
        logError("crash=1 on \(request.method) \(request.target): exiting with code 3")
        _exit(3)
    }
    let status = options.status
    let bodyAllowed = request.responseHasBody(status: status)

    if options.echo { return try respondWithBody(of: request, framing, status: status, on: connection) }

    let bodyBytes = try connection.readBody(framing)
    if let count = options.bytes {
        let keepAlive = try connection.writeHead(request, status: status, contentType: "text/plain", length: count)
        var remaining = bodyAllowed ? count : 0
        while remaining > 0 {
            let piece = min(remaining, fillerBytes.count)
            try fillerBytes.withUnsafeBytes {
                try connection.write(UnsafeRawBufferPointer(rebasing: $0[..<piece]))
            }
            remaining -= piece
        }
        return (status, keepAlive)
    }
    return try connection.send(request, status: status, contentType: "application/json",
                               body: echoJSON(request, bodyBytes: bodyBytes))
}

/// `echo=1`: answers with the request body itself. Bodies up to 64 MiB are read completely
/// first (safe with clients that send everything before reading); larger Content-Length bodies
/// are streamed back as they arrive, larger chunked ones get 413.
func respondWithBody(of request: Request, _ framing: BodyFraming, status: Int,
                     on connection: Connection) throws -> (status: Int, keepAlive: Bool) {
    let bodyAllowed = request.responseHasBody(status: status)
    let contentType = request.header("content-type") ?? "application/octet-stream"
    if case .length(let length) = framing, length > maxBufferedEchoBytes {
        // Too big to buffer: stream it back as it arrives. Only bodies this large are streamed,
        // because a client that sends everything before reading would deadlock with us.
        let keepAlive = try connection.writeHead(request, status: status, contentType: contentType, length: length)
        try connection.readBody(framing) { if bodyAllowed { try connection.write($0) } }
        return (status, keepAlive)
    }
    var body: [UInt8] = []
    if case .length(let length) = framing { body.reserveCapacity(length) }
    try connection.readBody(framing) { chunk in
        guard body.count + chunk.count <= maxBufferedEchoBytes else {
            throw HTTPError.rejected(status: 413, reason: "echo body larger than 64 MiB")
        }
        body.append(contentsOf: chunk)
    }
    let keepAlive = try connection.writeHead(request, status: status, contentType: contentType, length: body.count)
    if bodyAllowed { try body.withUnsafeBytes { try connection.write($0) } }
    return (status, keepAlive)
}

/// 64 KiB of 'x' for `bytes=<n>` responses.
let fillerBytes = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024)

extension Connection {
    /// Queues a status line and headers (Content-Length always, except for 204 which must not
    /// carry one). Returns whether the connection stays open after this response.
    func writeHead(_ request: Request, status: Int, contentType: String, length: Int,
                   close: Bool = false) throws -> Bool {
        let keepAlive = request.keepAlive && !close && !Shutdown.isRequested
        var head = "HTTP/1.1 \(status) \(reasonPhrase(status))\r\nServer: outpost-echo\r\n"
        if status != 204 { head += "Content-Type: \(contentType)\r\nContent-Length: \(length)\r\n" }
        if !keepAlive {
            head += "Connection: close\r\n"
        } else if request.isHTTP10 {
            head += "Connection: keep-alive\r\n"
        }
        try write(head + "\r\n")
        return keepAlive
    }

    /// Queues a complete response with a small in-memory body (omitted for HEAD, 204 and 304).
    func send(_ request: Request, status: Int, contentType: String = "text/plain; charset=utf-8",
              body: String, close: Bool = false) throws -> (status: Int, keepAlive: Bool) {
        let keepAlive = try writeHead(request, status: status, contentType: contentType,
                                      length: body.utf8.count, close: close)
        if request.responseHasBody(status: status) { try write(body) }
        return (status, keepAlive)
    }
}

extension Request {
    /// Whether a response with `status` carries body bytes (not for HEAD, 204 or 304).
    func responseHasBody(status: Int) -> Bool {
        method != "HEAD" && status != 204 && status != 304
    }
}

/// The JSON echo of `request`.
func echoJSON(_ request: Request, bodyBytes: Int) -> String {
    var json = "{\"method\":"
    appendJSONString(request.method, to: &json)
    json += ",\"path\":"
    appendJSONString(request.path, to: &json)
    json += ",\"query\":"
    appendJSONString(request.query, to: &json)
    json += ",\"headers\":{"
    for (index, field) in request.headers.enumerated() {
        if index > 0 { json += "," }
        appendJSONString(field.name, to: &json)
        json += ":"
        appendJSONString(field.value, to: &json)
    }
    json += "},\"bodyBytes\":\(bodyBytes),"
    return json + Config.shared.jsonTail
}

/// Appends `value` to `json` as a quoted JSON string with the required escapes.
func appendJSONString(_ value: String, to json: inout String) {
    json += "\""
    for scalar in value.unicodeScalars {
        switch scalar {
        case "\"": json += "\\\""
        case "\\": json += "\\\\"
        case "\n": json += "\\n"
        case "\r": json += "\\r"
        case "\t": json += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x2028 || scalar.value == 0x2029:
            let hex = String(scalar.value, radix: 16)
            json += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: json.unicodeScalars.append(scalar)
        }
    }
    json += "\""
}

/// Parses `250ms`, `2s`, `1.5s`, `1m`, `500us` or a plain number of milliseconds into
/// microseconds; nil for anything else (negative, malformed or absurdly long).
func parseDuration(_ text: String) -> Int? {
    let units: [(suffix: String, micros: Double)] = [("ms", 1_000), ("us", 1), ("s", 1_000_000), ("m", 60_000_000)]
    let unit = units.first { text.hasSuffix($0.suffix) }
    let number = unit.map { String(text.dropLast($0.suffix.count)) } ?? text
    guard let value = Double(number), value >= 0 else { return nil }
    let micros = value * (unit?.micros ?? 1_000)
    guard micros < 1e13 else { return nil }  // about 115 days
    return Int(micros)
}

/// Decodes `%XX` escapes and `+` (as space) in a query component.
func percentDecoded(_ text: Substring) -> String {
    var bytes: [UInt8] = []
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        switch byte {
        case UInt8(ascii: "+"): bytes.append(UInt8(ascii: " "))
        case UInt8(ascii: "%"):
            let high = iterator.next(), low = iterator.next()
            if let high, let low, let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16) {
                bytes.append(value)
            } else {
                bytes.append(byte)
                if let high { bytes.append(high) }
                if let low { bytes.append(low) }
            }
        default: bytes.append(byte)
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

/// The standard reason phrase for `status` (a generic one for unusual codes).
func reasonPhrase(_ status: Int) -> String {
    switch status {
    case 200: "OK"
    case 201: "Created"
    case 202: "Accepted"
    case 204: "No Content"
    case 301: "Moved Permanently"
    case 302: "Found"
    case 304: "Not Modified"
    case 400: "Bad Request"
    case 401: "Unauthorized"
    case 403: "Forbidden"
    case 404: "Not Found"
    case 408: "Request Timeout"
    case 413: "Content Too Large"
    case 429: "Too Many Requests"
    case 431: "Request Header Fields Too Large"
    case 500: "Internal Server Error"
    case 501: "Not Implemented"
    case 502: "Bad Gateway"
    case 503: "Service Unavailable"
    case 504: "Gateway Timeout"
    case 505: "HTTP Version Not Supported"
    default: status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error"
    }
}
