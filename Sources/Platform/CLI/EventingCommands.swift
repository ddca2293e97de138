import ArgumentParser
import Eventing
import Foundation
import NIOHTTP1
import Store

/// Paths and table rendering shared by the eventing commands.
enum EventingCLI {
    static func path(_ namespace: String, _ plural: String, _ name: String? = nil) -> String {
        "/api/v1/namespaces/\(namespace)/\(plural)" + (name.map { "/\($0)" } ?? "")
    }

    static func ready(_ status: EventingStatus?) -> String {
        guard let ready = status?.conditions.first(where: { $0.type == "Ready" }) else { return "Unknown" }
        return ready.status == "True" ? "True" : "False (\(ready.reason ?? ""))"
    }

    static func destination(_ text: String, option: String) throws -> Destination {
        do {
            return try Destination(cliValue: text, path: option)
        } catch {
            throw CLIError("\(error)")
        }
    }

    static func show<Spec: Codable & Sendable>(_ data: Data, as type: Spec.Type, global: GlobalOptions, fields: (EventingResourceDTO<Spec>) -> [(String, String)]) throws {
        if global.output == .json { return printRaw(data) }
        let resource = try APIJSON.decoder().decode(EventingResourceDTO<Spec>.self, from: data)
        var rows = [("Name", resource.metadata.name ?? ""), ("Namespace", resource.metadata.namespace ?? "")]
        rows += fields(resource)
        rows.append(("Ready", ready(resource.status)))
        if let message = resource.status?.conditions.first(where: { $0.type == "Ready" })?.message { rows.append(("Message", message)) }
        printFields(rows)
    }

    static func body<Spec: Codable & Sendable>(name: String, annotations: [String: String] = [:], spec: Spec) throws -> Data {
        try APIJSON.encoder(pretty: false).encode(EventingResourceDTO(
            metadata: MetadataDTO(name: name, annotations: annotations.isEmpty ? nil : annotations), spec: spec))
    }
}

/// `outpost broker create|list|get|delete NAME`.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker", abstract: "Manage brokers: durable CloudEvents ingress addresses that triggers subscribe to.",
        subcommands: [Create.self, List.self, Get.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a broker.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Broker name.") var name: String
        @Option(help: "fsync (each commit reaches the disk before the 202) or grouped (survives a daemon crash; default).")
        var durability: String?
        @Option(help: "Default retries of the broker's triggers.") var retry: Int32?
        @Option(help: "linear or exponential.") var backoffPolicy: String?
        @Option(help: "ISO-8601 duration, e.g. PT0.2S.") var backoffDelay: String?
        @Option(help: "Default dead-letter sink: service:NAME, broker:NAME or a URL.") var deadLetterSink: String?
        @Option(help: "Default delivery format: json (structured mode) or binary (the default).") var deliveryFormat: String?
        @Flag(help: "Receive the platform's own events (service and revision changes).") var platformEvents = false

        func run() async throws {
            let delivery = try DeliveryOptions(
                retry: retry, backoffPolicy: try enumOption(backoffPolicy, "--backoff-policy"), backoffDelay: backoffDelay, timeout: nil,
                deadLetterSink: deadLetterSink, format: try enumOption(deliveryFormat, "--delivery-format")).spec()
            let spec = BrokerSpec(delivery: delivery, durability: try enumOption(durability, "--durability"))
            let annotations = platformEvents ? ["eventing.outpost.dev/platform-events": "true"] : [:]
            let data = try await global.client().call(
                .POST, EventingCLI.path(namespace, "brokers"), body: try EventingCLI.body(name: name, annotations: annotations, spec: spec))
            try EventingCLI.show(data, as: BrokerSpec.self, global: global) { _ in [] }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List brokers.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"

        func run() async throws {
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "brokers"))
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<EventingResourceDTO<BrokerSpec>>.self, from: data)
            printTable(["NAME", "URL", "DURABILITY", "READY"], list.items.map { broker in
                [broker.metadata.name ?? "", broker.status?.address?.url ?? "", (broker.spec.durability ?? .grouped).rawValue,
                 EventingCLI.ready(broker.status)]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a broker.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Broker name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "brokers", name))
            try EventingCLI.show(data, as: BrokerSpec.self, global: global) { broker in
                [("URL", broker.status?.address?.url ?? ""), ("Durability", (broker.spec.durability ?? .grouped).rawValue)]
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a broker (its triggers stay, not ready, until it exists again).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Broker name.") var name: String

        func run() async throws {
            _ = try await global.client().call(.DELETE, EventingCLI.path(namespace, "brokers", name))
            print("broker \(namespace)/\(name) deleted")
        }
    }
}

