import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOSSL

/// Sets up a new downstream connection (after TLS, if any): a ``ProtocolSelectionHandler``
/// that picks HTTP/1.1 or HTTP/2 (prior knowledge on plaintext, ALPN on TLS) and then builds
/// that protocol's pipeline with ``configureHTTP1Connection(_:configuration:environment:loop:)``
/// or ``configureHTTP2Connection(_:configuration:environment:loop:)``.
///
/// Must run on the channel's event loop.
func configureGatewayConnection(
    _ channel: any Channel,
    configuration: GatewayConfiguration,
    environment: ProxyEnvironment,
    loop: LoopContext,
    secure: Bool = false
) throws {
    let selector = ProtocolSelectionHandler(
        mode: secure ? .alpn : .preface, timeout: TimeAmount(configuration.idleTimeout)
    ) { channel, choice in
        switch choice {
        case .http1: try configureHTTP1Connection(channel, configuration: configuration, environment: environment, loop: loop)
        case .http2: try configureHTTP2Connection(channel, configuration: configuration, environment: environment, loop: loop)
        }
    }
    try channel.pipeline.syncOperations.addHandler(selector)
}

/// Builds the pipeline of one HTTP/1.1 downstream connection, top to bottom (after TLS and the
/// protocol selection, if any):
///
/// 0. ``RequestHeadTimer``: a request head must arrive within `requestHeadersTimeout` of its
///    first byte, or the connection gets a 408 and closes.
/// 1. `IdleStateHandler`: reports a connection that read nothing for `idleTimeout`
///    (``ProxyHandler`` closes it if no request is in flight).
/// 2. NIO's HTTP/1.1 server codec: response encoder, request decoder (with the header size
///    limit; oversize heads become 431), `HTTPServerPipelineHandler` (one request at a time,
///    graceful quiescing). NIO's protocol error handler is left out: ``ProxyHandler`` answers
///    parse errors with the gateway's JSON errors. Outbound header validation is left out too:
///    response heads come from llhttp's parse of the worker's answer (already validated) plus
///    headers the gateway builds from checked values, and re-validating them cost a tenth of
///    the gateway's CPU per request. ``ReadAheadHandler`` sits below the pipeline handler and
///    keeps the socket registered for reading while a request is answered.
/// 3. ``ProxyHandler``: routing, leasing, forwarding.
///
/// A WebSocket upgrade later replaces everything after TLS with a ``TunnelHandler``.
///
/// Must run on the channel's event loop.
func configureHTTP1Connection(
    _ channel: any Channel,
    configuration: GatewayConfiguration,
    environment: ProxyEnvironment,
    loop: LoopContext
) throws {
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderListSize = configuration.maxHeaderBytes
    limits.maxHeaderFieldSize = configuration.maxHeaderBytes
    let pipeline = channel.pipeline.syncOperations
    let headTimer = RequestHeadTimer(timeout: TimeAmount(configuration.requestHeadersTimeout))
    try pipeline.addHandler(headTimer)
    try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(configuration.idleTimeout)))
    try pipeline.configureHTTPServerPipeline(
        withPipeliningAssistance: true,
        withServerUpgrade: nil,
        withErrorHandling: false,
        withOutboundHeaderValidation: false,
        withEncoderConfiguration: .init(),
        withDecoderLimitConfiguration: limits
    )
    try pipeline.addHandler(ReadAheadHandler(), position: .before(try pipeline.handler(type: HTTPServerPipelineHandler.self)))
    try pipeline.addHandler(ProxyHandler(environment: environment, loop: loop, headTimer: headTimer))
}

/// The header list size an HTTP/2 connection announces, and the most its HPACK decoder takes:
/// twice the request-head limit. A block between the limit and this cap is decoded (the
/// decoder's table must stay in step with the client's) and its stream gets 431 from the
/// ``ProxyHandler``, as over HTTP/1.1; a larger one ends the connection.
func http2HeaderListCap(_ maxHeaderBytes: Int) -> Int {
    maxHeaderBytes > Int.max / 2 ? Int.max : maxHeaderBytes * 2
}

