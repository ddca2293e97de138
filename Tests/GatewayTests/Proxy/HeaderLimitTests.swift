@testable import Gateway
import NIOCore
import NIOHTTP1
import Testing

/// Limits on request heads: header count (431) and the time a head may take (408).
@Suite("Request head limits")
struct HeaderLimitTests {
    static let host = TestRoutes.host

    static func head(headers: Int) -> String {
        var text = "GET / HTTP/1.1\r\nHost: \(host)\r\n"
        for index in 0..<(headers - 1) { text += "x-h\(index): v\r\n" }
        return text + "Connection: close\r\n\r\n"
    }

    @Test("more header fields than the limit get 431 and never reach the worker")
    func headerCount() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port))) { $0.maxHeaderCount = 20 }
        // Host plus 19 others plus Connection: 21 fields.
        let refused = try await rawExchange(port: gateway.port, Self.head(headers: 20))
        #expect(refused.hasPrefix("HTTP/1.1 431 "), "\(refused)")
        #expect(refused.contains("more than 20 header fields"))
        #expect(upstream.requests.isEmpty)
        // Host plus 18 others plus Connection: 20 fields, at the limit.
        let accepted = try await rawExchange(port: gateway.port, Self.head(headers: 19))
        #expect(accepted.hasPrefix("HTTP/1.1 200 "), "\(accepted)")
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a head dribbled slower than requestHeadersTimeout gets 408 and the connection closes")
    func slowHead() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port))) {
            $0.requestHeadersTimeout = .milliseconds(600)
        }
        let connection = try await RawConnection.connect(port: gateway.port)
        let start = ContinuousClock.now
        try await connection.send("GET / HTTP/1.1\r\nHost: \(Self.host)\r\n")
        // One more header line every 200 ms: each read is well inside the idle timeout.
        var answer = ""
        for index in 0..<10 {
            try? await connection.send("x-slow-\(index): v\r\n")
            answer = await connection.wait(for: "HTTP/1.1", timeout: .milliseconds(200))
            if !answer.isEmpty { break }
        }
        if answer.isEmpty { answer = await connection.readUntilClosed(timeout: .seconds(2)) }
        let elapsed = ContinuousClock.now - start
        #expect(answer.hasPrefix("HTTP/1.1 408 Request Timeout"), "\(answer)")
        #expect(elapsed < .milliseconds(1800), "\(elapsed)")
        #expect(upstream.requests.isEmpty)
        await connection.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a slow head after quick exchanges on the same connection gets its whole timeout, then 408")
    func slowHeadAfterQuickExchanges() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port))) {
            $0.requestHeadersTimeout = .milliseconds(600)
        }
        let connection = try await RawConnection.connect(port: gateway.port)
        // The first head arms the timer for 600 ms from now; it is still pending below.
        try await connection.send("GET / HTTP/1.1\r\nHost: \(Self.host)\r\n\r\n")
        #expect(await connection.wait(for: "HTTP/1.1 200").contains("HTTP/1.1 200"))
        try await Task.sleep(for: .milliseconds(300))
        let start = ContinuousClock.now
        try await connection.send("GET / HTTP/1.1\r\nHost: \(Self.host)\r\n")
        var answer = ""
        for index in 0..<15 {
            try? await connection.send("x-slow-\(index): v\r\n")
            // The status line, not just "408": the text holds the first response too, whose
            // random request id can contain those digits.
            answer = await connection.wait(for: "HTTP/1.1 408", timeout: .milliseconds(100))
            if answer.contains("HTTP/1.1 408") { break }
        }
        let elapsed = ContinuousClock.now - start
        #expect(answer.contains("HTTP/1.1 408 Request Timeout"), "\(answer)")
        // Not cut by the earlier head's timer (due 300 ms into this head), nor late.
        #expect(elapsed >= .milliseconds(550) && elapsed < .milliseconds(1400), "\(elapsed)")
        #expect(upstream.requests.count == 1)
        await connection.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("an idle keep-alive connection between requests is not cut by the head timer")
    func idleBetweenRequests() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: upstream.port))) {
            $0.requestHeadersTimeout = .milliseconds(300)
        }
        let client = try await gateway.client()
        #expect(try await client.send(.GET, "/", host: Self.host).status == .ok)
        try await Task.sleep(for: .milliseconds(700))
        #expect(try await client.send(.GET, "/", host: Self.host).status == .ok)
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }
}
