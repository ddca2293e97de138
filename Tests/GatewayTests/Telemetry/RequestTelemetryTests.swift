@testable import Gateway
import Testing

@Suite("Request ids and trace context")
struct RequestTelemetryTests {
    static let validParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    @Test("client request ids are kept only when 1–128 visible ASCII characters", arguments: [
        ("abc-123", true), ("x", true), (String(repeating: "a", count: 128), true),
        ("", false), (String(repeating: "a", count: 129), false), ("has space", false), ("tab\t", false), ("é", false),
    ])
    func requestIDValidity(value: String, valid: Bool) {
        #expect(RequestID.isValid(value) == valid)
    }

    @Test("generated request ids are distinct version-4 UUIDs in lowercase hex")
    func generatedRequestIDs() {
        var random = TelemetryRandom(seed: (1, 2, 3, 4))
        var seen = Set<String>()
        for _ in 0..<1000 {
            let id = RequestID.generate(using: &random)
            let parts = id.split(separator: "-", omittingEmptySubsequences: false)
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12], "\(id)")
            #expect(id.utf8.allSatisfy { HexDigits.value(of: $0) != nil || $0 == UInt8(ascii: "-") })
            #expect(parts[2].first == "4")
            #expect(parts[3].first.map { "89ab".contains($0) } == true)
            seen.insert(id)
        }
        #expect(seen.count == 1000)
    }

    @Test("a valid traceparent parses and renders back unchanged")
    func traceparentRoundTrip() throws {
        let context = try #require(TraceContext(traceparent: Self.validParent))
        #expect(context.traceIDHigh == 0x4bf9_2f35_77b3_4da6)
        #expect(context.traceIDLow == 0xa3ce_929d_0e0e_4736)
        #expect(context.spanID == 0x00f0_67aa_0ba9_02b7)
        #expect(context.flags == 1)
        #expect(context.traceparent == Self.validParent)
        #expect(context.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
    }

    @Test("invalid traceparents are treated as absent", arguments: [
        "",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  // unknown version
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  // zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  // zero parent id
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  // uppercase hex
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  // short trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
    ])
    func invalidTraceparent(value: String) {
        #expect(TraceContext(traceparent: value) == nil)
    }

    @Test("the gateway's span keeps the client's trace id and flags with a new span id")
    func propagates() throws {
        var random = TelemetryRandom(seed: (5, 6, 7, 8))
        let parent = try #require(TraceContext(traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"))
        let span = TraceContext.gatewaySpan(continuing: parent, using: &random)
        #expect(span.traceIDHigh == parent.traceIDHigh && span.traceIDLow == parent.traceIDLow)
        #expect(span.flags == 0)
        #expect(span.spanID != parent.spanID && span.spanID != 0)
        #expect(span.traceparent.hasPrefix("00-4bf92f3577b34da6a3ce929d0e0e4736-"))
        #expect(span.traceparent.hasSuffix("-00"))
    }

    @Test("without a valid traceparent a new sampled trace starts")
    func creates() throws {
        var random = TelemetryRandom(seed: (9, 10, 11, 12))
        let telemetry = RequestTelemetry(clientRequestID: "bad id", clientTraceparent: "00-garbage", random: &random)
        #expect(telemetry.requestID != "bad id")
        #expect(RequestID.isValid(telemetry.requestID))
        let header = telemetry.trace.traceparent
        let reparsed = try #require(TraceContext(traceparent: header))
        #expect(reparsed == telemetry.trace)
        #expect(header.hasSuffix("-01"))
        let other = RequestTelemetry(clientRequestID: nil, clientTraceparent: nil, random: &random)
        #expect(other.trace.traceIDHex != telemetry.trace.traceIDHex)

        let kept = RequestTelemetry(clientRequestID: "req-1", clientTraceparent: Self.validParent, random: &random)
        #expect(kept.requestID == "req-1")
        #expect(kept.trace.traceIDHex == "4bf92f3577b34da6a3ce929d0e0e4736")
    }
}
