import Foundation
@testable import Gateway
import Testing

@Suite("Access-log lines")
struct AccessLogEntryTests {
    static func entry() -> AccessLogEntry {
        AccessLogEntry(
            startTimeNanoseconds: 1_700_000_000_123_456_789, method: "GET", path: "/a\"b\\c\n\u{1}é",
            httpProtocol: "HTTP/1.1", responseCode: 200, responseFlags: .none, bytesReceived: 3, bytesSent: 11,
            durationMilliseconds: 7, upstreamServiceTimeMilliseconds: nil, xForwardedFor: "127.0.0.1",
            userAgent: "curl/8", requestID: "r-1", authority: "hello.default.example.test", upstreamHost: "127.0.0.1:9",
            upstreamCluster: "hello-00001", routeName: "default/hello", traceID: nil)
    }

    @Test("a line is one JSON object with escaped strings and nulls for unknowns")
    func validJSON() throws {
        let line = Self.entry().jsonLine()
        #expect(!line.contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["path"] as? String == "/a\"b\\c\n\u{1}é")
        #expect(object["start_time"] as? String == "2023-11-14T22:13:20.123Z")
        #expect(object["response_code"] as? Int == 200)
        #expect(object["response_flags"] as? String == "-")
        #expect(object["upstream_service_time"] is NSNull)
        #expect(object["trace_id"] is NSNull)
        #expect(object["bytes_sent"] as? Int == 11)
    }

    @Test("RFC 3339 rendering of known instants", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (Int64(951_782_400_999_000_000), "2000-02-29T00:00:00.999Z"),
        (Int64(4_102_444_799_001_000_000), "2099-12-31T23:59:59.001Z"),
    ])
    func rfc3339(nanoseconds: Int64, expected: String) {
        var bytes: [UInt8] = []
        AccessLogEntry.appendRFC3339(nanoseconds, to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == expected)
    }

    @Test("the wall clock agrees with Foundation's")
    func wallClock() {
        let ours = Double(AccessLogEntry.wallClockNanoseconds()) / 1e9
        #expect(abs(ours - Date().timeIntervalSince1970) < 5)
    }
}
