@testable import Gateway
import NIOCore
import NIOHTTP1
import TestSupport
import Testing

/// Requests only a raw socket can send: the gateway must refuse ambiguous framing with 400
/// before anything reaches a worker (NIO's llhttp-based decoder rejects most of these itself;
/// the gateway turns that into its JSON 400 and closes the connection).
@Suite("Request framing")
struct RequestFramingTests {
    static let host = TestRoutes.host

    @Test(
        "ambiguous or invalid framing → 400, upstream never sees the request",
        arguments: [
            "POST / HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 4, 5\r\n\r\nabcde",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nTransfer-Encoding: gzip\r\n\r\nabcd",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nTransfer-Encoding: identity, chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            "POST / HTTP/1.1\r\nHost: \(host)\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            "POST / HTTP/1.0\r\nHost: \(host)\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: \(host)\r\nHost: other.default.example.test\r\n\r\n",
            "GET /\u{1} HTTP/1.1\r\nHost: \(host)\r\n\r\n",
        ])
    func refused(request: String) async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver)
        let response = try await rawExchange(port: gateway.port, request)
        // Answered in the request's version (HTTP/1.0 for the HTTP/1.0 case).
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n") || response.hasPrefix("HTTP/1.0 400 Bad Request\r\n"), "got: \(response)")
        #expect(response.contains(#"{"error":{"code":""#))
        #expect(response.lowercased().contains("connection: close"))
        #expect(upstream.requests.isEmpty)
        #expect(resolver.leaseCount == 0)
        try await gateway.stop()
        await upstream.stop()
    }

    /// A chunked request's head waits for its first chunk: sent a moment before a malformed
    /// chunk-size line (so a worker connection is ready by then), it still never reaches the
    /// worker, which would otherwise have seen a request that then broke off.
    @Test("a malformed first chunk → 400, upstream never sees the head", arguments: ["zz", "-3", "0x3", "3 ;", "ffffffffffffffffff1"])
    func malformedFirstChunk(sizeLine: String) async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await RawConnection.connect(port: gateway.port)
        try await client.send("POST /chunked HTTP/1.1\r\nHost: \(Self.host)\r\nTransfer-Encoding: chunked\r\n\r\n")
        try await Task.sleep(for: .milliseconds(300))
        try await client.send("\(sizeLine)\r\nabc\r\n0\r\n\r\n")
        let response = await client.readUntilClosed()
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "got: \(response)")
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map(\.uri))")
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a chunked body still streams: the head goes out with the first chunk")
    func chunkedBodyReachesTheWorker() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let client = try await RawConnection.connect(port: gateway.port)
        try await client.send("POST /chunked HTTP/1.1\r\nHost: \(Self.host)\r\nTransfer-Encoding: chunked\r\n\r\n")
        try await Task.sleep(for: .milliseconds(200))
        #expect(upstream.requests.isEmpty, "no chunk yet: the head waits")
        try await client.send("3\r\nabc\r\n")
        #expect(eventually(timeout: .seconds(10)) { !upstream.requests.isEmpty }, "the first chunk brings the head")
        #expect(upstream.requests.map(\.uri) == ["/chunked"])
        try await client.send("2\r\nde\r\n0\r\n\r\n")
        let response = await client.wait(for: "\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200"), "got: \(response)")
        #expect(upstream.requests.first?.bodyBytes == 5)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("an absolute-form target routes by its authority, and the worker gets origin-form")
    func absoluteForm() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let response = try await rawExchange(
            port: gateway.port, "GET http://\(Self.host)/x?y=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 200"), "got: \(response)")
        #expect(upstream.requests.map(\.uri) == ["/x?y=1"])
        var withHost = HTTPRequestHead(version: .http1_1, method: .GET, uri: "HTTP://a.b:8080")
        withHost.headers.add(name: "Host", value: "other")
        #expect(ProxyHeaders.originForm(of: withHost)?.uri == "/")
        #expect(ProxyHeaders.originForm(of: withHost)?.headers["host"] == ["a.b:8080"])
        #expect(ProxyHeaders.originForm(of: HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://a.b/")) == nil,
                "an HTTP/1.1 request without Host stays a 400")
        #expect(ProxyHeaders.originForm(of: HTTPRequestHead(version: .http1_1, method: .GET, uri: "/x")) == nil)
        try await gateway.stop()
        await upstream.stop()
    }

    /// `Connection: content-length` must not strip the framing header: NIO's request encoder
    /// frames a GET without `Content-Length` as bodiless, so the body (here a whole request)
    /// would reach the pooled worker connection as a second request.
    @Test("a request whose Connection header lists Content-Length reaches the worker as one request with its body")
    func connectionCannotDropFraming() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let smuggled = "GET /smuggled HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n"
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send(
            "GET /first HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: content-length\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n"
                + smuggled)
        let first = await connection.wait(for: "hello GET /first")
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"), "got: \(first)")
        try await connection.send("GET /last HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        let text = await connection.readUntilClosed()
        #expect(text.contains("hello GET /last"), "got: \(text)")
        #expect(upstream.requests.map(\.uri) == ["/first", "/last"])
        #expect(upstream.requests.first?.bodyBytes == smuggled.utf8.count)
        #expect(upstream.requests.first?.headers["content-length"] == ["\(smuggled.utf8.count)"])
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a TRACE with a body → 400 (NIO would frame it bodiless); without one it is proxied")
    func traceWithBody() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let response = try await rawExchange(
            port: gateway.port, "TRACE / HTTP/1.1\r\nHost: \(Self.host)\r\nContent-Length: 5\r\n\r\nhello")
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "got: \(response)")
        #expect(response.contains(#"{"error":{"code":"InvalidFraming""#), "got: \(response)")
        let chunked = try await rawExchange(
            port: gateway.port, "TRACE / HTTP/1.1\r\nHost: \(Self.host)\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
        #expect(chunked.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "got: \(chunked)")
        #expect(upstream.requests.isEmpty)
        let plain = try await rawExchange(port: gateway.port, "TRACE /t HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        #expect(plain.hasPrefix("HTTP/1.1 200 OK\r\n"), "got: \(plain)")
        #expect(upstream.requests.map(\.uri) == ["/t"])
        try await gateway.stop()
        await upstream.stop()
    }

    /// Authorization judges the path; a target the worker would read otherwise (another scheme,
    /// user info in front of the host) never reaches it.
    @Test(
        "a target that is not a path, * for OPTIONS or an http(s) URI → 400, upstream never sees it",
        arguments: [
            "GET ftp://\(host)/admin HTTP/1.1",
            "GET http://x@\(host)/admin HTTP/1.1",
            "GET * HTTP/1.1",
            "GET \(host):80 HTTP/1.1",
            "GET /admin%00.png HTTP/1.1",
            "GET /a/%00 HTTP/1.1",
        ])
    func invalidTargets(requestLine: String) async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let response = try await rawExchange(port: gateway.port, "\(requestLine)\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "got: \(response)")
        #expect(upstream.requests.isEmpty, "\(upstream.requests.map(\.uri))")
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("OPTIONS * is proxied; CONNECT → 405 and the connection closes")
    func asteriskAndConnect() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let options = try await rawExchange(port: gateway.port, "OPTIONS * HTTP/1.1\r\nHost: \(Self.host)\r\nConnection: close\r\n\r\n")
        #expect(options.hasPrefix("HTTP/1.1 200 OK\r\n"), "got: \(options)")
        #expect(upstream.requests.map(\.uri) == ["*"])
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send("CONNECT \(Self.host):443 HTTP/1.1\r\nHost: \(Self.host):443\r\n\r\n")
        #expect(await connection.serverCloses(within: .seconds(3)))
        let text = await connection.readUntilClosed()
        #expect(text.hasPrefix("HTTP/1.1 405 Method Not Allowed\r\n"), "got: \(text)")
        // NIO's response encoder leaves out the body of any answer to CONNECT.
        #expect(text.lowercased().contains("allow: get"), "got: \(text)")
        #expect(upstream.requests.map(\.uri) == ["*"])
        try await gateway.stop()
        await upstream.stop()
    }

    @Test(
        "the 400 names the framing problem where NIO's decoder lets us tell",
        arguments: [
            ("Transfer-Encoding: chunked\r\nContent-Length: 4", "InvalidFraming"),
            ("Content-Length: 4\r\nContent-Length: 5", "InvalidFraming"),
            ("Transfer-Encoding: gzip", "InvalidFraming"),
            // llhttp reports "Transfer-Encoding after Content-Length" with an errno NIO maps to `.unknown`.
            ("Content-Length: 4\r\nTransfer-Encoding: chunked", "MalformedRequest"),
        ])
    func framingCodes(headers: String, code: String) async throws {
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: 1)))
        let response = try await rawExchange(
            port: gateway.port, "POST / HTTP/1.1\r\nHost: \(Self.host)\r\n\(headers)\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 400 Bad Request\r\n"), "got: \(response)")
        #expect(response.contains(#""code":"\#(code)""#), "got: \(response)")
        try await gateway.stop()
    }

    @Test("a request head over maxHeaderBytes → 431")
    func oversizedHead() async throws {
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: 1))) { $0.maxHeaderBytes = 1024 }
        let filler = String(repeating: "a", count: 2000)
        let response = try await rawExchange(
            port: gateway.port, "GET / HTTP/1.1\r\nHost: \(Self.host)\r\nX-Filler: \(filler)\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "got: \(response)")
        #expect(response.contains("RequestHeaderFieldsTooLarge"))
        try await gateway.stop()
    }

    @Test("HTTP/1.0: the response has no chunking and the connection closes")
    func http10() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let response = try await rawExchange(port: gateway.port, "GET /echo HTTP/1.0\r\nHost: \(Self.host)\r\n\r\n")
        #expect(response.hasPrefix("HTTP/1.0 200 OK\r\n"), "got: \(response)")
        #expect(!response.lowercased().contains("transfer-encoding"))
        #expect(response.lowercased().contains("connection: close"))
        #expect(upstream.requests.first?.version == .http1_1)
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("Expect: 100-continue is answered once a worker is connected, then the body flows")
    func expectContinue() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port)))
        let connection = try await RawConnection.connect(port: gateway.port)
        try await connection.send(
            "POST /echo HTTP/1.1\r\nHost: \(Self.host)\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n")
        let interim = await connection.wait(for: "\r\n\r\n")
        #expect(interim.hasPrefix("HTTP/1.1 100 Continue\r\n\r\n"), "got: \(interim)")
        try await connection.send("abcd")
        let response = await connection.readUntilClosed()
        #expect(response.hasPrefix("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"), "got: \(response)")
        #expect(response.hasSuffix("4\r\nabcd\r\n0\r\n\r\n"))
        #expect(upstream.requests.first?.headers.contains(name: "expect") == false)
        try await gateway.stop()
        await upstream.stop()
    }
}
