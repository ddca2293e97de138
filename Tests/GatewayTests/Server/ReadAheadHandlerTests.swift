@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// The read-ahead below NIO's pipelining handler: reads go on while one whole request is being
/// answered, and stop as soon as a pipelined request arrives behind it.
@Suite("Read-ahead")
struct ReadAheadHandlerTests {
    static let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/")

    /// One socket read that brought `parts`.
    static func read(_ parts: [HTTPServerRequestPart], into channel: EmbeddedChannel) {
        for part in parts { channel.pipeline.fireChannelRead(NIOAny(part)) }
        channel.pipeline.fireChannelReadComplete()
    }

    @Test("one request in flight keeps reading; a pipelined one behind it stops the read-ahead")
    func readsWhileAnswering() throws {
        let counter = OutboundCounter()
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandlers([counter, ReadAheadHandler(), HTTPServerPipelineHandler()])

        Self.read([.head(Self.head)], into: channel)
        #expect(counter.reads == 0, "a request still arriving: the handlers above decide")
        Self.read([.end(nil)], into: channel)
        #expect(counter.reads == 1, "the read goes on while the response is pending")
        channel.read()
        #expect(counter.reads == 1, "the pipelining handler itself holds reads back")

        try channel.writeOutbound(HTTPServerResponsePart.head(HTTPResponseHead(version: .http1_1, status: .ok)))
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        #expect(counter.reads == 2, "answered: the held-back read goes through")

        // The next request, and a pipelined one right behind it.
        Self.read([.head(Self.head), .end(nil), .head(Self.head)], into: channel)
        #expect(counter.reads == 2, "something arrived behind the request: no read-ahead")
        _ = try channel.finish(acceptAlreadyClosed: true)
    }
}