/// The `delivery` options a trigger or broker takes on the command line.
struct DeliveryOptions {
    var retry: Int32?
    var backoffPolicy: BackoffPolicy?
    var backoffDelay: String?
    var timeout: String?
    var deadLetterSink: String?
    var format: DeliveryFormat?

    func spec() throws -> DeliverySpec? {
        guard retry != nil || backoffPolicy != nil || backoffDelay != nil || timeout != nil || deadLetterSink != nil || format != nil else {
            return nil
        }
        func duration(_ text: String?, _ option: String) throws -> ISO8601Duration? {
            guard let text else { return nil }
            do { return try ISO8601Duration(parsing: text) } catch { throw CLIError("--\(option): \(error)") }
        }
        return DeliverySpec(
            retry: retry, backoffPolicy: backoffPolicy, backoffDelay: try duration(backoffDelay, "backoff-delay"),
            timeout: try duration(timeout, "timeout"),
            deadLetterSink: try deadLetterSink.map { try EventingCLI.destination($0, option: "--dead-letter-sink") }, format: format)
    }
}

/// Parses an enumerated option value, naming the allowed ones when it is not one of them.
func enumOption<T: RawRepresentable & CaseIterable>(_ text: String?, _ option: String) throws -> T? where T.RawValue == String {
    guard let text else { return nil }
    guard let value = T(rawValue: text) else {
        throw CLIError("\(option) must be one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), not \"\(text)\"")
    }
    return value
}

/// `outpost trigger create|list|get|delete NAME`.
struct TriggerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trigger", abstract: "Manage triggers: a filter on a broker's events and the subscriber that receives them.",
        subcommands: [Create.self, List.self, Get.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a trigger.",
            discussion: """
                --filter ATTR=VALUE (repeatable) is Knative's filter.attributes: exact matches, all required. \
                --cesql EXPR adds a CloudEvents SQL filter; --filters-json takes a whole Knative "filters" array.
                """)
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Trigger name.") var name: String
        @Option(help: "The broker.") var broker: String
        @Option(name: .customLong("filter"), help: "ATTR=VALUE exact match (repeatable).") var filters: [String] = []
        @Option(help: "A CloudEvents SQL expression the events must satisfy.") var cesql: String?
        @Option(help: "A JSON array in Knative's \"filters\" form.") var filtersJson: String?
        @Option(help: "service:NAME, broker:NAME or a URL.") var subscriber: String
        @Option(help: "Retries after the first attempt.") var retry: Int32?
        @Option(help: "linear or exponential.") var backoffPolicy: String?
        @Option(help: "ISO-8601 duration, e.g. PT0.2S.") var backoffDelay: String?
        @Option(help: "Per-attempt timeout, ISO-8601 (e.g. PT10S).") var timeout: String?
        @Option(help: "service:NAME, broker:NAME or a URL.") var deadLetterSink: String?
        @Option(help: "json (structured mode) or binary (the default).") var deliveryFormat: String?
        @Flag(help: "Deliver events with the same partitionkey one at a time, in order.") var ordered = false
        @Option(help: "Most deliveries in flight at once (1-1000, default 32).") var parallelism: Int?

        func run() async throws {
            var attributes: [String: String] = [:]
            for filter in filters {
                guard let equals = filter.firstIndex(of: "=") else { throw CLIError("--filter must be ATTR=VALUE, got \"\(filter)\"") }
                attributes[String(filter[..<equals])] = String(filter[filter.index(after: equals)...])
            }
            var dialects: [SubscriptionsFilter]?
            if let filtersJson {
                do {
                    dialects = try JSONDecoder().decode([SubscriptionsFilter].self, from: Data(filtersJson.utf8))
                } catch {
                    throw CLIError("--filters-json: \(DecodingProblem(error))")
                }
            }
            if let cesql {
                dialects = (dialects ?? []) + [.cesql(cesql)]
                if !attributes.isEmpty {
                    // "filters" replaces "filter", so the exact matches move into it.
                    dialects?.append(.exact(attributes))
                    attributes = [:]
                }
            }
            let spec = TriggerSpec(
                broker: broker, filter: attributes.isEmpty ? nil : AttributesFilter(attributes: attributes), filters: dialects,
                subscriber: try EventingCLI.destination(subscriber, option: "--subscriber"),
                delivery: try DeliveryOptions(
                    retry: retry, backoffPolicy: try enumOption(backoffPolicy, "--backoff-policy"), backoffDelay: backoffDelay, timeout: timeout,
                    deadLetterSink: deadLetterSink, format: try enumOption(deliveryFormat, "--delivery-format")).spec())
            var annotations: [String: String] = [:]
            if ordered { annotations[TriggerAnnotations.deliveryOrder] = "ordered" }
            if let parallelism { annotations[TriggerAnnotations.parallelism] = String(parallelism) }
            let data = try await global.client().call(
                .POST, EventingCLI.path(namespace, "triggers"), body: try EventingCLI.body(name: name, annotations: annotations, spec: spec))
            try EventingCLI.show(data, as: TriggerSpec.self, global: global) { trigger in [("Broker", trigger.spec.broker)] }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List triggers.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Option(help: "Only the triggers of this broker.") var broker: String?

        func run() async throws {
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "triggers"))
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<EventingResourceDTO<TriggerSpec>>.self, from: data)
            printTable(["NAME", "BROKER", "SUBSCRIBER", "READY"], list.items.filter { broker == nil || $0.spec.broker == broker }.map { trigger in
                [trigger.metadata.name ?? "", trigger.spec.broker, trigger.status?.subscriberUri ?? "", EventingCLI.ready(trigger.status)]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a trigger.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Trigger name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "triggers", name))
            try EventingCLI.show(data, as: TriggerSpec.self, global: global) { trigger in
                [("Broker", trigger.spec.broker), ("Subscriber", trigger.status?.subscriberUri ?? ""),
                 ("Dead-letter sink", trigger.status?.deadLetterSinkUri ?? "")]
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a trigger (its open deliveries are dropped).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Trigger name.") var name: String

        func run() async throws {
            _ = try await global.client().call(.DELETE, EventingCLI.path(namespace, "triggers", name))
            print("trigger \(namespace)/\(name) deleted")
        }
    }
}