/// Builds the pipeline of one HTTP/2 downstream connection: NIO's HTTP/2 handler (settings:
/// `maxConcurrentStreams`, header list size ``http2HeaderListCap(_:)``) with one child channel per
/// stream, and NIO's server connection manager, which closes a connection without open streams
/// after `idleTimeout` and, when the gateway drains, sends GOAWAY and closes once the open
/// streams have finished (at most `drainTimeout`).
///
/// Below NIO's handler, a ``FlushCoalescingHandler`` sends the frames of the streams that
/// answered in one event-loop pass in one write.
///
/// Each stream gets `HTTP2FramePayloadToHTTP1ServerCodec` and ``HTTP2RequestFramingHandler`` in
/// front of its own ``ProxyHandler``, so a stream is proxied exactly like an HTTP/1.1 request (routing, policies, retries,
/// telemetry, and the client identity of the connection's TLS handshake); workers still get
/// HTTP/1.1.
///
/// Must run on the channel's event loop.
func configureHTTP2Connection(
    _ channel: any Channel,
    configuration: GatewayConfiguration,
    environment: ProxyEnvironment,
    loop: LoopContext
) throws {
    let pipeline = channel.pipeline.syncOperations
    var connection = NIOHTTP2Handler.ConnectionConfiguration()
    let headerListCap = http2HeaderListCap(configuration.maxHeaderBytes)
    connection.initialSettings = [
        HTTP2Setting(parameter: .maxConcurrentStreams, value: configuration.maxConcurrentStreams),
        HTTP2Setting(parameter: .maxHeaderListSize, value: headerListCap),
    ]
    // Enough CONTINUATION frames of the default 16 KiB frame size to carry a block up to the cap
    // (NIO's default, 5, stops at 96 KiB); the cap still bounds what one block can hold.
    connection.maximumSequentialContinuationFrames = max(5, headerListCap / 16_384 + 1)
    let manager = NIOHTTP2ServerConnectionManagementHandler(
        eventLoop: channel.eventLoop,
        configuration: .init(
            maxIdleTime: TimeAmount(configuration.idleTimeout), maxAge: nil,
            maxGraceTime: TimeAmount(configuration.drainTimeout), keepalive: nil))
    let streamLoop = NIOLoopBound(loop, eventLoop: channel.eventLoop)
    // The TLS handshake (if any) is complete: every stream has the connection's client identity.
    let peer: PeerInfo
    if let tls = try? pipeline.handler(type: NIOSSLServerHandler.self) {
        peer = PeerInfo.from(tls, gatewayIdentity: environment.tls.current.identity)
    } else {
        peer = .plaintext
    }
    let http2 = NIOHTTP2Handler(
        mode: .server, eventLoop: channel.eventLoop, connectionConfiguration: connection,
        streamDelegate: manager.http2StreamDelegate
    ) { stream in
        stream.eventLoop.makeCompletedFuture {
            let streamPipeline = stream.pipeline.syncOperations
            try streamPipeline.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
            try streamPipeline.addHandler(HTTP2RequestFramingHandler())
            let proxy = ProxyHandler(environment: environment, loop: streamLoop.value)
            proxy.peer = peer
            try streamPipeline.addHandler(proxy)
        }
    }
    try pipeline.addHandler(FlushCoalescingHandler())
    try pipeline.addHandler(http2)
    try pipeline.addHandler(manager)
    try pipeline.addHandler(HTTP2ConnectionErrorCloser())
    // The connection became active before the manager joined: start its idle clock now.
    try pipeline.context(handler: http2).fireChannelActive()
}

/// Closes an HTTP/2 connection once NIO's handler has answered a connection error with GOAWAY:
/// NIO stops reading the connection then but leaves it open, so a client whose header block
/// could not be decoded (more than NIO's 16 KiB before our SETTINGS are acknowledged, say)
/// waited for an answer forever. Stream errors, which end one stream, pass on.
final class HTTP2ConnectionErrorCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if Self.endsConnection(error) {
            context.close(promise: nil)
        } else {
            context.fireErrorCaught(error)
        }
    }

    /// Errors NIO raises while decoding frames or header blocks: always connection errors.
    static func endsConnection(_ error: any Error) -> Bool {
        error is any NIOHPACKError || error is NIOHTTP2Errors.UnableToParseFrame || error is NIOHTTP2Errors.BadClientMagic
            || error is NIOHTTP2Errors.ExcessivelyLargeHeaderBlock || error is NIOHTTP2Errors.ExcessiveContinuationFrames
    }
}
