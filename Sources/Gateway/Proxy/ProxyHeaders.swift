import NIOCore
import NIOHTTP1

/// The client end of a downstream connection, rendered once per connection for the
/// `X-Forwarded-For` and `Forwarded` headers.
struct ClientAddress: Sendable, Equatable {
    /// The address as it goes into `X-Forwarded-For` (`127.0.0.1`, `::1`).
    let ip: String
    /// The RFC 7239 node as it goes into `Forwarded` (`for=127.0.0.1`, `for="[::1]"`).
    let forwardedNode: String

    init(ip: String, isIPv6: Bool) {
        self.ip = ip
        self.forwardedNode = isIPv6 ? "for=\"[\(ip)]\"" : "for=\(ip)"
    }

    /// Renders a peer address; IPv4-mapped IPv6 addresses are shown as IPv4.
    init(_ address: SocketAddress?) {
        switch address {
        case .some(.v4(let v4)):
            self.init(ip: SocketAddress.v4(v4).ipAddress ?? "unknown", isIPv6: false)
        case .some(.v6(let v6)):
            let ip = SocketAddress.v6(v6).ipAddress ?? "unknown"
            if ip.hasPrefix("::ffff:"), ip.contains(".") {
                self.init(ip: String(ip.dropFirst(7)), isIPv6: false)
            } else {
                self.init(ip: ip, isIPv6: true)
            }
        default:
            self = ClientAddress(ip: "unknown", isIPv6: false)
        }
    }
}

/// What the gateway needs to know about a request head, gathered in one pass over its headers.
struct RequestHeadInfo {
    /// The `Host` value (the first one, if several were sent).
    var host: String?
    /// How many `Host` lines the request carried.
    var hostCount = 0
    /// The declared body length, if a valid `Content-Length` was sent.
    var contentLength: Int?
    /// Several `Content-Length` values that disagree, or one that is not a number.
    var invalidContentLength = false
    /// A `Transfer-Encoding` header was present (the body is chunked).
    var hasTransferEncoding = false
    /// The last transfer coding is `chunked` (required for a request, RFC 9112 §6.3).
    var isChunked = false
    /// Transfer codings over every `Transfer-Encoding` line. Only `chunked` alone can be
    /// proxied: the gateway re-frames bodies and would drop any other coding (`gzip, chunked`),
    /// and `identity` is obsolete.
    var transferCodingCount = 0
    /// `Expect: 100-continue` was sent; the gateway answers it itself once a worker is connected.
    var expectsContinue = false
    /// The first `X-Request-Id` value, if any (validated later).
    var requestID: String?
    /// The first `traceparent` value, if any (validated later).
    var traceparent: String?
    /// The first `Upgrade` value, if any (`websocket`, `h2c`, …).
    var upgrade: String?

    init(_ headers: HTTPHeaders) {
        for (name, value) in headers {
            switch name.utf8.count {
            case 4 where name.equalsIgnoringASCIICase("host"):
                hostCount += 1
                if host == nil { host = value }
            case 14 where name.equalsIgnoringASCIICase("content-length"):
                guard let length = Int(value.trimmingASCIIWhitespace()), length >= 0 else {
                    invalidContentLength = true
                    continue
                }
                if let existing = contentLength, existing != length { invalidContentLength = true }
                contentLength = length
            case 17 where name.equalsIgnoringASCIICase("transfer-encoding"):
                hasTransferEncoding = true
                transferCodingCount += value.split(separator: ",").count
                let last = value.split(separator: ",").last?.trimmingASCIIWhitespace()
                isChunked = last?.equalsIgnoringASCIICase("chunked") ?? false
            case 6 where name.equalsIgnoringASCIICase("expect"):
                if value.trimmingASCIIWhitespace().equalsIgnoringASCIICase("100-continue") { expectsContinue = true }
            case 11 where name.equalsIgnoringASCIICase("traceparent"):
                if traceparent == nil { traceparent = value }
            case 12 where name.equalsIgnoringASCIICase("x-request-id"):
                if requestID == nil { requestID = value }
            case 7 where name.equalsIgnoringASCIICase("upgrade"):
                if upgrade == nil { upgrade = value }
            default:
                continue
            }
        }
    }

    /// Whether a body follows the head.
    var hasBody: Bool { hasTransferEncoding || (contentLength ?? 0) > 0 }

    /// Why the head cannot be proxied, or `nil` when it can.
    var problem: ProxyError? {
        if hostCount == 0 || (host?.isEmpty ?? true) { return .missingHost }
        if hostCount > 1 { return .multipleHosts }
        if invalidContentLength || (hasTransferEncoding && (contentLength != nil || !isChunked || transferCodingCount != 1)) {
            return .invalidFraming
        }
        return nil
    }
}

