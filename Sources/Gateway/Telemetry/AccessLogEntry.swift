#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One request's access-log record, rendered as one line of JSON with Envoy's field names
/// (`start_time`, `method`, `path`, `protocol`, `response_code`, `response_flags`,
/// `bytes_received`, `bytes_sent`, `duration`, `upstream_service_time`, `x_forwarded_for`,
/// `user_agent`, `request_id`, `authority`, `upstream_host`, `upstream_cluster`, `route_name`)
/// plus `trace_id`. Rendered by hand (no Foundation) on the event loop.
struct AccessLogEntry {
    /// Wall-clock start, nanoseconds since the Unix epoch.
    var startTimeNanoseconds: Int64
    /// `nil` when the request head could not be parsed (likewise `path` and `httpProtocol`).
    var method: String?
    var path: String?
    var httpProtocol: String?
    var responseCode: Int
    var responseFlags: ResponseFlags
    var bytesReceived: Int
    var bytesSent: Int
    var durationMilliseconds: Int64
    /// From sending the request head to the worker until its response head arrived.
    var upstreamServiceTimeMilliseconds: Int64?
    var xForwardedFor: String?
    var userAgent: String?
    var requestID: String?
    var authority: String?
    /// `127.0.0.1:<port>` of the worker, when one was leased.
    var upstreamHost: String?
    /// The revision (`upstream_cluster`).
    var upstreamCluster: String?
    /// `<namespace>/<service>` of the matched route.
    var routeName: String?
    var traceID: String?

    /// The JSON object, without a trailing newline.
    func jsonLine() -> String {
        var out: [UInt8] = []
        out.reserveCapacity(384 + (path?.utf8.count ?? 0) + (userAgent?.utf8.count ?? 0))
        out.append(UInt8(ascii: "{"))
        Self.key("start_time", first: true, &out)
        out.append(UInt8(ascii: "\""))
        Self.appendRFC3339(startTimeNanoseconds, to: &out)
        out.append(UInt8(ascii: "\""))
        Self.string("method", method, &out)
        Self.string("path", path, &out)
        Self.string("protocol", httpProtocol, &out)
        Self.number("response_code", Int64(responseCode), &out)
        Self.string("response_flags", responseFlags.rawValue, &out)
        Self.number("bytes_received", Int64(bytesReceived), &out)
        Self.number("bytes_sent", Int64(bytesSent), &out)
        Self.number("duration", durationMilliseconds, &out)
        Self.number("upstream_service_time", upstreamServiceTimeMilliseconds, &out)
        Self.string("x_forwarded_for", xForwardedFor, &out)
        Self.string("user_agent", userAgent, &out)
        Self.string("request_id", requestID, &out)
        Self.string("authority", authority, &out)
        Self.string("upstream_host", upstreamHost, &out)
        Self.string("upstream_cluster", upstreamCluster, &out)
        Self.string("route_name", routeName, &out)
        Self.string("trace_id", traceID, &out)
        out.append(UInt8(ascii: "}"))
        return String(decoding: out, as: UTF8.self)
    }

    /// The current wall-clock time in nanoseconds since the epoch (`clock_gettime`, no Foundation).
    static func wallClockNanoseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }

    // MARK: Rendering

    private static func key(_ name: StaticString, first: Bool = false, _ out: inout [UInt8]) {
        if !first { out.append(UInt8(ascii: ",")) }
        out.append(UInt8(ascii: "\""))
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(UInt8(ascii: "\""))
        out.append(UInt8(ascii: ":"))
    }

    private static func string(_ name: StaticString, _ value: String?, _ out: inout [UInt8]) {
        key(name, &out)
        guard let value else {
            out.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
            return
        }
        out.append(UInt8(ascii: "\""))
        appendEscaped(value, to: &out)
        out.append(UInt8(ascii: "\""))
    }

    private static func number(_ name: StaticString, _ value: Int64?, _ out: inout [UInt8]) {
        key(name, &out)
        guard let value else {
            out.append(contentsOf: [UInt8(ascii: "n"), UInt8(ascii: "u"), UInt8(ascii: "l"), UInt8(ascii: "l")])
            return
        }
        appendDecimal(value, to: &out)
    }

    /// Writes `text` as the inside of a JSON string: quote, backslash and control characters
    /// escaped. Header values may hold obs-text bytes; invalid UTF-8 was already replaced when
    /// NIO made the `String`, so the output stays valid UTF-8.
    static func appendEscaped(_ text: String, to out: inout [UInt8]) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\\"): out.append(UInt8(ascii: "\\")); out.append(byte)
            case UInt8(ascii: "\n"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "n"))
            case UInt8(ascii: "\r"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "r"))
            case UInt8(ascii: "\t"): out.append(UInt8(ascii: "\\")); out.append(UInt8(ascii: "t"))
            case 0..<0x20, 0x7F:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(HexDigits.lowercase[Int(byte >> 4)])
                out.append(HexDigits.lowercase[Int(byte & 0xF)])
            default:
                out.append(byte)
            }
        }
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 {
            out.append(UInt8(ascii: "-"))
            appendDecimal(UInt64(value.magnitude), minimumDigits: 1, to: &out)
        } else {
            appendDecimal(UInt64(value), minimumDigits: 1, to: &out)
        }
    }

    private static func appendDecimal(_ value: UInt64, minimumDigits: Int, to out: inout [UInt8]) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
            UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0 || count < minimumDigits
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (RFC 3339, UTC, milliseconds) from nanoseconds since the epoch.
    static func appendRFC3339(_ nanoseconds: Int64, to out: inout [UInt8]) {
        let milliseconds = nanoseconds >= 0 ? nanoseconds / 1_000_000 : (nanoseconds - 999_999) / 1_000_000
        var seconds = milliseconds / 1000
        var millis = milliseconds % 1000
        if millis < 0 { millis += 1000; seconds -= 1 }
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 { secondOfDay += 86_400; days -= 1 }
        let (year, month, day) = civilDate(daysSinceEpoch: days)
        appendDecimal(UInt64(max(year, 0)), minimumDigits: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDecimal(UInt64(month), minimumDigits: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        appendDecimal(UInt64(day), minimumDigits: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        appendDecimal(UInt64(secondOfDay / 3600), minimumDigits: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDecimal(UInt64(secondOfDay % 3600 / 60), minimumDigits: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        appendDecimal(UInt64(secondOfDay % 60), minimumDigits: 2, to: &out)
        out.append(UInt8(ascii: "."))
        appendDecimal(UInt64(millis), minimumDigits: 3, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// Proleptic Gregorian date from days since 1970-01-01 (Howard Hinnant's `civil_from_days`).
    static func civilDate(daysSinceEpoch: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = daysSinceEpoch + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
