@testable import Gateway
import NIOCore
import NIOHTTP1
import Testing

@Suite("Proxy headers")
struct ProxyHeadersTests {
    static let v4Client = ClientAddress(ip: "10.0.0.7", isIPv6: false)

    static func request(_ headers: [(String, String)], version: HTTPVersion = .http1_1) -> HTTPRequestHead {
        HTTPRequestHead(version: version, method: .POST, uri: "/path?q=1", headers: HTTPHeaders(headers))
    }

    static func upstream(_ head: HTTPRequestHead, client: ClientAddress = v4Client) -> HTTPRequestHead {
        ProxyHeaders.upstreamRequestHead(from: head, info: RequestHeadInfo(head.headers), client: client)
    }

    @Test("hop-by-hop headers and the ones Connection names are removed; Host stays as sent")
    func stripsHopByHop() {
        let head = Self.request([
            ("Host", "Hello.Default.Example.Test:8080"),
            ("Connection", "keep-alive, X-Secret, close"),
            ("X-Secret", "1"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Connection", "keep-alive"),
            ("TE", "trailers"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "websocket"),
            ("Accept", "text/plain"),
            ("Content-Length", "3"),
        ], version: .http1_0)
        let out = Self.upstream(head)
        #expect(out.version == .http1_1)
        #expect(out.method == .POST)
        #expect(out.uri == "/path?q=1")
        #expect(out.headers["host"] == ["Hello.Default.Example.Test:8080"])
        #expect(out.headers["accept"] == ["text/plain"])
        #expect(out.headers["content-length"] == ["3"])
        for name in ["connection", "x-secret", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"] {
            #expect(!out.headers.contains(name: name), "\(name) should be stripped")
        }
    }

    @Test("Connection cannot name the framing or routing headers away")
    func connectionKeepsFraming() {
        let head = Self.request([
            ("Host", "h"),
            ("Connection", "content-length, Transfer-Encoding, host, te, x-secret"),
            ("Content-Length", "3"),
            ("X-Secret", "1"),
        ])
        #expect(ProxyHeaders.connectionOptions(in: head.headers) == ["x-secret"])
        let out = Self.upstream(head)
        #expect(out.headers["content-length"] == ["3"])
        #expect(out.headers["host"] == ["h"])
        #expect(!out.headers.contains(name: "x-secret"))
        let chunked = Self.upstream(Self.request([("Host", "h"), ("Connection", "transfer-encoding"), ("Transfer-Encoding", "chunked")]))
        #expect(chunked.headers["transfer-encoding"] == ["chunked"])
        // A worker cannot drop its response's length either.
        var keepAlive = true
        let response = ProxyHeaders.downstreamResponseHead(
            from: HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Connection": "content-length", "Content-Length": "2"]),
            version: .http1_1, keepAlive: &keepAlive)
        #expect(response.headers["content-length"] == ["2"])
    }

    @Test("a chunked request stays chunked (Transfer-Encoding is regenerated as chunked)")
    func chunkedStaysChunked() {
        let out = Self.upstream(Self.request([("Host", "h"), ("Transfer-Encoding", "gzip, chunked")]))
        #expect(out.headers["transfer-encoding"] == ["chunked"])
    }

    @Test("forwarding headers are added, and appended to existing ones")
    func forwardingHeaders() {
        let fresh = Self.upstream(Self.request([("Host", "hello.default.example.test")]))
        #expect(fresh.headers["x-forwarded-for"] == ["10.0.0.7"])
        #expect(fresh.headers["x-forwarded-proto"] == ["http"])
        #expect(fresh.headers["forwarded"] == ["for=10.0.0.7;proto=http;host=hello.default.example.test"])

        let chained = Self.upstream(Self.request([
            ("Host", "hello.default.example.test:8080"),
            ("X-Forwarded-For", "203.0.113.1"),
            ("x-forwarded-for", "198.51.100.2"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=203.0.113.1;proto=https"),
        ]))
        #expect(chained.headers["x-forwarded-for"] == ["203.0.113.1, 198.51.100.2, 10.0.0.7"])
        #expect(chained.headers["x-forwarded-proto"] == ["http"])
        #expect(chained.headers["forwarded"] == [
            "for=203.0.113.1;proto=https, for=10.0.0.7;proto=http;host=\"hello.default.example.test:8080\""
        ])
    }

    @Test("IPv6 clients are quoted and bracketed in Forwarded; mapped IPv4 shows as IPv4")
    func ipv6Clients() throws {
        let v6 = ClientAddress(try SocketAddress(ipAddress: "::1", port: 5000))
        #expect(v6.ip == "::1")
        #expect(v6.forwardedNode == "for=\"[::1]\"")
        let out = Self.upstream(Self.request([("Host", "h")]), client: v6)
        #expect(out.headers["x-forwarded-for"] == ["::1"])
        #expect(out.headers["forwarded"] == ["for=\"[::1]\";proto=http;host=h"])

        let mapped = ClientAddress(try SocketAddress(ipAddress: "::ffff:127.0.0.1", port: 5000))
        #expect(mapped == ClientAddress(ip: "127.0.0.1", isIPv6: false))
        #expect(ClientAddress(nil).forwardedNode == "for=unknown")
    }