/// Rewrites heads between the client and the worker: hop-by-hop headers out, forwarding
/// headers in. NIO's encoders re-frame bodies (`Transfer-Encoding` is regenerated).
enum ProxyHeaders {
    /// The role a header plays for the proxy, decided by name.
    enum Role {
        case hopByHop, xForwardedFor, xForwardedProto, forwarded, expect, requestID, traceparent, clientCert, other
    }

    /// An absolute-form request (`GET http://host/path`) as origin-form: RFC 9112 §3.2.2 says
    /// the target's authority replaces any `Host` header. Nil for other targets (`*`, a bare
    /// authority), which the gateway handles as it did.
    static func originForm(of head: HTTPRequestHead) -> HTTPRequestHead? {
        let uri = head.uri
        let scheme: String
        if uri.count > 7, uri.prefix(7).lowercased() == "http://" { scheme = "http://" }
        else if uri.count > 8, uri.prefix(8).lowercased() == "https://" { scheme = "https://" }
        else { return nil }
        let rest = uri.dropFirst(scheme.count)
        let end = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        let authority = rest[..<end]
        // A missing or repeated Host stays a 400 (RFC 9112 §3.2), absolute-form or not.
        let hosts = head.headers[canonicalForm: "host"].count
        guard !authority.isEmpty, !authority.contains("@"), hosts == 1 || (hosts == 0 && head.version == .http1_0) else { return nil }
        var head = head
        let path = rest[end...]
        head.uri = path.first == "?" ? "/" + path : (path.isEmpty ? "/" : String(path))
        head.headers.remove(name: "host")
        head.headers.add(name: "host", value: String(authority))
        return head
    }

    /// Why the gateway will not proxy a request line, or nil when it will: an origin-form target
    /// (`/path`, the only form left once ``originForm(of:)`` has converted an absolute-form
    /// http(s) one), or `*` for OPTIONS. Any other target (`ftp://…`, `http://user@host/…`, a
    /// bare authority) is not a path that routing and authorization could judge as the worker
    /// would. CONNECT gets 405 (no forward proxying); a TRACE with a body gets 400, since NIO's
    /// request encoder frames TRACE as bodiless and the body would reach the worker as the
    /// start of another request. One byte compare and a method switch on the common path.
    static func requestLineProblem(of head: HTTPRequestHead, hasBody: Bool) -> ProxyError? {
        switch head.method {
        case .CONNECT: return .connectNotAllowed
        case .TRACE where hasBody: return .traceWithBody
        case .OPTIONS where head.uri == "*": return nil
        default:
            guard head.uri.utf8.first == UInt8(ascii: "/") else { return .invalidTarget }
            return RequestPath.hasEncodedNul(head.uri) ? .encodedNul : nil
        }
    }

    /// A head's size as HTTP/2 counts a header list: each field's name and value plus 32
    /// (RFC 9113 §6.5.2), with the method and path counted as the pseudo-header fields they
    /// came from.
    static func headerListSize(_ head: HTTPRequestHead) -> Int {
        var size = 7 + head.method.rawValue.utf8.count + 32 + 5 + head.uri.utf8.count + 32  // :method, :path
        for (name, value) in head.headers { size += name.utf8.count + value.utf8.count + 32 }
        return size
    }

    /// Classifies a header name (length first, so most names cost one integer compare).
    static func role(of name: String) -> Role {
        switch name.utf8.count {
        case 2 where name.equalsIgnoringASCIICase("te"): return .hopByHop
        case 6 where name.equalsIgnoringASCIICase("expect"): return .expect
        case 7 where name.equalsIgnoringASCIICase("trailer") || name.equalsIgnoringASCIICase("upgrade"):
            return .hopByHop
        case 9 where name.equalsIgnoringASCIICase("forwarded"): return .forwarded
        case 10 where name.equalsIgnoringASCIICase("connection") || name.equalsIgnoringASCIICase("keep-alive"):
            return .hopByHop
        case 11 where name.equalsIgnoringASCIICase("traceparent"): return .traceparent
        case 12 where name.equalsIgnoringASCIICase("x-request-id"): return .requestID
        case 15 where name.equalsIgnoringASCIICase("x-forwarded-for"): return .xForwardedFor
        case 16 where name.equalsIgnoringASCIICase("proxy-connection"): return .hopByHop
        case 17 where name.equalsIgnoringASCIICase("transfer-encoding"): return .hopByHop
        case 17 where name.equalsIgnoringASCIICase("x-forwarded-proto"): return .xForwardedProto
        case 23 where name.equalsIgnoringASCIICase("x-forwarded-client-cert"): return .clientCert
        default: return .other
        }
    }

