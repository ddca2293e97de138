import Foundation
import Store

/// A KServe `v1beta1` InferenceService as the API reads and writes it. Outpost keeps it as a
/// service whose revisions are model revisions (ARCHITECTURE.md, resource model); this type is
/// the KServe-shaped view of that service.
struct InferenceServiceDTO: Codable, Sendable {
    struct ModelFormat: Codable, Sendable {
        var name: String
        var version: String?
    }
    struct Model: Codable, Sendable {
        var modelFormat: ModelFormat
        var storageUri: String?
    }
    struct Batcher: Codable, Sendable {
        var maxBatchSize: Int?
        var maxLatency: Int?
    }
    struct Predictor: Codable, Sendable {
        var model: Model
        var minReplicas: Int?
        var maxReplicas: Int?
        var scaleTarget: Int?
        var scaleMetric: String?
        var containerConcurrency: Int?
        var timeout: Int?
        var canaryTrafficPercent: Int?
        var batcher: Batcher?
    }
    struct Spec: Codable, Sendable {
        var predictor: Predictor
    }
    struct TrafficEntry: Codable, Sendable {
        var revisionName: String?
        var percent: Int?
        var tag: String?
        var latestRevision: Bool?
    }
    struct Component: Codable, Sendable {
        var latestCreatedRevision: String?
        var latestReadyRevision: String?
        var latestRolledoutRevision: String?
        var previousRolledoutRevision: String?
        var traffic: [TrafficEntry]?
    }
    struct Status: Codable, Sendable {
        var url: String?
        var observedGeneration: Int64?
        var conditions: [Condition]?
        var components: [String: Component]?
        var modelStatus: [String: String]?
    }

    var apiVersion: String?
    var kind: String?
    var metadata: MetadataDTO
    var spec: Spec
    var status: Status?
}

/// How an InferenceService maps onto a service: the predictor's scaling fields become Knative
/// annotations, the model becomes the template's `model`, and `canaryTrafficPercent` becomes a
/// traffic block that splits between the last rolled-out revision (tag `prev`) and the latest
/// one (tag `latest`), as KServe does in serverless mode.
enum InferenceServiceMapping {
    static let kindAnnotation = "serving.kserve.io/inferenceservice"
    static let minScale = "autoscaling.knative.dev/min-scale"
    static let maxScale = "autoscaling.knative.dev/max-scale"
    static let target = "autoscaling.knative.dev/target"
    static let metric = "autoscaling.knative.dev/metric"
    static let previousTag = "prev"
    static let latestTag = "latest"

    /// The revision that had all the traffic before a canary began: the `prev` target of a
    /// canary block (while it has traffic), else the revision the service's status routes to.
    static func rolledOutRevision(of service: ServiceResource) -> String? {
        if let previous = service.spec.traffic.first(where: { $0.tag == previousTag }), (previous.percent ?? 0) > 0,
           let name = previous.revisionName {
            return name
        }
        return service.status.traffic.max { ($0.percent ?? 0) < ($1.percent ?? 0) }?.revisionName
            ?? service.status.latestReadyRevisionName
    }

    /// The traffic block for a canary of `percent` against `previous` (0 pins the previous one;
    /// 100 is a promoted canary, which keeps `previous` at 0 % so a rollback can find it, as
    /// KServe keeps `previousRolledoutRevision`).
    static func canaryTraffic(previous: String, percent: Int) -> [TrafficTarget] {
        [
            TrafficTarget(revisionName: previous, percent: 100 - percent, tag: previousTag),
            TrafficTarget(latestRevision: true, percent: percent, tag: latestTag),
        ]
    }

    /// `canaryTrafficPercent` as the traffic block says it (nil when all goes to the latest).
    static func canaryPercent(_ traffic: [TrafficTarget]) -> Int? {
        guard traffic.contains(where: { $0.tag == previousTag }) else { return nil }
        let percent = traffic.first { $0.latestRevision == true }?.percent ?? 0
        return percent == 100 ? nil : percent
    }

    /// The KServe view of a service that holds a model.
    static func view(_ service: ServiceResource, url: String) -> InferenceServiceDTO {
        let template = service.spec.template
        let model = template.model
        let annotations = template.annotations
        var metadataAnnotations = service.meta.annotations
        metadataAnnotations.removeValue(forKey: kindAnnotation)
        var meta = MetadataDTO(service.meta)
        meta.annotations = metadataAnnotations.isEmpty ? nil : metadataAnnotations
        let predictor = InferenceServiceDTO.Predictor(
            model: .init(modelFormat: .init(name: model?.modelFormat ?? "onnx"), storageUri: model?.storageUri),
            minReplicas: annotations[minScale].flatMap(Int.init), maxReplicas: annotations[maxScale].flatMap(Int.init),
            scaleTarget: annotations[target].flatMap(Int.init), scaleMetric: annotations[metric],
            containerConcurrency: template.containerConcurrency, timeout: template.timeoutSeconds,
            canaryTrafficPercent: canaryPercent(service.spec.traffic),
            batcher: model?.batcher.map { .init(maxBatchSize: $0.maxBatchSize, maxLatency: $0.maxLatency) })
        let status = service.status
        let previous = service.spec.traffic.first { $0.tag == previousTag }
        let promoted = canaryPercent(service.spec.traffic) == nil
        let component = InferenceServiceDTO.Component(
            latestCreatedRevision: status.latestCreatedRevisionName,
            latestReadyRevision: status.latestReadyRevisionName,
            latestRolledoutRevision: promoted ? status.latestReadyRevisionName : previous?.revisionName,
            previousRolledoutRevision: previous?.revisionName,
            traffic: status.traffic.map { .init(revisionName: $0.revisionName, percent: $0.percent, tag: $0.tag, latestRevision: $0.latestRevision) })
        let ready = status.conditions["Ready"]
        return InferenceServiceDTO(
            apiVersion: "serving.kserve.io/v1beta1", kind: "InferenceService", metadata: meta,
            spec: .init(predictor: predictor),
            status: .init(
                url: url, observedGeneration: status.observedGeneration, conditions: status.conditions,
                components: ["predictor": component],
                modelStatus: ["states": ready?.status == "True" ? "Loaded" : (ready?.status == "False" ? "FailedToLoad" : "Pending")]))
    }
}