    @Test("Forwarded values: tokens stay bare, others are quoted with escapes")
    func forwardedQuoting() {
        #expect(ProxyHeaders.forwardedValue("example.com") == "example.com")
        #expect(ProxyHeaders.forwardedValue("example.com:80") == "\"example.com:80\"")
        #expect(ProxyHeaders.forwardedValue("a\"b\\c") == "\"a\\\"b\\\\c\"")
        #expect(ProxyHeaders.forwardedValue("") == "\"\"")
    }

    @Test("Expect: 100-continue is answered by the gateway, not forwarded")
    func expectContinue() {
        let head = Self.request([("Host", "h"), ("Expect", "100-Continue"), ("Content-Length", "5")])
        #expect(RequestHeadInfo(head.headers).expectsContinue)
        #expect(!Self.upstream(head).headers.contains(name: "expect"))
    }

    @Test(
        "request heads the gateway refuses",
        arguments: [
            ([("Content-Length", "1")], "MissingHost"),
            ([("Host", "")], "MissingHost"),
            ([("Host", "a"), ("Host", "b")], "InvalidHost"),
            ([("Host", "a"), ("Content-Length", "3"), ("Transfer-Encoding", "chunked")], "InvalidFraming"),
            ([("Host", "a"), ("Content-Length", "3"), ("Content-Length", "4")], "InvalidFraming"),
            ([("Host", "a"), ("Content-Length", "3, 4")], "InvalidFraming"),
            ([("Host", "a"), ("Content-Length", "-1")], "InvalidFraming"),
            ([("Host", "a"), ("Transfer-Encoding", "gzip")], "InvalidFraming"),
            ([("Host", "a"), ("Transfer-Encoding", "chunked, gzip")], "InvalidFraming"),
        ] as [([(String, String)], String)])
    func refusedHeads(headers: [(String, String)], code: String) {
        #expect(RequestHeadInfo(HTTPHeaders(headers)).problem?.code == code)
    }

    /// The gateway re-frames a body as plain chunked, so an earlier coding (`gzip, chunked`)
    /// would be dropped on the way to the worker: only `chunked` alone is proxied.
    @Test("a chunked request is accepted; earlier codings are refused")
    func chunkedAccepted() {
        #expect(RequestHeadInfo(HTTPHeaders([("Host", "a"), ("Transfer-Encoding", "Chunked")])).problem == nil)
        #expect(RequestHeadInfo(HTTPHeaders([("Host", "a"), ("Transfer-Encoding", "gzip, Chunked")])).problem?.code == "InvalidFraming")
        #expect(RequestHeadInfo(HTTPHeaders([("Host", "a"), ("Transfer-Encoding", "gzip"), ("Transfer-Encoding", "chunked")])).problem?.code == "InvalidFraming")
    }

    @Test("repeated identical Content-Length values are accepted")
    func identicalContentLengths() {
        let info = RequestHeadInfo(HTTPHeaders([("Host", "a"), ("Content-Length", "3"), ("content-length", " 3 ")]))
        #expect(info.problem == nil)
        #expect(info.contentLength == 3)
        #expect(info.hasBody)
    }

