public import Foundation
public import Store

/// How a broker's commits reach the disk (see `bench/README.md` for what each costs).
public enum BrokerDurability: String, Codable, Sendable, Hashable, CaseIterable {
    /// Every commit fsyncs the SQLite WAL before the 202: an acknowledged event survives a power
    /// loss. Commits still group the requests that arrive while one is being written.
    case fsync
    /// Commits are grouped and fsynced at WAL checkpoints: an acknowledged event survives a crash
    /// or SIGKILL of the daemon, but a power loss may lose the last second or so of them.
    case grouped

    var commitDurability: CommitDurability { self == .fsync ? .full : .normal }
}

/// `spec` of a broker (Knative `eventing.knative.dev/v1` Broker).
public struct BrokerSpec: Codable, Sendable, Equatable {
    /// The default delivery of the broker's triggers (a trigger's own `delivery` replaces it).
    public var delivery: DeliverySpec?
    /// Outpost's durability mode (default ``BrokerDurability/grouped``).
    public var durability: BrokerDurability?

    /// Creates a spec.
    public init(delivery: DeliverySpec? = nil, durability: BrokerDurability? = nil) {
        self.delivery = delivery
        self.durability = durability
    }

    /// Checks every field; the error names the field to fix.
    public func validate() throws(EventingError) {
        if let delivery {
            do { try delivery.validate(path: "spec.delivery") } catch { throw EventingError(invalid: "\(error)") }
        }
    }
}

/// `spec` of a trigger (Knative `eventing.knative.dev/v1` Trigger).
public struct TriggerSpec: Codable, Sendable, Equatable {
    /// The broker's name (same namespace).
    public var broker: String
    /// Legacy exact-match filter.
    public var filter: AttributesFilter?
    /// The newer filter dialects; when present they replace `filter`.
    public var filters: [SubscriptionsFilter]?
    /// Where matching events go.
    public var subscriber: Destination
    /// Retries, backoff, timeout and dead-letter sink.
    public var delivery: DeliverySpec?

    /// Creates a spec.
    public init(broker: String, filter: AttributesFilter? = nil, filters: [SubscriptionsFilter]? = nil, subscriber: Destination, delivery: DeliverySpec? = nil) {
        self.broker = broker
        self.filter = filter
        self.filters = filters
        self.subscriber = subscriber
        self.delivery = delivery
    }

    /// The filter part, as the filter engine takes it.
    public var filterSpec: TriggerFilterSpec {
        TriggerFilterSpec(filter: filter, filters: filters ?? [])
    }

    /// Checks every field; the error names the field to fix.
    public func validate() throws(EventingError) {
        guard !broker.isEmpty else { throw EventingError(invalid: "spec.broker: name the broker this trigger subscribes to") }
        do { try filterSpec.validate() } catch { throw EventingError(invalid: "\(error)") }
        do { try subscriber.validate(path: "spec.subscriber") } catch { throw EventingError(invalid: "\(error)") }
        if let delivery {
            do { try delivery.validate(path: "spec.delivery") } catch { throw EventingError(invalid: "\(error)") }
        }
    }
}

/// `spec.ceOverrides`: extension attributes added to every event a source sends.
public struct CloudEventOverrides: Codable, Sendable, Equatable {
    /// Extension name → value.
    public var extensions: [String: String]?

    /// Creates overrides.
    public init(extensions: [String: String]?) {
        self.extensions = extensions
    }

    /// What is wrong with the overrides at `path`, or nil: every extension name must be a
    /// CloudEvents attribute name, and not one of the spec's own attributes (an override is an
    /// extension; it cannot replace `type` or `id`).
    public func problem(path: String) -> String? {
        for name in (extensions ?? [:]).keys.sorted() {
            guard AttributeSyntax.isAttributeName(name) else {
                return "\(path).extensions: \"\(name)\" is not a valid attribute name ([a-z0-9]{1,\(AttributeSyntax.maxAttributeNameLength)})"
            }
            if CloudEvent.coreAttributeNames.contains(name) || name == "data" {
                return "\(path).extensions: \"\(name)\" is a CloudEvents context attribute, not an extension; choose another name"
            }
        }
        return nil
    }

