@testable import Gateway
import NIOHTTP1
import Testing

/// The heads of a WebSocket upgrade: what the gateway notices in the request and what the
/// client gets with the worker's 101.
@Suite("Upgrade heads")
struct UpgradeHeadersTests {
    @Test("the first Upgrade value is noted; requests without one note nothing")
    func upgradeValue() {
        let upgrade = RequestHeadInfo(HTTPHeaders([("Host", "a"), ("Upgrade", "websocket"), ("Upgrade", "h2c")]))
        #expect(upgrade.upgrade == "websocket")
        #expect(RequestHeadInfo(HTTPHeaders([("Host", "a"), ("Connection", "upgrade")])).upgrade == nil)
    }

    @Test("the client's 101 keeps end-to-end headers, drops hop-by-hop ones and says what it upgrades to")
    func switchingProtocolsHead() {
        let worker = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: HTTPHeaders([
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Keep-Alive", "timeout=5"),
            ("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), ("X-Request-Id", "worker's"),
        ]))
        let head = ProxyHandler.switchingProtocolsHead(from: worker, upgrade: "websocket", requestID: "gateway's")
        #expect(head.status == .switchingProtocols)
        #expect(head.headers["sec-websocket-accept"] == ["s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        #expect(head.headers["connection"] == ["upgrade"])
        #expect(head.headers["upgrade"] == ["websocket"])
        #expect(head.headers["keep-alive"].isEmpty)
        #expect(head.headers["x-request-id"] == ["gateway's"])
    }
}
