@testable import Gateway
import NIOHPACK
import NIOHTTP2
import Testing

/// A connection error on HTTP/2 (a header block that cannot be decoded) ends the connection
/// after NIO's GOAWAY instead of leaving the client waiting on it.
@Suite("HTTP/2 connection errors")
struct HTTP2ConnectionErrorTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
    /// An empty SETTINGS frame.
    static let settings: [UInt8] = [0, 0, 0, 4, 0, 0, 0, 0, 0]
    /// HEADERS on stream 1 (END_STREAM | END_HEADERS) whose block is one indexed field with
    /// index 0, which HPACK forbids (a COMPRESSION_ERROR).
    static let badHeaders: [UInt8] = [0, 0, 1, 1, 0x05, 0, 0, 0, 1, 0x80]

    @Test("an undecodable header block → GOAWAY, then the connection closes")
    func undecodableHeaderBlockClosesTheConnection() async throws {
        let gateway = try await GatewayHarness.start(resolver: FakeResolver(.ready(port: 1)))
        let client = try await RawConnection.connect(port: gateway.port)
        try await client.send(bytes: Self.preface + Self.settings + Self.badHeaders)
        #expect(await client.serverCloses(within: .seconds(3)), "the connection stayed open after the connection error")
        await client.close()
        try await gateway.stop()
    }

    @Test("a closer ends the connection on decoding errors only")
    func classifiesErrors() {
        #expect(HTTP2ConnectionErrorCloser.endsConnection(NIOHPACKErrors.ZeroHeaderIndex()))
        #expect(HTTP2ConnectionErrorCloser.endsConnection(NIOHTTP2Errors.unableToParseFrame()))
        #expect(!HTTP2ConnectionErrorCloser.endsConnection(NIOHTTP2Errors.noSuchStream(streamID: 3)))
    }
}
