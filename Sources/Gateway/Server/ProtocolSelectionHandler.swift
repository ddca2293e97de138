import NIOCore
import NIOTLS

/// The first handler of a new downstream connection (after TLS, if any): it decides between
/// HTTP/1.1 and HTTP/2, builds that protocol's pipeline behind itself, hands over what it read
/// and leaves the pipeline. An HTTP/1.1 connection pays for it once, on its first read.
///
/// - Plaintext: HTTP/2 with prior knowledge (h2c) is recognised by the client connection preface
///   `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`; the first byte that differs from it means HTTP/1.1
///   (no HTTP/1.1 method starts with `PRI `).
/// - TLS: the protocol negotiated with ALPN (`h2` or `http/1.1`); a client that offered no ALPN
///   gets the plaintext rule on the decrypted bytes.
///
/// A connection that has not chosen within `timeout` (no bytes, a stalled handshake) or that is
/// asked to quiesce before choosing is closed.
final class ProtocolSelectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// How the protocol is recognised.
    enum Mode {
        /// By the first bytes (plaintext, or TLS without ALPN).
        case preface
        /// By the TLS handshake's ALPN result.
        case alpn
    }

    /// The protocol picked for the connection.
    enum Choice: Equatable {
        case http1
        case http2
    }

    /// The HTTP/2 client connection preface (RFC 9113 §3.4).
    static let preface: [UInt8] = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    private var mode: Mode
    private let timeout: TimeAmount
    private let configure: (any Channel, Choice) throws -> Void
    private var buffered: ByteBuffer?
    private var timer: Scheduled<Void>?
    private var decided = false

    /// `configure` adds the chosen protocol's handlers at the end of the pipeline.
    init(mode: Mode, timeout: TimeAmount, configure: @escaping (any Channel, Choice) throws -> Void) {
        self.mode = mode
        self.timeout = timeout
        self.configure = configure
    }

    /// The protocol `bytes` (the start of a connection) announce, or `nil` while they are a
    /// proper prefix of the HTTP/2 preface.
    static func choice(for bytes: ByteBuffer) -> Choice? {
        let view = bytes.readableBytesView
        let count = min(view.count, preface.count)
        var index = view.startIndex
        for expected in preface[..<count] {
            if view[index] != expected { return .http1 }
            index += 1
        }
        return count == preface.count ? .http2 : nil
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { armTimer(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        armTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !decided else {
            context.fireChannelRead(data)
            return
        }
        var bytes = unwrapInboundIn(data)
        if var earlier = buffered {
            earlier.writeBuffer(&bytes)
            bytes = earlier
        }
        buffered = bytes
        if mode == .preface, let choice = Self.choice(for: bytes) {
            select(choice, context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let tls = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = tls {
            context.fireUserInboundEventTriggered(event)
            guard !decided, mode == .alpn else { return }
            switch negotiated {
            case "h2":
                select(.http2, context: context, completingRead: true)
            case "http/1.1":
                select(.http1, context: context, completingRead: true)
            default:
                // No ALPN: look at the bytes, as on the plaintext listener.
                mode = .preface
                if let bytes = buffered, let choice = Self.choice(for: bytes) {
                    select(choice, context: context, completingRead: true)
                }
            }
            return
        }
        if event is ChannelShouldQuiesceEvent, !decided {
            // Draining before the first request: nothing to finish.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func armTimer(context: ChannelHandlerContext) {
        guard timer == nil, !decided else { return }
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
            timer = nil
            if !decided { context.close(promise: nil) }
        }
    }

    /// Builds the pipeline for `choice`, passes on the buffered bytes and leaves. Outside a read
    /// (`completingRead`), the bytes passed on are followed by a read-complete.
    private func select(_ choice: Choice, context: ChannelHandlerContext, completingRead: Bool = false) {
        decided = true
        timer?.cancel()
        timer = nil
        do {
            try configure(context.channel, choice)
        } catch {
            context.close(promise: nil)
            return
        }
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(wrapInboundOut(bytes))
            if completingRead { context.fireChannelReadComplete() }
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
