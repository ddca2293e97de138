import NIOCore
import NIOHTTP1

/// A request the gateway answers itself, with a status and a JSON body
/// `{"error":{"code":"…","message":"…"}}` (on a model's host, KServe's `{"error":"…"}`, see
/// ``inferenceProtocolBody``). Fixed errors are rendered once; the ones that name a
/// host or carry a resolver message are rendered when they happen (off the success path).
struct ProxyError: Error, Sendable {
    /// The status sent to the client.
    let status: HTTPResponseStatus
    /// A machine-readable code, for example `RouteNotFound`.
    let code: String
    /// What went wrong and what to do about it.
    let message: String
    /// The rendered JSON body.
    let body: ByteBuffer
    /// The Envoy response flags the request is counted with.
    let responseFlags: ResponseFlags
    /// Headers sent besides the fixed ones (`Retry-After`, `Location`).
    var extraHeaders: [(name: String, value: String)] = []

    /// The same error in KServe's shape, `{"error":"…"}`, for a model's host: clients of the
    /// Open Inference Protocol (tritonclient) read the error as one string.
    var inferenceProtocolBody: ByteBuffer {
        var body = ByteBuffer()
        body.writeStaticString(#"{"error":""#)
        Self.writeJSONEscaped(message, into: &body)
        body.writeStaticString(#""}"#)
        return body
    }

    init(status: HTTPResponseStatus, code: String, message: String, flags: ResponseFlags) {
        self.status = status
        self.responseFlags = flags
        self.code = code
        self.message = message
        var body = ByteBuffer()
        body.writeStaticString(#"{"error":{"code":""#)
        Self.writeJSONEscaped(code, into: &body)
        body.writeStaticString(#"","message":""#)
        Self.writeJSONEscaped(message, into: &body)
        body.writeStaticString(#""}}"#)
        self.body = body
    }

    /// Writes `text` as the inside of a JSON string literal.
    static func writeJSONEscaped(_ text: String, into buffer: inout ByteBuffer) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString(#"\""#)
            case UInt8(ascii: "\\"): buffer.writeStaticString(#"\\"#)
            case UInt8(ascii: "\n"): buffer.writeStaticString(#"\n"#)
            case UInt8(ascii: "\r"): buffer.writeStaticString(#"\r"#)
            case UInt8(ascii: "\t"): buffer.writeStaticString(#"\t"#)
            case 0..<0x20:
                let hex: [UInt8] = Array("0123456789abcdef".utf8)
                buffer.writeStaticString(#"\u00"#)
                buffer.writeInteger(hex[Int(byte >> 4)])
                buffer.writeInteger(hex[Int(byte & 0xF)])
            default:
                buffer.writeInteger(byte)
            }
        }
    }
}

extension ProxyError {
    /// 400: no `Host` header.
    static let missingHost = ProxyError(
        status: .badRequest, code: "MissingHost",
        message: "the request has no Host header; send Host: <service>.<namespace>.<domain>", flags: .downstreamProtocolError)
    /// 400: several `Host` headers.
    static let multipleHosts = ProxyError(
        status: .badRequest, code: "InvalidHost", message: "the request has more than one Host header", flags: .downstreamProtocolError)
    /// 400: ambiguous body framing (request smuggling guard).
    static let invalidFraming = ProxyError(
        status: .badRequest, code: "InvalidFraming",
        message: "the request body framing is ambiguous: both Content-Length and Transfer-Encoding, conflicting Content-Length values, or a Transfer-Encoding other than chunked alone", flags: .downstreamProtocolError)
    /// 400: a TRACE request with a body (NIO frames TRACE as bodiless: the body would reach the
    /// worker as the start of another request).
    static let traceWithBody = ProxyError(
        status: .badRequest, code: "InvalidFraming", message: "a TRACE request must not have a body", flags: .downstreamProtocolError)
    /// 400: a request target other than a path, `*` (OPTIONS) or an `http(s)://host/path` URI.
    static let invalidTarget = ProxyError(
        status: .badRequest, code: "InvalidTarget",
        message: "the request target must be a path (/…), * for OPTIONS, or an http(s)://<host>/… URI without user info", flags: .downstreamProtocolError)
    /// 400: `%00` in the path (as nginx refuses it): a worker that decodes the path into a C
    /// string would see it end there, after policies judged the whole of it.
    static let encodedNul = ProxyError(
        status: .badRequest, code: "InvalidPath", message: "the path must not contain %00 (an encoded NUL)",
        flags: .downstreamProtocolError)
    /// 405: CONNECT; the gateway is no forward proxy.
    static let connectNotAllowed: ProxyError = {
        var error = ProxyError(
            status: .methodNotAllowed, code: "MethodNotAllowed",
            message: "CONNECT is not supported: the gateway is not a forward proxy", flags: .downstreamProtocolError)
        error.extraHeaders = [("allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")]
        return error
    }()
    /// 400: the bytes are not HTTP/1.x.
    static let malformedRequest = ProxyError(
        status: .badRequest, code: "MalformedRequest",
        message: "the request is not valid HTTP/1.1 (bad syntax, or ambiguous body framing)", flags: .downstreamProtocolError)
    /// 502: the worker refused the connection.
    static let upstreamConnectFailed = ProxyError(
        status: .badGateway, code: "UpstreamConnectFailed",
        message: "the worker refused the connection or could not be reached", flags: .upstreamConnectionFailure)
    /// 502: the worker closed the connection without answering.
    static let upstreamClosed = ProxyError(
        status: .badGateway, code: "UpstreamClosed",
        message: "the worker closed the connection before sending a response", flags: .upstreamConnectionTermination)

    /// 431: the request head is larger than the configured limit.
    static func headersTooLarge(limit: Int) -> ProxyError {
        ProxyError(
            status: .requestHeaderFieldsTooLarge, code: "RequestHeaderFieldsTooLarge",
            message: "the request headers exceed \(limit) bytes", flags: .downstreamProtocolError)
    }

    /// 431: more header fields than the configured limit.
    static func tooManyHeaders(limit: Int) -> ProxyError {
        ProxyError(
            status: .requestHeaderFieldsTooLarge, code: "RequestHeaderFieldsTooLarge",
            message: "the request has more than \(limit) header fields", flags: .downstreamProtocolError)
    }

    /// 404: no route for the host.
    static func routeNotFound(host: String, domain: String) -> ProxyError {
        ProxyError(
            status: .notFound, code: "RouteNotFound",
            message: "no service answers to host '\(host)'; expected <service>.<namespace>.\(domain)", flags: .noRoute)
    }

    /// 503: the route exists but has no ready revision.
    static func noReadyRevision(_ route: Route) -> ProxyError {
        ProxyError(
            status: .serviceUnavailable, code: "NoReadyRevision",
            message: "service \(route.namespace)/\(route.service) has no ready revision yet", flags: .noHealthyUpstream)
    }

    /// 503: the resolver could not lease a worker.
    static func unavailable(_ error: UpstreamUnavailable) -> ProxyError {
        ProxyError(status: .serviceUnavailable, code: error.code, message: error.message, flags: .noHealthyUpstream)
    }

    /// 504: no response head within the target's timeout.
    static func gatewayTimeout(_ timeout: Duration) -> ProxyError {
        ProxyError(
            status: .gatewayTimeout, code: "GatewayTimeout",
            message: "the worker did not respond within \(timeout)", flags: .upstreamRequestTimeout)
    }

    /// 429: the local rate limit has no token; `Retry-After` says when the next one comes.
    static func rateLimited(retryAfter: Duration) -> ProxyError {
        let seconds = max(1, retryAfter.components.seconds + (retryAfter.components.attoseconds > 0 ? 1 : 0))
        var error = ProxyError(
            status: .tooManyRequests, code: "RateLimited",
            message: "the service's local rate limit is exhausted; retry after \(seconds)s", flags: .rateLimited)
        error.extraHeaders = [("retry-after", String(seconds))]
        return error
    }

    /// The status of an injected abort (`fault.abort.httpStatus`).
    static func faultAbort(status: Int) -> ProxyError {
        ProxyError(
            status: HTTPResponseStatus(statusCode: status), code: "FaultInjected",
            message: "fault filter abort", flags: .faultInjected)
    }

    /// 503: a connection-pool limit of the service is reached.
    static func overflow(_ limit: String) -> ProxyError {
        ProxyError(
            status: .serviceUnavailable, code: "UpstreamOverflow",
            message: "the service's connection-pool limit \(limit) is reached", flags: .upstreamOverflow)
    }

    /// A redirect (`HTTPRedirect`) to `location`.
    static func redirect(status: Int, location: String) -> ProxyError {
        var error = ProxyError(
            status: HTTPResponseStatus(statusCode: status), code: "Redirect", message: "moved to \(location)", flags: .none)
        error.extraHeaders = [("location", location)]
        return error
    }

    /// Maps a parser error from NIO's request decoder. (NIO reports llhttp's "Transfer-Encoding
    /// can't be present with Content-Length" as `.unknown`, so that case is `MalformedRequest`.)
    static func parserError(_ error: HTTPParserError, maxHeaderBytes: Int) -> ProxyError {
        switch error {
        case .headerOverflow: return .headersTooLarge(limit: maxHeaderBytes)
        case .invalidContentLength, .unexpectedContentLength: return .invalidFraming
        default: return .malformedRequest
        }
    }
}

extension ProxyError {
    /// 403: plaintext while peer authentication is STRICT.
    static let mutualTLSRequired = ProxyError(
        status: .forbidden, code: "MutualTLSRequired",
        message: "peer authentication is STRICT: connect over TLS with a client certificate from the platform's CA", flags: .downstreamProtocolError)

    /// 413: a body for an in-process endpoint (a model, the broker ingress) larger than it accepts.
    static func bodyTooLarge(limit: Int) -> ProxyError {
        ProxyError(
            status: .payloadTooLarge, code: "RequestBodyTooLarge",
            message: "the request body exceeds \(limit) bytes, the most this endpoint accepts", flags: .downstreamProtocolError)
    }
}