    @Test("response heads: hop-by-hop stripped, Connection follows keep-alive and the client's version")
    func responseHeads() {
        let upstream = HTTPResponseHead(version: .http1_1, status: .ok, headers: HTTPHeaders([
            ("Content-Type", "text/plain"), ("Transfer-Encoding", "chunked"), ("Connection", "x-private"),
            ("X-Private", "1"), ("Keep-Alive", "timeout=1"),
        ]))
        var keepAlive = true
        let forHTTP11 = ProxyHeaders.downstreamResponseHead(from: upstream, version: .http1_1, keepAlive: &keepAlive)
        #expect(keepAlive)
        #expect(forHTTP11.headers.map(\.name) == ["Content-Type"])

        keepAlive = true
        let forHTTP10 = ProxyHeaders.downstreamResponseHead(from: upstream, version: .http1_0, keepAlive: &keepAlive)
        #expect(!keepAlive, "HTTP/1.0 without a length can only be close-delimited")
        #expect(forHTTP10.version == .http1_0)
        #expect(forHTTP10.headers["connection"] == ["close"])

        let sized = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["Content-Length": "2"])
        keepAlive = true
        let sizedHTTP10 = ProxyHeaders.downstreamResponseHead(from: sized, version: .http1_0, keepAlive: &keepAlive)
        #expect(keepAlive)
        #expect(sizedHTTP10.headers["connection"] == ["keep-alive"])
    }

    @Test("error bodies are JSON with escaped text")
    func errorBodies() {
        let error = ProxyError.routeNotFound(host: "we\"ird\u{1}", domain: "localhost")
        #expect(error.status == .notFound)
        #expect(String(buffer: error.body) == #"{"error":{"code":"RouteNotFound","message":"no service answers to host 'we\"ird\u0001'; expected <service>.<namespace>.localhost"}}"#)
    }

    @Test("with telemetry, every client X-Request-Id and traceparent is replaced by one of ours; tracestate passes")
    func telemetryHeaders() throws {
        let head = Self.request([
            ("Host", "h"), ("X-Request-Id", "a"), ("x-request-id", "b"),
            ("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), ("Traceparent", "junk"),
            ("tracestate", "k=v"),
        ])
        let info = RequestHeadInfo(head.headers)
        #expect(info.requestID == "a")
        #expect(info.traceparent == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        var random = TelemetryRandom(seed: (1, 1, 1, 1))
        let telemetry = RequestTelemetry(clientRequestID: info.requestID, clientTraceparent: info.traceparent, random: &random)
        let out = ProxyHeaders.upstreamRequestHead(from: head, info: info, client: Self.v4Client, telemetry: telemetry)
        #expect(out.headers["x-request-id"] == ["a"])
        #expect(out.headers["traceparent"] == [telemetry.trace.traceparent])
        #expect(out.headers["tracestate"] == ["k=v"])
        // Without telemetry (the parts of the proxy that do not use it) nothing changes.
        #expect(Self.upstream(head).headers["x-request-id"] == ["a", "b"])

        let response = HTTPResponseHead(version: .http1_1, status: .ok, headers: ["X-Request-Id": "worker", "Content-Length": "0"])
        var keepAlive = true
        let down = ProxyHeaders.downstreamResponseHead(from: response, version: .http1_1, keepAlive: &keepAlive, requestID: "a")
        #expect(down.headers["x-request-id"] == ["a"])
    }

    @Test("a mount gets the end-to-end headers and our request id, without forwarding headers of ours")
    func mountFields() {
        let head = Self.request([
            ("Host", "broker-ingress.localhost"), ("Connection", "keep-alive, X-Secret"), ("X-Secret", "1"),
            ("ce-id", "1"), ("X-Forwarded-For", "203.0.113.1"), ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Client-Cert", "forged"), ("X-Request-Id", "client"), ("Content-Length", "3"),
        ])
        let info = RequestHeadInfo(head.headers)
        var random = TelemetryRandom(seed: (1, 1, 1, 1))
        let telemetry = RequestTelemetry(clientRequestID: info.requestID, clientTraceparent: info.traceparent, random: &random)
        let fields = ProxyHeaders.mountFields(from: head, info: info, telemetry: telemetry)
        #expect(fields.map { "\($0.name): \($0.value)" } == [
            "Host: broker-ingress.localhost", "ce-id: 1", "X-Forwarded-For: 203.0.113.1", "Content-Length: 3",
            "x-request-id: client", "traceparent: \(telemetry.trace.traceparent)",
        ])
    }

    @Test("an in-process answer gets its body's length, Connection as needed and our request id")
    func localResponseHead() {
        let response = LocalResponse(status: 202, headers: [
            HeaderField(name: "Content-Type", value: "application/json"), HeaderField(name: "Content-Length", value: "99"),
            HeaderField(name: "Connection", value: "close"), HeaderField(name: "X-Request-Id", value: "worker"),
        ], body: Array("{}".utf8))
        let kept = ProxyHeaders.localResponseHead(response, version: .http1_1, keepAlive: true, requestID: "a")
        #expect(kept.status == .accepted)
        #expect(kept.headers.map { "\($0.name): \($0.value)" } == ["Content-Type: application/json", "content-length: 2", "x-request-id: a"])
        let http10 = ProxyHeaders.localResponseHead(response, version: .http1_0, keepAlive: true, requestID: nil)
        #expect(http10.version == .http1_0)
        #expect(http10.headers["connection"] == ["keep-alive"])
        #expect(http10.headers["x-request-id"] == ["worker"])
        let closing = ProxyHeaders.localResponseHead(response, version: .http1_1, keepAlive: false, requestID: nil)
        #expect(closing.headers["connection"] == ["close"])
    }

    @Test("values are trimmed of spaces and tabs at both ends only, byte by byte", arguments: [
        ("", ""), ("   ", ""), (" \t 12 \t", "12"), ("a b", "a b"), ("\u{A0}x\u{A0}", "\u{A0}x\u{A0}"), (" é ", "é"),
    ])
    func trimming(_ input: String, _ expected: String) {
        #expect(String(input.trimmingASCIIWhitespace()) == expected)
        #expect(String(input[...].trimmingASCIIWhitespace()) == expected)
    }

    @Test("an in-process request finds headers without case and its path without the query")
    func localRequestAccessors() {
        let request = LocalRequest(method: "POST", uri: "/v2/models/é/infer?x=1?y", headers: [
            HeaderField(name: "Inference-Header-Content-Length", value: "12"), HeaderField(name: "content-type", value: "a"),
            HeaderField(name: "Content-Type", value: "b"),
        ], body: [])
        #expect(request.header("inference-header-content-length") == "12")
        #expect(request.header("INFERENCE-HEADER-CONTENT-LENGTH") == "12")
        #expect(request.header("Content-Type") == "a")
        #expect(request.header("content-typ") == nil)
        #expect(request.path == "/v2/models/é/infer")
        #expect(LocalRequest(method: "GET", uri: "/plain", headers: [], body: []).path == "/plain")
    }
}