/// `outpost pingsource create|list|get|delete NAME`.
struct PingSourceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pingsource", abstract: "Manage ping sources: events sent on a cron schedule.",
        subcommands: [Create.self, List.self, Get.self, Delete.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a ping source.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Ping source name.") var name: String
        @Option(help: "Cron schedule: 5 fields, or @hourly, @daily, @weekly, @monthly, @yearly (as Knative, not @every).")
        var schedule = "* * * * *"
        @Option(help: "IANA time zone of the schedule.") var timezone: String?
        @Option(help: "The events' data, as text.") var data: String?
        @Option(help: "The events' data, base64-encoded binary (instead of --data).") var dataBase64: String?
        @Option(help: "The events' content type.") var contentType: String?
        @Option(help: "broker:NAME, service:NAME or a URL.") var sink: String

        func validate() throws {
            if data != nil && dataBase64 != nil { throw ValidationError("give --data or --data-base64, not both") }
        }

        func run() async throws {
            let spec = PingSourceSpec(
                schedule: schedule, timezone: timezone, contentType: contentType, data: data, dataBase64: dataBase64,
                sink: try EventingCLI.destination(sink, option: "--sink"))
            let data = try await global.client().call(
                .POST, EventingCLI.path(namespace, "pingsources"), body: try EventingCLI.body(name: name, spec: spec))
            try EventingCLI.show(data, as: PingSourceSpec.self, global: global) { source in [("Schedule", source.spec.effectiveSchedule)] }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List ping sources.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"

        func run() async throws {
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "pingsources"))
            if global.output == .json { return printRaw(data) }
            let list = try APIJSON.decoder().decode(ListDTO<EventingResourceDTO<PingSourceSpec>>.self, from: data)
            printTable(["NAME", "SCHEDULE", "SINK", "LAST", "READY"], list.items.map { source in
                [source.metadata.name ?? "", source.spec.effectiveSchedule, source.status?.sinkUri ?? "",
                 source.status?.lastScheduleTime.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "", EventingCLI.ready(source.status)]
            })
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a ping source.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Ping source name.") var name: String

        func run() async throws {
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "pingsources", name))
            try EventingCLI.show(data, as: PingSourceSpec.self, global: global) { source in
                [("Schedule", source.spec.effectiveSchedule), ("Sink", source.status?.sinkUri ?? ""),
                 ("Last sent", source.status?.lastScheduleTime.map { $0.formatted(Date.ISO8601FormatStyle()) } ?? "")]
            }
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a ping source.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "Ping source name.") var name: String

        func run() async throws {
            _ = try await global.client().call(.DELETE, EventingCLI.path(namespace, "pingsources", name))
            print("ping source \(namespace)/\(name) deleted")
        }
    }
}

