import NIOCore
import NIOHTTP1

/// Builds the pipeline of one downstream connection, top to bottom (after TLS, if any):
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
///    the gateway's CPU per request.
/// 3. ``ProxyHandler``: routing, leasing, forwarding.
///
/// Must run on the channel's event loop.
func configureGatewayConnection(
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
    try pipeline.addHandler(ProxyHandler(environment: environment, loop: loop, headTimer: headTimer))
}
