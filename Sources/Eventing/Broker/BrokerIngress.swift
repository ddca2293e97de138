import Foundation
import Gateway
import Store

/// The broker ingress, mounted on the gateway at `broker-ingress.<domain>`: Knative's
/// `POST /<namespace>/<broker>` in any CloudEvents HTTP mode.
///
/// Answers: 202 once every event of the request is committed to the event log (never before);
/// 400 naming the bad attribute; 404 for an unknown broker (and for `/`); 405 with `Allow`
/// for other methods; `OPTIONS` with the webhook handshake headers; 413 above the size cap (the
/// gateway enforces it while reading); 415 for an unknown structured format; 429 with
/// `Retry-After` when the log writer's queue is full; 503 when the store fails.
final class BrokerIngress: LocalUpstream {
    private let directory: EventingDirectory
    private let writer: EventLogWriter

    /// Knative's `MAX_TTL`: the hop budget an event starts with.
    static let maxTTL: Int32 = 255
    /// The extension that carries the remaining hop budget between broker and subscriber.
    static let ttlExtension = "knativebrokerttl"

    init(directory: EventingDirectory, writer: EventLogWriter) {
        self.directory = directory
        self.writer = writer
    }

    func handle(_ request: LocalRequest, respond: @escaping @Sendable (LocalResponse) -> Void) {
        // By bytes (splitting into Characters runs grapheme breaking on every event), and without
        // an array of segments (three allocations per event).
        let path = request.path.utf8
        let slash = UInt8(ascii: "/")
        let afterRoot = path.firstIndex(of: slash).map { path[path.index(after: $0)...] } ?? path[path.endIndex...]
        let secondSlash = afterRoot.firstIndex(of: slash)
        let first = afterRoot[..<(secondSlash ?? afterRoot.endIndex)]
        guard !first.isEmpty else {
            respond(Self.error(404, "NotFound", "POST events to /<namespace>/<broker>"))
            return
        }
        let last = secondSlash.map { afterRoot[afterRoot.index(after: $0)...] }
        guard let last, !last.isEmpty, !last.contains(slash) else {
            respond(Self.error(400, "BadPath", "the path must be /<namespace>/<broker>, not \(request.path)"))
            return
        }
        let namespace = String(Substring(first))
        let name = String(Substring(last))
        switch request.method {
        case "POST":
            break
        case "OPTIONS":
            respond(LocalResponse(status: 200, headers: [
                HeaderField(name: "Allow", value: "POST, OPTIONS"),
                HeaderField(name: "WebHook-Allowed-Origin", value: "*"),
                HeaderField(name: "WebHook-Allowed-Rate", value: "*"),
            ], body: []))
            return
        default:
            var response = Self.error(405, "MethodNotAllowed", "the broker ingress accepts POST (and OPTIONS)")
            response.headers.append(HeaderField(name: "Allow", value: "POST, OPTIONS"))
            respond(response)
            return
        }
        guard let broker = directory.broker(namespace: namespace, name: name) else {
            respond(Self.error(404, "BrokerNotFound", "broker \(namespace)/\(name) does not exist"))
            return
        }
        let events: [CloudEvent]
        do {
            events = try CloudEventHTTP.decode(headers: request.headers, body: request.body)
        } catch {
            respond(Self.error(error.status, error.status == 415 ? "UnsupportedMediaType" : "InvalidEvent", "\(error)", attribute: error.attribute))
            return
        }
        guard !events.isEmpty else {
            respond(LocalResponse(status: 202, body: []))
            return
        }
        let accepted: [NewEvent]
        do {
            accepted = try events.map { try Self.admit($0, to: broker) }
        } catch let error as IngressRejection {
            respond(Self.error(400, "InvalidEvent", error.message, attribute: error.attribute))
            return
        } catch {
            respond(Self.error(400, "InvalidEvent", "\(error)"))
            return
        }
        let queued = writer.submit(accepted, durability: broker.durability.commitDurability) { result in
            switch result {
            case .success: respond(LocalResponse(status: 202, body: []))
            case .failure(let error): respond(Self.error(503, "StorageUnavailable", "the event was not stored: \(error.message)"))
            }
        }
        if !queued {
            var response = Self.error(429, "TooManyRequests", "the broker's write queue is full; retry after a second")
            response.headers.append(HeaderField(name: "Retry-After", value: "1"))
            respond(response)
        }
    }

    /// Applies the hop budget and routes one event: the row the log writer commits.
    static func admit(_ event: CloudEvent, to broker: BrokerRoute) throws(IngressRejection) -> NewEvent {
        var event = event
        try spendHop(&event)
        return NewEvent(
            namespace: broker.namespace, broker: broker.name, eventId: event.id, source: event.source, type: event.type,
            payload: event.storageBytes(), triggers: broker.matchingTriggers(event))
    }

    /// Sets `knativebrokerttl` to 255 on a new event and takes one off an event that has it
    /// (a reply or a forwarded event); an event that has run out is refused, which stops loops.
    static func spendHop(_ event: inout CloudEvent) throws(IngressRejection) {
        guard let current = event.extensions[ttlExtension] else {
            event.extensions[ttlExtension] = .integer(maxTTL)
            return
        }
        guard let value = hopCount(current) else {
            throw IngressRejection(attribute: ttlExtension, message: "attribute \"\(ttlExtension)\": must be an integer hop count")
        }
        guard value > 1 else {
            throw IngressRejection(attribute: ttlExtension, message: "attribute \"\(ttlExtension)\": the event has used up its hop budget (a loop?)")
        }
        event.extensions[ttlExtension] = .integer(value - 1)
    }

    /// True when an event with this `knativebrokerttl` has no hop left: a reply to it would be
    /// refused by ``spendHop(_:)``.
    static func hopBudgetUsedUp(_ ttl: CloudEventValue?) -> Bool {
        ttl.flatMap(hopCount).map { $0 <= 1 } ?? false
    }

    /// The hops a `knativebrokerttl` value holds; nil when it is not an integer.
    private static func hopCount(_ value: CloudEventValue) -> Int32? {
        switch value {
        case .integer(let number): number
        case .string(let text): Int32(text)
        case .boolean: nil
        }
    }

    static func error(_ status: Int, _ code: String, _ message: String, attribute: String? = nil) -> LocalResponse {
        var object: [String: String] = ["error": message, "code": code]
        if let attribute { object["attribute"] = attribute }
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])).map { [UInt8]($0) } ?? []
        return LocalResponse(status: status, headers: [HeaderField(name: "Content-Type", value: "application/json")], body: body)
    }
}

extension HeaderField: CloudEventHeader {}

/// An event the ingress refuses after decoding it.
struct IngressRejection: Error {
    var attribute: String?
    var message: String
}
