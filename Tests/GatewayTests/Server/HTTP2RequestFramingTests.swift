@testable import Gateway
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

/// ``HTTP2RequestFramingHandler``: an HTTP/2 request without `Content-Length` reaches the proxy
/// with the framing its HTTP/1.1 copy needs.
@Suite("HTTP/2 request framing")
struct HTTP2RequestFramingTests {
    func run(_ parts: [HTTPServerRequestPart]) throws -> (parts: [HTTPServerRequestPart], left: Bool) {
        let channel = EmbeddedChannel(handler: HTTP2RequestFramingHandler())
        for part in parts { try channel.writeInbound(part) }
        var out: [HTTPServerRequestPart] = []
        while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { out.append(part) }
        let left = (try? channel.pipeline.syncOperations.handler(type: HTTP2RequestFramingHandler.self)) == nil
        _ = try channel.finish()
        return (out, left)
    }

    func head(_ method: HTTPMethod, _ headers: [(String, String)] = []) -> HTTPRequestHead {
        HTTPRequestHead(version: .init(major: 2, minor: 0), method: method, uri: "/", headers: HTTPHeaders([("host", "a")] + headers))
    }

    @Test("a body without Content-Length makes the head chunked")
    func bodyWithoutLength() throws {
        let (parts, left) = try run([.head(head(.DELETE)), .body(ByteBuffer(string: "x")), .end(nil)])
        guard parts.count == 3, case .head(let sent) = parts[0] else { Issue.record("\(parts)"); return }
        #expect(sent.headers["transfer-encoding"] == ["chunked"])
        #expect(left)
    }

    @Test("a head that ends its stream passes unchanged", arguments: [HTTPMethod.GET, .POST])
    func noBody(method: HTTPMethod) throws {
        let (parts, left) = try run([.head(head(method)), .end(nil)])
        guard parts.count == 2, case .head(let sent) = parts[0] else { Issue.record("\(parts)"); return }
        #expect(sent.headers["transfer-encoding"].isEmpty)
        #expect(left)
    }

    @Test("a head with Content-Length passes at once")
    func withLength() throws {
        let (parts, left) = try run([.head(head(.PUT, [("content-length", "1")]))])
        guard parts.count == 1, case .head(let sent) = parts[0] else { Issue.record("\(parts)"); return }
        #expect(sent.headers["transfer-encoding"].isEmpty)
        #expect(left)
    }
}
