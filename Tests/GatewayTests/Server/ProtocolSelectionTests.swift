@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOTLS
import Testing

/// ``ProtocolSelectionHandler``: HTTP/1.1 or HTTP/2 by the connection preface or by ALPN, with
/// everything read before the choice handed on intact.
@Suite("Protocol selection")
struct ProtocolSelectionTests {
    typealias Choice = ProtocolSelectionHandler.Choice

    @Test("the first bytes decide as soon as they differ from the HTTP/2 preface", arguments: [
        ("GET / HTTP/1.1\r\n", Choice?.some(.http1)),
        ("P", nil),
        ("POST / HTTP/1.1\r\n", .http1),
        ("PUT / HTTP/1.1\r\n", .http1),
        ("PRI * HTTP/2.0\r\n", nil),
        ("PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n", .http1),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .http2),
        ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\u{0}\u{0}\u{0}\u{4}", .http2),
    ])
    func choice(bytes: String, expected: Choice?) {
        #expect(ProtocolSelectionHandler.choice(for: ByteBuffer(string: bytes)) == expected)
    }

    /// A selector on an active embedded channel that records its choices (adding nothing, so
    /// the handed-on bytes land in the channel's inbound buffer).
    final class Recorder {
        var choices: [Choice] = []
    }

    func activeChannel(mode: ProtocolSelectionHandler.Mode, recorder: Recorder) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let selector = ProtocolSelectionHandler(mode: mode, timeout: .seconds(5)) { _, choice in recorder.choices.append(choice) }
        try channel.pipeline.syncOperations.addHandler(selector)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func inbound(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    @Test("a preface split over several reads selects HTTP/2 once and hands every byte on")
    func prefaceInPieces() throws {
        let recorder = Recorder()
        let channel = try activeChannel(mode: .preface, recorder: recorder)
        try channel.writeInbound(ByteBuffer(string: "PRI * HT"))
        try channel.writeInbound(ByteBuffer(string: "TP/2.0\r\n\r\nS"))
        #expect(recorder.choices.isEmpty)
        #expect(try inbound(channel).isEmpty)
        try channel.writeInbound(ByteBuffer(string: "M\r\n\r\nframes"))
        #expect(recorder.choices == [.http2])
        #expect(try inbound(channel) == "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nframes")
        #expect((try? channel.pipeline.syncOperations.handler(type: ProtocolSelectionHandler.self)) == nil, "the selector left")
        try channel.writeInbound(ByteBuffer(string: "more"))
        #expect(try inbound(channel) == "more")
        _ = try channel.finish()
    }

    @Test("an HTTP/1.1 request is handed on from its first read")
    func http1() throws {
        let recorder = Recorder()
        let channel = try activeChannel(mode: .preface, recorder: recorder)
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\n"))
        #expect(recorder.choices == [.http1])
        #expect(try inbound(channel) == "GET / HTTP/1.1\r\n")
        _ = try channel.finish()
    }

    @Test("ALPN picks the protocol; without ALPN the bytes decide", arguments: [
        ("h2", "x", Choice.http2), ("http/1.1", "x", .http1),
        (nil, "GET / HTTP/1.1\r\n", .http1), (nil, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", .http2),
    ] as [(String?, String, Choice)])
    func alpn(negotiated: String?, bytes: String, expected: Choice) throws {
        let recorder = Recorder()
        let channel = try activeChannel(mode: .alpn, recorder: recorder)
        channel.pipeline.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: negotiated))
        try channel.writeInbound(ByteBuffer(string: bytes))
        #expect(recorder.choices == [expected])
        #expect(try inbound(channel) == bytes)
        _ = try channel.finish()
    }

    @Test("a connection that sends nothing is closed after the timeout")
    func silentConnection() throws {
        let recorder = Recorder()
        let channel = try activeChannel(mode: .preface, recorder: recorder)
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
        #expect(recorder.choices.isEmpty)
    }
}
