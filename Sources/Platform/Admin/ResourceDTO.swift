import Foundation
import Store

/// Metadata as the API shows it (Kubernetes field names).
struct MetadataDTO: Codable, Sendable {
    var name: String?
    var namespace: String?
    var uid: String?
    var generation: Int64?
    var resourceVersion: String?
    var creationTimestamp: Date?
    var labels: [String: String]?
    var annotations: [String: String]?

    init(name: String? = nil, namespace: String? = nil, uid: String? = nil, generation: Int64? = nil,
         resourceVersion: String? = nil, creationTimestamp: Date? = nil, labels: [String: String]? = nil,
         annotations: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.generation = generation
        self.resourceVersion = resourceVersion
        self.creationTimestamp = creationTimestamp
        self.labels = labels
        self.annotations = annotations
    }

    init(_ meta: ResourceMeta, labels: [String: String]? = nil) {
        self.init(
            name: meta.name, namespace: meta.namespace, uid: meta.uid, generation: meta.generation,
            resourceVersion: String(meta.resourceVersion), creationTimestamp: meta.createdAt, labels: labels,
            annotations: meta.annotations.isEmpty ? nil : meta.annotations)
    }
}

/// The revision template's own spec: one process.
struct TemplateSpecDTO: Codable, Sendable {
    var command: String?
    var args: [String]?
    var env: [EnvVar]?
    var workingDir: String?
    var port: Int?
    var readinessProbe: ReadinessProbe?
    var containerConcurrency: Int?
    var timeoutSeconds: Int?

    init(_ template: RevisionTemplate) {
        command = template.command
        args = template.args
        env = template.env
        workingDir = template.workingDir
        port = template.port
        readinessProbe = template.readinessProbe
        containerConcurrency = template.containerConcurrency
        timeoutSeconds = template.timeoutSeconds
    }
}

/// `spec.template`: metadata (annotations) plus the process spec.
struct TemplateDTO: Codable, Sendable {
    struct TemplateMetadata: Codable, Sendable {
        var annotations: [String: String]?
    }
    var metadata: TemplateMetadata?
    var spec: TemplateSpecDTO
}

/// `spec` of a service.
struct ServiceSpecDTO: Codable, Sendable {
    var template: TemplateDTO
    var traffic: [TrafficTarget]?
}

/// A service in and out of the API.
struct ServiceDTO: Codable, Sendable {
    /// One entry of `status.traffic`: a traffic target as resolved, with the `url` of its tag
    /// host when it has a tag (as in Knative).
    struct TrafficStatus: Codable, Sendable {
        var revisionName: String?
        var latestRevision: Bool?
        var percent: Int?
        var tag: String?
        var url: String?
    }
    struct Status: Codable, Sendable {
        var observedGeneration: Int64
        var conditions: [Condition]
        var latestCreatedRevisionName: String?
        var latestReadyRevisionName: String?
        var url: String
        var traffic: [TrafficStatus]
    }
    var apiVersion: String?
    var kind: String?
    var metadata: MetadataDTO
    var spec: ServiceSpecDTO
    var status: Status?

    init(_ service: ServiceResource, url: String) {
        apiVersion = "serving.outpost.dev/v1"
        kind = "Service"
        metadata = MetadataDTO(service.meta)
        let template = service.spec.template
        spec = ServiceSpecDTO(
            template: TemplateDTO(
                metadata: template.annotations.isEmpty ? nil : .init(annotations: template.annotations),
                spec: TemplateSpecDTO(template)),
            traffic: service.spec.traffic)
        status = Status(
            observedGeneration: service.status.observedGeneration, conditions: service.status.conditions,
            latestCreatedRevisionName: service.status.latestCreatedRevisionName,
            latestReadyRevisionName: service.status.latestReadyRevisionName, url: url,
            traffic: service.status.traffic.map { target in
                TrafficStatus(
                    revisionName: target.revisionName, latestRevision: target.latestRevision, percent: target.percent, tag: target.tag,
                    url: target.tag.map { Self.tagURL(url, tag: $0) })
            })
    }

    /// `http://<tag>-<service>.<namespace>.<domain>[:port]` from the service's own URL.
    static func tagURL(_ serviceURL: String, tag: String) -> String {
        guard let scheme = serviceURL.range(of: "://") else { return serviceURL }
        return serviceURL[..<scheme.upperBound] + tag + "-" + serviceURL[scheme.upperBound...]
    }
}

/// A revision as the API shows it.
struct RevisionDTO: Codable, Sendable {
    var apiVersion: String
    var kind: String
    var metadata: MetadataDTO
    var spec: TemplateSpecDTO
    var status: RevisionStatus

    init(_ revision: RevisionResource) {
        apiVersion = "serving.outpost.dev/v1"
        kind = "Revision"
        metadata = MetadataDTO(revision.meta, labels: [
            "serving.knative.dev/service": revision.serviceName,
            "serving.knative.dev/configuration": revision.serviceName,
            "serving.knative.dev/configurationGeneration": String(revision.configurationGeneration),
        ])
        spec = TemplateSpecDTO(revision.spec)
        status = revision.status
    }
}

/// `{"items": [...]}` for list calls.
struct ListDTO<Item: Codable & Sendable>: Codable, Sendable {
    var items: [Item]
}

/// JSON as the API writes and reads it: ISO 8601 dates, stable key order.
enum APIJSON {
    static func encoder(pretty: Bool = true) -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
