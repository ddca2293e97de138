// WebSocket echo for outpost-echo (RFC 6455): a GET with `Upgrade: websocket` completes the
// opening handshake and then every text, binary or continuation frame comes back unmasked
// with the same opcode and FIN bit, a ping gets a pong with its payload, and a close is
// answered with a close before the connection ends. With `?greet=1` a text frame "welcome"
// follows the 101 in the same write (a proxy must pass on bytes that arrive with the handshake
// response). Used to test the gateway's WebSocket
// pass-through. SHA-1 and base64 are written out here because the workload uses no packages.

import Glibc

/// The GUID the handshake appends to the client's key (RFC 6455 §1.3).
let webSocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/// Largest frame payload accepted; larger frames are refused with close code 1009.
let maxWebSocketPayload = 16 * 1024 * 1024

/// The client's `Sec-WebSocket-Key` when `request` is a WebSocket opening handshake.
func webSocketKey(_ request: Request) -> String? {
    guard request.method == "GET", !request.isHTTP10,
          commaSeparatedTokens(request.header("upgrade") ?? "").contains("websocket"),
          commaSeparatedTokens(request.header("connection") ?? "").contains("upgrade"),
          let key = request.header("sec-websocket-key"), !key.isEmpty
    else { return nil }
    return key
}

/// `Sec-WebSocket-Accept` for `key`: base64(SHA-1(key + GUID)).
func webSocketAccept(key: String) -> String {
    base64(sha1(Array((key + webSocketGUID).utf8)))
}

/// Completes the handshake and echoes frames until the client closes, the connection drops or
/// shutdown begins (then the client gets close code 1001). The connection ends afterwards.
func serveWebSocket(_ request: Request, key: String, on connection: Connection) throws -> (status: Int, keepAlive: Bool) {
    try connection.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + "Sec-WebSocket-Accept: \(webSocketAccept(key: key))\r\nServer: outpost-echo\r\n\r\n")
    if request.query.split(separator: "&").contains("greet=1") {
        try sendFrame(fin: true, opcode: 0x1, payload: Array("welcome".utf8), on: connection)
    }
    try connection.flush()
    while connection.waitForRequest() {
        let header = try connection.readBytes(2)
        let fin = header[0] & 0x80 != 0
        let opcode = header[0] & 0x0F
        var length = Int(header[1] & 0x7F)
        if length == 126 {
            length = try connection.readBytes(2).reduce(0) { $0 << 8 | Int($1) }
        } else if length == 127 {
            length = try connection.readBytes(8).reduce(0) { $0 << 8 | Int($1) }
        }
        guard header[1] & 0x80 != 0 else {
            // Client frames must be masked.
            try sendClose(code: 1002, on: connection)
            return (101, false)
        }
        guard length >= 0, length <= maxWebSocketPayload else {
            try sendClose(code: 1009, on: connection)
            return (101, false)
        }
        let mask = try connection.readBytes(4)
        var payload = try connection.readBytes(length)
        for index in payload.indices { payload[index] ^= mask[index & 3] }
        switch opcode {
        case 0x0, 0x1, 0x2:
            try sendFrame(fin: fin, opcode: opcode, payload: payload, on: connection)
        case 0x8:
            try sendFrame(fin: true, opcode: 0x8, payload: Array(payload.prefix(2)), on: connection)
            try connection.flush()
            return (101, false)
        case 0x9:
            try sendFrame(fin: true, opcode: 0xA, payload: payload, on: connection)
        case 0xA:
            continue
        default:
            try sendClose(code: 1002, on: connection)
            return (101, false)
        }
        try connection.flush()
    }
    if Shutdown.isRequested { try? sendClose(code: 1001, on: connection) }
    return (101, false)
}

/// Queues one unmasked frame.
private func sendFrame(fin: Bool, opcode: UInt8, payload: [UInt8], on connection: Connection) throws {
    var frame: [UInt8] = [(fin ? 0x80 : 0) | opcode]
    switch payload.count {
    case ..<126:
        frame.append(UInt8(payload.count))
    case ..<65536:
        frame += [126, UInt8(payload.count >> 8), UInt8(payload.count & 0xFF)]
    default:
        frame.append(127)
        for shift in stride(from: 56, through: 0, by: -8) { frame.append(UInt8((payload.count >> shift) & 0xFF)) }
    }
    frame += payload
    try frame.withUnsafeBytes { try connection.write($0) }
}

/// Sends a close frame with `code` and flushes.
private func sendClose(code: UInt16, on connection: Connection) throws {
    try sendFrame(fin: true, opcode: 0x8, payload: [UInt8(code >> 8), UInt8(code & 0xFF)], on: connection)
    try connection.flush()
}

/// SHA-1 of `message` (FIPS 180-4); used only for the handshake's accept value.
func sha1(_ message: [UInt8]) -> [UInt8] {
    var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
    var data = message
    let bitLength = UInt64(message.count) * 8
    data.append(0x80)
    while data.count % 64 != 56 { data.append(0) }
    for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8((bitLength >> UInt64(shift)) & 0xFF)) }
    var w = [UInt32](repeating: 0, count: 80)
    for chunk in stride(from: 0, to: data.count, by: 64) {
        for i in 0..<16 {
            let offset = chunk + i * 4
            w[i] = UInt32(data[offset]) << 24 | UInt32(data[offset + 1]) << 16 | UInt32(data[offset + 2]) << 8 | UInt32(data[offset + 3])
        }
        for i in 16..<80 {
            let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
            w[i] = x << 1 | x >> 31
        }
        var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
        for i in 0..<80 {
            let (f, k): (UInt32, UInt32)
            switch i {
            case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
            case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
            case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
            default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
            }
            let temp = (a << 5 | a >> 27) &+ f &+ e &+ k &+ w[i]
            e = d
            d = c
            c = b << 30 | b >> 2
            b = a
            a = temp
        }
        h[0] &+= a
        h[1] &+= b
        h[2] &+= c
        h[3] &+= d
        h[4] &+= e
    }
    return h.flatMap { word in [UInt8(word >> 24), UInt8((word >> 16) & 0xFF), UInt8((word >> 8) & 0xFF), UInt8(word & 0xFF)] }
}

/// Standard base64 with padding.
func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    for start in stride(from: 0, to: bytes.count, by: 3) {
        let chunk = bytes[start..<min(start + 3, bytes.count)]
        let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
        for index in 0..<4 {
            out.append(index <= chunk.count ? alphabet[Int((value >> (18 - 6 * UInt32(index))) & 0x3F)] : UInt8(ascii: "="))
        }
    }
    return String(decoding: out, as: UTF8.self)
}
