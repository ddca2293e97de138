import Eventing
import Foundation
import Hummingbird
import Store

/// A broker, trigger or ping source in and out of the API (Knative field names).
typealias EventingResourceDTO<Spec: Codable & Sendable> = DocumentDTO<Spec, EventingStatus>

/// What the API needs to know per eventing kind; specs and statuses are Eventing's JSON.
protocol EventingKindDescriptor: DocumentKindDescriptor where Kind == EventingKind, Status == EventingStatus {
    static func check(_ spec: Spec, annotations: [String: String]) throws(EventingError)
}

extension EventingKindDescriptor {
    static func validate(_ spec: Spec, annotations: [String: String]) throws(APIError) {
        do { try check(spec, annotations: annotations) } catch { throw APIError(.badRequest, code: "Invalid", error.message) }
    }
    static func encode(_ spec: Spec) throws -> String { try EventingJSON.encode(spec) }
    static func decodeSpec(_ text: String) throws -> Spec { try EventingJSON.decode(Spec.self, text) }
    static func decodeStatus(_ text: String) -> Status? { try? EventingJSON.decode(EventingStatus.self, text) }
}

enum BrokerKind: EventingKindDescriptor {
    typealias Spec = BrokerSpec
    static let kind = EventingKind.broker
    static let apiVersion = "eventing.knative.dev/v1"
    static let kindName = "Broker"
    static let plural = "brokers"
    static func check(_ spec: BrokerSpec, annotations: [String: String]) throws(EventingError) {
        try spec.validate()
    }
}

enum TriggerKind: EventingKindDescriptor {
    typealias Spec = TriggerSpec
    static let kind = EventingKind.trigger
    static let apiVersion = "eventing.knative.dev/v1"
    static let kindName = "Trigger"
    static let plural = "triggers"
    static func check(_ spec: TriggerSpec, annotations: [String: String]) throws(EventingError) {
        try spec.validate()
        _ = try TriggerAnnotations.options(annotations)
    }
}

enum PingSourceKind: EventingKindDescriptor {
    typealias Spec = PingSourceSpec
    static let kind = EventingKind.pingSource
    static let apiVersion = "sources.knative.dev/v1"
    static let kindName = "PingSource"
    static let plural = "pingsources"
    static func check(_ spec: PingSourceSpec, annotations: [String: String]) throws(EventingError) {
        try spec.validate()
    }
}
