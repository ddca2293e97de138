import Logging
import NIOCore
import NIOHTTP1

/// Peer authentication and authorization of a request, after routing and before anything
/// reaches a worker.
extension ProxyHandler {
    /// Applies a peer-authentication mode: STRICT answers a request without a verified client
    /// certificate with 403. Returns whether the request may go on.
    func admitPeer(mode: PeerAuthenticationMode) -> Bool {
        guard mode == .strict, peer?.identity == nil else { return true }
        respond(with: .mutualTLSRequired)
        return false
    }

    /// Applies the service's peer-authentication mode and its authorization policies. Under
    /// DISABLE the client certificate is not used (`peer` loses its identity, so no
    /// `X-Forwarded-Client-Cert`). Returns whether the request may go on; when not, it has been
    /// answered (403 with the reason).
    func authorize(_ head: HTTPRequestHead, host: String, route: Route, security: SecurityTable, peer: inout PeerInfo) -> Bool {
        let mode = security.mode(namespace: route.namespace, service: route.service)
        guard admitPeer(mode: mode) else { return false }
        if mode == .disable { peer.identity = nil }
        guard !security.isPlatformOnly, security.hasPolicies(namespace: route.namespace) else { return true }
        let request = AuthorizationRequest(
            identity: peer.identity, sourceIP: client.ip, head: head, host: host,
            port: context?.channel.localAddress?.port ?? 0)
        let logger = environment.logger
        let denial = security.authorize(request, namespace: route.namespace, service: route.service) { note in
            logger.notice("authorization", metadata: [
                "note": "\(note)", "service": "\(route.namespace)/\(route.service)",
                "method": "\(request.method)", "path": "\(request.path)", "principal": "\(request.principal ?? "-")",
            ])
        }
        guard let denial else { return true }
        respond(with: .accessDenied(denial))
        return false
    }
}

extension ProxyError {
    /// 403: an authorization policy denied the request.
    static func accessDenied(_ reason: String) -> ProxyError {
        ProxyError(status: .forbidden, code: "AccessDenied", message: "RBAC: access denied: \(reason)", flags: .none)
    }
}