/// `outpost event send|list|get`.
struct EventCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "event", abstract: "Send CloudEvents to a broker and look at its event log.",
        subcommands: [Send.self, List.self, Get.self])

    struct Send: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Build a CloudEvent and send it to a broker (answers once it is stored).")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Option(help: "The broker.") var broker: String
        @Option(help: "The event's type.") var type: String
        @Option(help: "The event's source.") var source = "/outpost/cli"
        @Option(help: "The event's id (default: a new UUID).") var id: String?
        @Option(help: "The event's subject.") var subject: String?
        @Option(help: "The event's data.") var data: String?
        @Option(help: "The data's content type.") var contentType = "application/json"
        @Option(name: .customLong("extension"), help: "NAME=VALUE extension attribute (repeatable).") var extensions: [String] = []

        func validate() throws {
            // Subscribers trust the content type: JSON data must be JSON.
            let base = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            if let data, base == "application/json" || base.hasSuffix("+json"),
               (try? JSONSerialization.jsonObject(with: Data(data.utf8), options: [.fragmentsAllowed])) == nil {
                throw ValidationError("--data is not valid JSON for content type \(contentType); quote strings (--data '\"text\"') or pass --content-type text/plain")
            }
        }

        func run() async throws {
            var attributes: [String: CloudEventValue] = [:]
            for item in extensions {
                guard let equals = item.firstIndex(of: "=") else { throw CLIError("--extension must be NAME=VALUE, got \"\(item)\"") }
                attributes[String(item[..<equals])] = .string(String(item[item.index(after: equals)...]))
            }
            let event = CloudEvent(
                id: id ?? UUID().uuidString.lowercased(), source: source, type: type,
                datacontenttype: data == nil ? nil : contentType, subject: subject,
                time: ISO8601DateFormatter().string(from: Date()), extensions: attributes, data: data.map { Array($0.utf8) })
            do { try event.validate() } catch { throw CLIError("\(error)") }
            let answer = try await global.client().call(
                .POST, EventingCLI.path(namespace, "brokers", broker) + "/events", body: Data(CloudEventHTTP.encodeStructured(event)),
                contentType: "application/cloudevents+json; charset=UTF-8")
            if global.output == .json { return printRaw(answer) }
            print("event \(event.id) stored in broker \(namespace)/\(broker)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a broker's events, newest first, with their delivery status.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Option(help: "The broker.") var broker: String
        @Option(help: "Only events of this type.") var type: String?
        @Option(help: "At most this many.") var limit = 50

        func run() async throws {
            var query = "?limit=\(limit)"
            if let type, let encoded = type.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) { query += "&type=\(encoded)" }
            let data = try await global.client().call(.GET, EventingCLI.path(namespace, "brokers", broker) + "/events" + query)
            if global.output == .json { return printRaw(data) }
            printEvents(data)
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one event (by sequence number) with its deliveries.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Argument(help: "The event's sequence number (SEQ in event list).") var seq: Int64

        func run() async throws {
            printRaw(try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/events/\(seq)"))
        }
    }
}

/// `outpost dlq list|redrive`.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Deliveries that failed: list them and send them again.", subcommands: [List.self, Redrive.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List failed deliveries (dead-lettered or dropped), newest first.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Option(help: "Only this trigger's.") var trigger: String?
        @Option(help: "At most this many.") var limit = 50

        func run() async throws {
            var query = "?limit=\(limit)"
            if let trigger { query += "&trigger=\(trigger)" }
            let data = try await global.client().call(.GET, "/api/v1/namespaces/\(namespace)/deadletters" + query)
            if global.output == .json { return printRaw(data) }
            printEvents(data)
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send failed deliveries to their subscribers again.")
        @OptionGroup var global: GlobalOptions
        @Option(name: .shortAndLong, help: "Namespace.") var namespace = "default"
        @Option(help: "Only this trigger's.") var trigger: String?
        @Option(name: .customLong("event"), help: "Only this event (sequence number; repeatable).") var events: [Int64] = []

        func run() async throws {
            var body: [String: Any] = [:]
            if let trigger { body["trigger"] = trigger }
            if !events.isEmpty { body["events"] = events }
            let data = try await global.client().call(
                .POST, "/api/v1/namespaces/\(namespace)/deadletters/redrive", body: try JSONSerialization.data(withJSONObject: body))
            if global.output == .json { return printRaw(data) }
            let count = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])?["redriven"] as? Int ?? 0
            print("\(count) deliveries sent again")
        }
    }
}

/// Prints an event listing as a table: one row per delivery.
private func printEvents(_ data: Data) {
    guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let items = object["items"] as? [[String: Any]] else {
        return printRaw(data)
    }
    var rows: [[String]] = []
    for item in items {
        let event = item["event"] as? [String: Any] ?? [:]
        let base = ["\(item["seq"] ?? "")", event["id"] as? String ?? "", event["type"] as? String ?? ""]
        let deliveries = item["deliveries"] as? [[String: Any]] ?? []
        if deliveries.isEmpty { rows.append(base + ["", "", "", ""]) }
        for delivery in deliveries {
            rows.append(base + [
                delivery["trigger"] as? String ?? "", delivery["state"] as? String ?? "", "\(delivery["attempts"] ?? "")",
                (delivery["lastStatus"]).map { "\($0)" } ?? "",
            ])
        }
    }
    printTable(["SEQ", "ID", "TYPE", "TRIGGER", "STATE", "ATTEMPTS", "STATUS"], rows)
}
