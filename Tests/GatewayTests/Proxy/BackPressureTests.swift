@testable import Gateway
import NIOCore
import Testing

/// The gateway must not buffer a body that the other side cannot take: with a stalled peer,
/// only socket buffers and one channel's high-water mark may fill, far less than the body.
@Suite("Back-pressure")
struct BackPressureTests {
    static let size = 96 * 1024 * 1024

    @Test("a client that stops reading stops the gateway reading from the worker")
    func download() async throws {
        let upstream = try await TestUpstreamServer.start()
        let gateway = try await GatewayHarness.start(
            resolver: FakeResolver(.ready(port: upstream.port)), table: TestRoutes.table(timeout: .seconds(30)))
        let client = try await RawConnection.connect(port: gateway.port, reading: false)
        try await client.send("GET /big/\(Self.size) HTTP/1.1\r\nHost: \(TestRoutes.host)\r\n\r\n")
        try await Task.sleep(for: .seconds(1))
        let written = upstream.bigBytesWritten
        #expect(written > 0)
        #expect(written < Self.size / 2, "the gateway read \(written) bytes a stalled client never took")
        await client.close()
        try await gateway.stop()
        await upstream.stop()
    }

    @Test("a worker that stops reading stops the gateway reading from the client")
    func upload() async throws {
        let upstream = try await TestUpstreamServer.start()
        let resolver = FakeResolver(.ready(port: upstream.port))
        let gateway = try await GatewayHarness.start(resolver: resolver, table: TestRoutes.table(timeout: .seconds(2)))
        let client = try await RawConnection.connect(port: gateway.port)
        try await client.send("POST /stall HTTP/1.1\r\nHost: \(TestRoutes.host)\r\nContent-Length: \(Self.size)\r\n\r\n")
        let counter = client.stream(bytes: Self.size)
        try await Task.sleep(for: .seconds(1))
        #expect(counter.value > 0)
        #expect(counter.value < Self.size / 2, "the gateway accepted \(counter.value) bytes a stalled worker never read")
        // The client's FIN queues behind the body bytes the gateway is not reading, so the
        // gateway learns nothing until the request timeout cuts the exchange off.
        await client.close()
        try await resolver.waitForReleases(1, timeout: .seconds(5))
        #expect(resolver.everyLeaseReleasedOnce)
        try await gateway.stop()
        await upstream.stop()
    }
}
