@testable import Gateway
import NIOCore
import NIOEmbedded
import Testing

/// The flush coalescing below the HTTP/2 handler: flushes within one event-loop pass become one
/// write to the socket, sent when the pass's tasks run; closing sends what is owed first.
@Suite("Flush coalescing")
struct FlushCoalescingHandlerTests {
    static func bytes(_ text: String) -> IOData {
        .byteBuffer(ByteBuffer(string: text))
    }

    static func written(_ channel: EmbeddedChannel) throws -> [String] {
        var out: [String] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { out.append(String(buffer: buffer)) }
        return out
    }

    @Test("flushes in one pass reach the socket once, after the pass")
    func coalesces() throws {
        let counter = OutboundCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, FlushCoalescingHandler()])

        channel.write(Self.bytes("a"), promise: nil)
        channel.flush()
        channel.write(Self.bytes("b"), promise: nil)
        channel.flush()
        #expect(counter.flushes == 0, "the flush waits for the end of the pass")
        #expect(try Self.written(channel).isEmpty)

        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 1)
        #expect(try Self.written(channel) == ["a", "b"])

        // The next pass flushes again.
        channel.write(Self.bytes("c"), promise: nil)
        channel.flush()
        channel.embeddedEventLoop.run()
        #expect(counter.flushes == 2)
        #expect(try Self.written(channel) == ["c"])
        _ = try channel.finish(acceptAlreadyClosed: true)
    }

    @Test("closing sends a write whose flush is still queued")
    func closeFlushesFirst() throws {
        let counter = OutboundCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, FlushCoalescingHandler()])
        let goaway = channel.eventLoop.makePromise(of: Void.self)
        channel.write(Self.bytes("goaway"), promise: goaway)
        channel.flush()
        channel.close(promise: nil)
        #expect(counter.flushes == 1, "flushed before the close went down")
        var sent = false
        goaway.futureResult.whenSuccess { sent = true }
        channel.embeddedEventLoop.run()
        #expect(sent, "the write was sent, not failed by the close")
        #expect(counter.flushes == 1, "the queued task finds nothing left to flush")
    }
}