    /// Extra header names listed in `Connection` (lowercased), without the ones that frame or
    /// route a message; usually empty, so no allocation.
    static func connectionOptions(in headers: HTTPHeaders) -> [String] {
        var options: [String] = []
        for (name, value) in headers where name.utf8.count == 10 && name.equalsIgnoringASCIICase("connection") {
            // The usual values, without splitting.
            let length = value.utf8.count
            if length == 10 && value.equalsIgnoringASCIICase("keep-alive") || length == 5 && value.equalsIgnoringASCIICase("close") {
                continue
            }
            for token in value.split(separator: ",") {
                let option = token.trimmingASCIIWhitespace()
                // The framing and routing headers are the gateway's, whatever a sender lists:
                // dropping `Content-Length` would send a body NIO's encoder frames as absent
                // (GET, DELETE, …) to a pooled worker connection as a second request.
                if option.isEmpty || option.equalsIgnoringASCIICase("close")
                    || option.equalsIgnoringASCIICase("keep-alive") || option.equalsIgnoringASCIICase("host")
                    || option.equalsIgnoringASCIICase("content-length") || option.equalsIgnoringASCIICase("transfer-encoding")
                    || option.equalsIgnoringASCIICase("te")
                {
                    continue
                }
                options.append(option.lowercased())
            }
        }
        return options
    }

