import Foundation
import Gateway
import Hummingbird
import NIOCore
import NIOSSL

/// The admin API's request context: Hummingbird's core context plus the connection, for the
/// caller's address (audit log) and, on the HTTPS admin listener, its verified client
/// certificate.
struct AdminRequestContext: RequestContext, RemoteAddressRequestContext, ClientIdentityRequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    var remoteAddress: SocketAddress? { channel.remoteAddress }

    func clientIdentity() async -> String? {
        (try? await channel.nioSSL_peerCertificate().get())??.spiffeID
    }
}

/// A request context that can tell the SPIFFE ID of the client's verified certificate.
protocol ClientIdentityRequestContext: RequestContext {
    func clientIdentity() async -> String?
}

/// The namespace whose identities may administer the platform over mutual TLS (and where no
/// workload may run, so no workload certificate carries it).
let platformNamespace = "outpost-system"

/// Refuses a workload in the platform's own namespace.
func checkWorkloadNamespace(_ namespace: String) throws {
    if namespace == platformNamespace {
        throw APIError(.badRequest, code: "InvalidField", "namespace \(platformNamespace) is reserved for the platform; use another", field: "metadata.namespace")
    }
}