    /// The value of `K_CE_OVERRIDES` that Knative gives a workload: `{"extensions":{...}}`.
    public var environmentValue: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(CloudEventOverrides(extensions: extensions ?? [:]))).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// `spec` of a ping source (Knative `sources.knative.dev/v1` PingSource).
public struct PingSourceSpec: Codable, Sendable, Equatable {
    /// Cron schedule; default `* * * * *`.
    public var schedule: String?
    /// IANA time zone of the schedule; default UTC.
    public var timezone: String?
    /// The events' `datacontenttype`.
    public var contentType: String?
    /// The events' data as text.
    public var data: String?
    /// The events' data as Base64 (exclusive with `data`).
    public var dataBase64: String?
    /// Where events go.
    public var sink: Destination
    /// Extensions added to each event.
    public var ceOverrides: CloudEventOverrides?

    /// Creates a spec.
    public init(schedule: String? = nil, timezone: String? = nil, contentType: String? = nil, data: String? = nil, dataBase64: String? = nil, sink: Destination, ceOverrides: CloudEventOverrides? = nil) {
        self.schedule = schedule
        self.timezone = timezone
        self.contentType = contentType
        self.data = data
        self.dataBase64 = dataBase64
        self.sink = sink
        self.ceOverrides = ceOverrides
    }

    /// The schedule with its default.
    public var effectiveSchedule: String { schedule ?? "* * * * *" }

    /// Checks every field; the error names the field to fix.
    public func validate() throws(EventingError) {
        do {
            _ = try CronSchedule(effectiveSchedule, timeZone: timezone)
        } catch {
            throw EventingError(invalid: "spec.schedule: \(error)")
        }
        if data != nil && dataBase64 != nil {
            throw EventingError(invalid: "spec.data and spec.dataBase64 are exclusive; set one")
        }
        if let dataBase64, Data(base64Encoded: dataBase64) == nil {
            throw EventingError(invalid: "spec.dataBase64: not valid Base64")
        }
        if let contentType, !AttributeSyntax.isMediaType(contentType) {
            throw EventingError(invalid: "spec.contentType: \"\(contentType)\" is not a media type (type/subtype, e.g. text/plain)")
        }
        do { try sink.validate(path: "spec.sink") } catch { throw EventingError(invalid: "\(error)") }
        if let problem = ceOverrides?.problem(path: "spec.ceOverrides") { throw EventingError(invalid: problem) }
    }
}

/// What the controllers report about an eventing resource (Knative status shape).
public struct EventingStatus: Codable, Sendable, Equatable {
    /// Addressable resources publish their URL here.
    public struct Address: Codable, Sendable, Equatable {
        /// The URL to POST events to.
        public var url: String
    }
    /// The spec generation this status describes.
    public var observedGeneration: Int64?
    /// `Ready` and friends.
    public var conditions: [Condition]
    /// A broker's ingress URL.
    public var address: Address?
    /// A trigger's resolved subscriber URL.
    public var subscriberUri: String?
    /// A trigger's resolved dead-letter sink URL.
    public var deadLetterSinkUri: String?
    /// A ping source's resolved sink URL.
    public var sinkUri: String?
    /// When a ping source last sent an event.
    public var lastScheduleTime: Date?

    /// An empty status.
    public init() {
        conditions = []
    }
}

/// The one error type of the Eventing module.
public struct EventingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure.
    public enum Code: String, Sendable, Hashable {
        /// The request is invalid (HTTP 400).
        case invalid = "Invalid"
        /// Something does not exist (404).
        case notFound = "NotFound"
        /// The store failed (500).
        case storage = "StorageError"
    }
    /// The kind.
    public var code: Code
    /// What happened and what to fix.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    init(invalid message: String) {
        self.init(.invalid, message)
    }

    /// The message.
    public var description: String { message }
}
