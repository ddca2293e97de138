/// One header of a request or response that crosses ``LocalUpstream``.
public struct HeaderField: Sendable, Hashable {
    /// Header name as received (compare without case).
    public var name: String
    /// Header value.
    public var value: String

    /// Creates a header.
    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// A request for an in-process upstream: the head the gateway would forward to a worker
/// (forwarding headers, `x-request-id` and `traceparent` already set; a ``GatewayMount`` gets
/// no forwarding headers, as nothing is forwarded) and the whole body.
public struct LocalRequest: Sendable {
    /// The method, for example `POST`.
    public var method: String
    /// Path and query as received.
    public var uri: String
    /// Request headers.
    public var headers: [HeaderField]
    /// The complete body (empty when there is none).
    public var body: [UInt8]

    /// Creates a request.
    public init(method: String, uri: String, headers: [HeaderField], body: [UInt8]) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }

    /// The first value of header `name` (ASCII case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { field in
            field.name.utf8.count == name.utf8.count
                && field.name.utf8.elementsEqual(name.utf8) { $0.asciiLowercased == $1.asciiLowercased }
        }?.value
    }

    /// The path without the query.
    public var path: Substring {
        uri.utf8.firstIndex(of: UInt8(ascii: "?")).map { uri[..<$0] } ?? uri[...]
    }
}

/// A complete response from an in-process upstream. The gateway adds `content-length`,
/// `x-request-id` and the connection headers.
public struct LocalResponse: Sendable {
    /// HTTP status code.
    public var status: Int
    /// Response headers (no hop-by-hop headers, no `content-length`).
    public var headers: [HeaderField]
    /// The body.
    public var body: [UInt8]

    /// Creates a response.
    public init(status: Int, headers: [HeaderField] = [], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// A worker that lives in the daemon's own process (a loaded model instance) instead of
/// behind a loopback port. A lease that carries one (``UpstreamLease/local``) makes the gateway
/// collect the request body and hand the request over instead of opening a connection.
public protocol LocalUpstream: AnyObject, Sendable {
    /// Handles one request. Called on a gateway event loop, which it must not block for long:
    /// work of unknown or large cost happens elsewhere. `respond` is called exactly once, from
    /// any thread, or before `handle` returns (a short job done on the spot).
    func handle(_ request: LocalRequest, respond: @escaping @Sendable (LocalResponse) -> Void)
}

/// A host the gateway answers in process instead of through the route table, for example the
/// broker ingress `broker-ingress.<domain>`. Requests to it skip traffic splitting and policies:
/// the body is collected (up to `maxBodyBytes`, else 413) and handed to `upstream`.
public struct GatewayMount: Sendable {
    /// The host name (compared without case and port), e.g. `broker-ingress.localhost`.
    public var host: String
    /// Who answers the requests.
    public var upstream: any LocalUpstream
    /// The largest request body accepted.
    public var maxBodyBytes: Int
    /// Also answer requests whose `Host` is an IP address or `localhost` (no service can have
    /// such a host), so clients without DNS for `host` can reach it at the gateway's address.
    public var answersAddressHosts: Bool

    /// Creates a mount.
    public init(host: String, upstream: any LocalUpstream, maxBodyBytes: Int, answersAddressHosts: Bool = false) {
        self.host = host
        self.upstream = upstream
        self.maxBodyBytes = maxBodyBytes
        self.answersAddressHosts = answersAddressHosts
    }
}