    /// The request head sent to the worker: always HTTP/1.1 with keep-alive, `Host` as sent,
    /// hop-by-hop headers removed, `X-Forwarded-For`/`-Proto` and `Forwarded` added. With
    /// `telemetry`, the client's `X-Request-Id` and `traceparent` are replaced by its values
    /// (`tracestate` passes unchanged). A client's `X-Forwarded-Client-Cert` is always dropped;
    /// the gateway sets its own from the verified client certificate of `peer`.
    static func upstreamRequestHead(
        from head: HTTPRequestHead,
        info: RequestHeadInfo,
        client: ClientAddress,
        telemetry: RequestTelemetry? = nil,
        peer: PeerInfo = .plaintext
    ) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 6)
        forEachUpstreamHeader(from: head, info: info, client: client, telemetry: telemetry, peer: peer) {
            headers.add(name: $0, value: $1)
        }
        return HTTPRequestHead(version: .http1_1, method: head.method, uri: head.uri, headers: headers)
    }

    /// The headers of a request for a ``GatewayMount``, as the fields of its ``LocalRequest``:
    /// those of ``upstreamRequestHead(from:info:client:telemetry:peer:)`` except the forwarding
    /// headers (`X-Forwarded-*`, `Forwarded`), since the request makes no proxy hop. A client's
    /// own forwarding headers pass as sent.
    static func mountFields(
        from head: HTTPRequestHead,
        info: RequestHeadInfo,
        telemetry: RequestTelemetry?
    ) -> [HeaderField] {
        var fields: [HeaderField] = []
        fields.reserveCapacity(head.headers.count + 2)
        forEachUpstreamHeader(from: head, info: info, client: nil, telemetry: telemetry, peer: .plaintext) {
            fields.append(HeaderField(name: $0, value: $1))
        }
        return fields
    }

    /// Calls `emit` with each header of the worker's request head, in order; without `client`,
    /// the client's forwarding headers pass unchanged and none are added.
    @inline(__always)
    private static func forEachUpstreamHeader(
        from head: HTTPRequestHead,
        info: RequestHeadInfo,
        client: ClientAddress?,
        telemetry: RequestTelemetry?,
        peer: PeerInfo,
        _ emit: (String, String) -> Void
    ) {
        let options = connectionOptions(in: head.headers)
        var forwardedFor: String?
        var forwarded: String?
        for (name, value) in head.headers {
            switch role(of: name) {
            case .hopByHop, .xForwardedProto, .clientCert:
                continue
            case .expect where info.expectsContinue:
                continue
            case .xForwardedFor where client != nil:
                forwardedFor = forwardedFor.map { "\($0), \(value)" } ?? value
            case .forwarded where client != nil:
                forwarded = forwarded.map { "\($0), \(value)" } ?? value
            case .requestID where telemetry != nil, .traceparent where telemetry != nil:
                continue
            case .expect, .requestID, .traceparent, .xForwardedFor, .forwarded, .other:
                if !options.isEmpty, options.contains(where: { name.equalsIgnoringASCIICase($0) }) { continue }
                emit(name, value)
            }
        }
        if info.hasTransferEncoding {
            emit("transfer-encoding", "chunked")
        }
        if let client {
            emit("x-forwarded-for", forwardedFor.map { "\($0), \(client.ip)" } ?? client.ip)
            let proto = peer.secure ? "https" : "http"
            emit("x-forwarded-proto", proto)
            // Sized once: interpolation grew the string twice (three allocations per request).
            let host = forwardedValue(info.host ?? "")
            var element = String()
            element.reserveCapacity(client.forwardedNode.utf8.count + 13 + proto.utf8.count + host.utf8.count)
            element += client.forwardedNode
            element += ";proto="
            element += proto
            element += ";host="
            element += host
            emit("forwarded", forwarded.map { "\($0), \(element)" } ?? element)
        }
        if let telemetry {
            emit("x-request-id", telemetry.requestID)
            emit("traceparent", telemetry.trace.traceparent)
        }
        if let certificate = peer.forwardedClientCert {
            emit("x-forwarded-client-cert", certificate)
        }
    }

    /// The response head sent to the client: hop-by-hop headers removed, `version` matching the
    /// client's, and `Connection` set from `keepAlive`. An HTTP/1.0 client gets a
    /// close-delimited body (and `keepAlive` turns false) when the worker sent no length.
    /// With `requestID`, the response carries it as `X-Request-Id` (replacing the worker's).
    static func downstreamResponseHead(
        from head: HTTPResponseHead,
        version: HTTPVersion,
        keepAlive: inout Bool,
        requestID: String? = nil
    ) -> HTTPResponseHead {
        let options = connectionOptions(in: head.headers)
        var headers = HTTPHeaders()
        headers.reserveCapacity(head.headers.count + 2)
        var hasContentLength = false
        for (name, value) in head.headers {
            switch role(of: name) {
            case .hopByHop: continue
            case .requestID where requestID != nil: continue
            default: break
            }
            if !options.isEmpty, options.contains(where: { name.equalsIgnoringASCIICase($0) }) { continue }
            if name.utf8.count == 14, name.equalsIgnoringASCIICase("content-length") { hasContentLength = true }
            headers.add(name: name, value: value)
        }
        let isHTTP10 = version.major == 1 && version.minor == 0
        let mayHaveBody = head.status.code >= 200 && head.status != .noContent && head.status != .notModified
        if isHTTP10 && mayHaveBody && !hasContentLength {
            keepAlive = false
        }
        addClosingHeaders(to: &headers, version: version, keepAlive: keepAlive, requestID: requestID)
        return HTTPResponseHead(version: version, status: head.status, headers: headers)
    }

    /// The response head for an in-process worker's answer: its headers (leaving out hop-by-hop
    /// ones, any `Content-Length`, and its own `X-Request-Id` when `requestID` replaces it), the
    /// body's length, `Connection` as `keepAlive` and the client's `version` need, and
    /// `requestID` as `X-Request-Id`.
    static func localResponseHead(
        _ response: LocalResponse,
        version: HTTPVersion,
        keepAlive: Bool,
        requestID: String?
    ) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(response.headers.count + 3)
        for field in response.headers {
            switch role(of: field.name) {
            case .hopByHop: continue
            case .requestID where requestID != nil: continue
            default: break
            }
            if field.name.equalsIgnoringASCIICase("content-length") { continue }
            headers.add(name: field.name, value: field.value)
        }
        headers.add(name: "content-length", value: String(response.body.count))
        addClosingHeaders(to: &headers, version: version, keepAlive: keepAlive, requestID: requestID)
        return HTTPResponseHead(version: version, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
    }

    /// The last headers of a response head to the client: `Connection: close` when the
    /// connection ends, `Connection: keep-alive` for an HTTP/1.0 client that keeps it, and
    /// `requestID` as `X-Request-Id`.
    private static func addClosingHeaders(to headers: inout HTTPHeaders, version: HTTPVersion, keepAlive: Bool, requestID: String?) {
        if !keepAlive {
            headers.add(name: "connection", value: "close")
        } else if version.major == 1 && version.minor == 0 {
            headers.add(name: "connection", value: "keep-alive")
        }
        if let requestID { headers.add(name: "x-request-id", value: requestID) }
    }

    /// A `Forwarded` parameter value: a token as is, anything else as a quoted string.
    static func forwardedValue(_ value: String) -> String {
        if !value.isEmpty, value.utf8.allSatisfy(\.isTokenCharacter) { return value }
        var quoted = "\""
        for scalar in value.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { quoted.unicodeScalars.append("\\") }
            quoted.unicodeScalars.append(scalar)
        }
        quoted.unicodeScalars.append("\"")
        return quoted
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and tabs.
    func trimmingASCIIWhitespace() -> SubSequence {
        // By bytes: walking Characters runs grapheme breaking on every header value.
        let utf8 = self.utf8
        var start = utf8.startIndex
        while start < utf8.endIndex, utf8[start] == 0x20 || utf8[start] == 0x09 { utf8.formIndex(after: &start) }
        // Forward to the end, remembering where the last byte that is not whitespace ends.
        var end = start
        var index = start
        while index < utf8.endIndex {
            let byte = utf8[index]
            utf8.formIndex(after: &index)
            if byte != 0x20 && byte != 0x09 { end = index }
        }
        return self[start..<end]
    }
}
