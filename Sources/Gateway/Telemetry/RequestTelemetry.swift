/// `x-request-id` handling: keep a client's id when it is sane, otherwise make one.
enum RequestID {
    /// Longest id kept from a client; longer ones are replaced (they end up in logs).
    static let maxLength = 128

    /// Whether a client-sent id is kept: 1–128 visible ASCII characters (`!`…`~`).
    static func isValid(_ value: some StringProtocol) -> Bool {
        let utf8 = value.utf8
        guard !utf8.isEmpty, utf8.count <= maxLength else { return false }
        return utf8.allSatisfy { $0 >= 0x21 && $0 <= 0x7E }
    }

    /// A random version-4 UUID in its usual 8-4-4-4-12 lowercase hex form, like Envoy's ids.
    static func generate(using random: inout some RandomNumberGenerator) -> String {
        let high = (random.next() & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000  // version 4
        let low = (random.next() & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000  // RFC 4122 variant
        return String(unsafeUninitializedCapacity: 36) { buffer in
            HexDigits.write(high >> 32, digits: 8, into: buffer, at: 0)
            buffer[8] = UInt8(ascii: "-")
            HexDigits.write((high >> 16) & 0xFFFF, digits: 4, into: buffer, at: 9)
            buffer[13] = UInt8(ascii: "-")
            HexDigits.write(high & 0xFFFF, digits: 4, into: buffer, at: 14)
            buffer[18] = UInt8(ascii: "-")
            HexDigits.write(low >> 48, digits: 4, into: buffer, at: 19)
            buffer[23] = UInt8(ascii: "-")
            HexDigits.write(low & 0xFFFF_FFFF_FFFF, digits: 12, into: buffer, at: 24)
            return 36
        }
    }
}

/// A W3C Trace Context (`traceparent`, version `00`): the trace, the current span and the flags.
struct TraceContext: Hashable, Sendable {
    /// High 64 bits of the 128-bit trace id.
    var traceIDHigh: UInt64
    /// Low 64 bits of the trace id.
    var traceIDLow: UInt64
    /// The span id (the parent id of whoever receives this header).
    var spanID: UInt64
    /// Trace flags (`01` = sampled).
    var flags: UInt8

    /// Parses `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>` (lowercase hex; neither
    /// id all zero). Anything else is `nil`, and the caller treats it as absent.
    init?(traceparent: String) {
        var text = traceparent
        // Parsed in place over the UTF-8 bytes: no copy for a native string.
        guard let parsed = text.withUTF8({ Self.parse($0) }) else { return nil }
        self = parsed
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> TraceContext? {
        guard bytes.count == 55, bytes[0] == UInt8(ascii: "0"), bytes[1] == UInt8(ascii: "0"),
            bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-"),
            let high = hex(bytes, 3..<19), let low = hex(bytes, 19..<35),
            let span = hex(bytes, 36..<52), let flags = hex(bytes, 53..<55),
            high | low != 0, span != 0
        else { return nil }
        return TraceContext(traceIDHigh: high, traceIDLow: low, spanID: span, flags: UInt8(flags))
    }

    /// Creates a context from its parts.
    init(traceIDHigh: UInt64, traceIDLow: UInt64, spanID: UInt64, flags: UInt8) {
        self.traceIDHigh = traceIDHigh
        self.traceIDLow = traceIDLow
        self.spanID = spanID
        self.flags = flags
    }

    /// The gateway's span for a request: the client's trace and flags with a new span id, or a
    /// new sampled trace when the client sent no valid `traceparent`.
    static func gatewaySpan(continuing parent: TraceContext?, using random: inout some RandomNumberGenerator) -> TraceContext {
        var span = random.next()
        while span == 0 { span = random.next() }
        if let parent {
            return TraceContext(traceIDHigh: parent.traceIDHigh, traceIDLow: parent.traceIDLow, spanID: span, flags: parent.flags)
        }
        var high = random.next()
        let low = random.next()
        if high | low == 0 { high = 1 }
        return TraceContext(traceIDHigh: high, traceIDLow: low, spanID: span, flags: 0x01)
    }

    /// The `traceparent` header value.
    var traceparent: String {
        String(unsafeUninitializedCapacity: 55) { buffer in
            buffer[0] = UInt8(ascii: "0")
            buffer[1] = UInt8(ascii: "0")
            buffer[2] = UInt8(ascii: "-")
            HexDigits.write(traceIDHigh, digits: 16, into: buffer, at: 3)
            HexDigits.write(traceIDLow, digits: 16, into: buffer, at: 19)
            buffer[35] = UInt8(ascii: "-")
            HexDigits.write(spanID, digits: 16, into: buffer, at: 36)
            buffer[52] = UInt8(ascii: "-")
            HexDigits.write(UInt64(flags), digits: 2, into: buffer, at: 53)
            return 55
        }
    }

    /// The 32-hex-digit trace id (for the access log).
    var traceIDHex: String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            HexDigits.write(traceIDHigh, digits: 16, into: buffer, at: 0)
            HexDigits.write(traceIDLow, digits: 16, into: buffer, at: 16)
            return 32
        }
    }

    private static func hex(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> UInt64? {
        var value: UInt64 = 0
        for index in range {
            guard let digit = HexDigits.value(of: bytes[index]) else { return nil }
            value = value << 4 | digit
        }
        return value
    }
}

/// The ids the gateway attaches to one request: sent to the worker and (the request id) back
/// to the client.
struct RequestTelemetry: Sendable {
    /// The `x-request-id` value.
    var requestID: String
    /// The gateway's span, sent as `traceparent`.
    var trace: TraceContext

    /// Keeps or creates the ids from what the client sent.
    init(clientRequestID: String?, clientTraceparent: String?, random: inout some RandomNumberGenerator) {
        if let clientRequestID, RequestID.isValid(clientRequestID) {
            requestID = clientRequestID
        } else {
            requestID = RequestID.generate(using: &random)
        }
        let parent = clientTraceparent.flatMap { TraceContext(traceparent: $0) }
        trace = TraceContext.gatewaySpan(continuing: parent, using: &random)
    }
}
