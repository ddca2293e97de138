import Eventing
import Hummingbird
import Store

/// What the admin API needs from the daemon.
struct AdminDependencies: Sendable {
    var store: Store
    var logDirectory: String
    /// Where uploaded models are kept.
    var modelDirectory: String
    /// The built-in CA; nil serves no certificate routes.
    var authority: CertificateAuthority? = nil
    /// The gateway's certificates; nil serves no certificate-import routes.
    var gatewayCertificates: GatewayCertificates? = nil
    /// Peer-authentication modes and authorization policies; nil serves no security routes.
    var securityPolicies: SecurityPolicies? = nil
    /// Public URL of a service: `http://<name>.<namespace>.<domain>[:port]`.
    var serviceURL: @Sendable (_ namespace: String, _ name: String) -> String
    /// Whether the daemon is ready to serve (store open, controllers running).
    var isReady: @Sendable () -> Bool
    /// Renders `/metrics` (Prometheus text format); nil serves no metrics.
    var metrics: (@Sendable () async -> [UInt8])? = nil
    /// The event bus; nil serves no eventing routes.
    var eventing: EventingSystem? = nil
}

/// Mounts every admin route: health probes unauthenticated, `/api/v1` behind a bearer token from
/// the store (see ``AdminAccessMiddleware``), every mutating call audited.
func buildAdminRouter(_ dependencies: AdminDependencies) -> Router<AdminRequestContext> {
    let router = Router(context: AdminRequestContext.self)
    router.get("healthz") { _, _ in
        Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
    }
    router.get("readyz") { _, _ -> Response in
        guard dependencies.isReady() else {
            throw APIError(.serviceUnavailable, code: "NotReady", "the daemon is starting or stopping")
        }
        return Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
    }
    if let metrics = dependencies.metrics {
        router.get("metrics") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: await metrics())))
        }
    }
    let api = router.group("api/v1").add(middleware: AdminAccessMiddleware(store: dependencies.store))
    AdminAccessController(store: dependencies.store).addRoutes(to: api)
    var sinkURL: (@Sendable (Destination, String) -> String?)?
    if let eventing = dependencies.eventing {
        sinkURL = { destination, namespace in eventing.sinkURL(destination, namespace: namespace) }
    }
    ServiceController(
        store: dependencies.store, url: dependencies.serviceURL, logDirectory: dependencies.logDirectory, sinkURL: sinkURL)
        .addRoutes(to: api)
    RevisionController(store: dependencies.store).addRoutes(to: api)
    InferenceServiceController(store: dependencies.store, url: dependencies.serviceURL).addRoutes(to: api)
    ModelUploadController(directory: dependencies.modelDirectory).addRoutes(to: api)
    if let authority = dependencies.authority {
        CertificateController(authority: authority).addRoutes(to: api)
    }
    if let certificates = dependencies.gatewayCertificates, let policies = dependencies.securityPolicies {
        SecurityController(certificates: certificates, policies: policies, store: dependencies.store).addRoutes(to: api)
        let republish: @Sendable () throws -> Void = { try policies.publish() }
        DocumentResourceController<AuthorizationPolicyKind, AdminRequestContext>(store: dependencies.store, didChange: republish)
            .addRoutes(to: api)
        DocumentResourceController<PeerAuthenticationKind, AdminRequestContext>(store: dependencies.store, didChange: republish)
            .addRoutes(to: api)
    }
    TrafficPolicyController(store: dependencies.store).addRoutes(to: api)
    if let eventing = dependencies.eventing {
        DocumentResourceController<BrokerKind, AdminRequestContext>(store: dependencies.store).addRoutes(to: api)
        DocumentResourceController<TriggerKind, AdminRequestContext>(store: dependencies.store).addRoutes(to: api)
        DocumentResourceController<PingSourceKind, AdminRequestContext>(store: dependencies.store).addRoutes(to: api)
        EventLogController(store: dependencies.store, eventing: eventing).addRoutes(to: api)
    }
    return router
}
