import Eventing
import Foundation
import Hummingbird
import Store

/// The event log over the API:
/// - `POST /namespaces/{ns}/brokers/{name}/events`: publish a CloudEvent (any HTTP mode), 202
///   once committed;
/// - `GET /namespaces/{ns}/brokers/{name}/events[?type=T&limit=N&before=SEQ]`: events, newest
///   first, each with its delivery status per trigger;
/// - `GET /namespaces/{ns}/events/{seq}`: one event;
/// - `GET /namespaces/{ns}/deadletters[?trigger=NAME&limit=N]`: deliveries that failed;
/// - `POST /namespaces/{ns}/deadletters/redrive` `{"trigger": "...", "events": [seq, ...]}`:
///   send failed deliveries again (both fields optional).
struct EventLogController<Context: RequestContext>: Sendable {
    let store: Store
    let eventing: EventingSystem

    static var maxListed: Int { 1_000 }

    func addRoutes(to group: RouterGroup<Context>) {
        group.post("namespaces/:namespace/brokers/:name/events", use: publish)
        group.get("namespaces/:namespace/brokers/:name/events", use: list)
        group.get("namespaces/:namespace/events/:seq", use: get)
        group.get("namespaces/:namespace/deadletters", use: deadLetters)
        group.post("namespaces/:namespace/deadletters/redrive", use: redrive)
    }

    @Sendable func publish(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: 1 << 20)
        } catch {
            throw APIError(.contentTooLarge, code: "TooLarge", "an event must be at most 1 MiB")
        }
        let headers = request.headers.map { (name: $0.name.rawName, value: $0.value) }
        let events: [CloudEvent]
        do {
            events = try CloudEventHTTP.decode(headers: headers, body: Array(body.readableBytesView))
        } catch {
            throw APIError(error.status == 415 ? .unsupportedMediaType : .badRequest, code: "InvalidEvent", "\(error)", field: error.attribute)
        }
        guard try storeCall({ try store.document(EventingKind.broker, namespace: namespace, name: name) }) != nil else {
            throw APIError(.notFound, code: "NotFound", "broker \(namespace)/\(name) not found")
        }
        if let problem = await eventing.publish(events, namespace: namespace, broker: name) {
            throw APIError(.serviceUnavailable, code: "NotStored", problem)
        }
        return try jsonObjectResponse(["accepted": events.count, "ids": events.map(\.id)], status: .accepted)
    }

    @Sendable func list(_ request: Request, context: Context) async throws -> Response {
        let (namespace, name) = try nameParameters(context)
        let query = request.uri.queryParameters
        let limit = try listLimit(query.get("limit"), max: Self.maxListed)
        let before = query.get("before").flatMap { Int64($0) }
        let events = try storeCall {
            try store.storedEvents(namespace: namespace, broker: name, type: query.get("type"), beforeSeq: before, limit: limit)
        }
        // A deleted broker's events stay listable until retention; a name with none is a typo.
        if events.isEmpty, try storeCall({ try store.document(EventingKind.broker, namespace: namespace, name: name) }) == nil {
            throw APIError(.notFound, code: "NotFound", "broker \(namespace)/\(name) not found")
        }
        return try jsonObjectResponse(["items": events.map(Self.object)])
    }

    @Sendable func get(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        guard let seq = context.parameters.get("seq").flatMap({ Int64($0) }) else {
            throw APIError(.badRequest, code: "Invalid", "the event's sequence number must be an integer")
        }
        guard let event = try storeCall({ try store.storedEvent(seq: seq) }), event.namespace == namespace else {
            throw APIError(.notFound, code: "NotFound", "event \(seq) not found in namespace \(namespace)")
        }
        return try jsonObjectResponse(Self.object(event))
    }

    @Sendable func deadLetters(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let query = request.uri.queryParameters
        let limit = try listLimit(query.get("limit"), max: Self.maxListed)
        let trigger = query.get("trigger")
        let events = try storeCall { try store.failedDeliveries(namespace: namespace, triggerName: trigger, limit: limit) }
        // A deleted trigger's failed deliveries stay listable; a name that never had any is a typo.
        if events.isEmpty, let trigger, try !triggerExists(namespace: namespace, name: trigger) {
            throw APIError(.notFound, code: "NotFound", "trigger \(namespace)/\(trigger) not found")
        }
        return try jsonObjectResponse(["items": events.map(Self.object)])
    }

    @Sendable func redrive(_ request: Request, context: Context) async throws -> Response {
        let namespace = try namespaceParameter(context)
        let body = try await request.body.collect(upTo: 1 << 20)
        var trigger: String?
        var seqs: [Int64]?
        if body.readableBytes > 0 {
            guard let object = try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
                throw APIError(.badRequest, code: "Invalid", "the body must be a JSON object like {\"trigger\": \"name\", \"events\": [12, 13]}")
            }
            if let value = object["trigger"] {
                guard let text = value as? String else { throw APIError(.badRequest, code: "Invalid", "trigger must be a string", field: "trigger") }
                trigger = text
            }
            if let value = object["events"] {
                guard let numbers = value as? [NSNumber] else {
                    throw APIError(.badRequest, code: "Invalid", "events must be an array of event sequence numbers", field: "events")
                }
                seqs = numbers.map(\.int64Value)
            }
        }
        if let trigger, try !triggerExists(namespace: namespace, name: trigger) {
            throw APIError(.notFound, code: "NotFound", "trigger \(namespace)/\(trigger) not found: only a trigger's own deliveries can be sent again")
        }
        let count: Int
        do {
            count = try eventing.redrive(namespace: namespace, trigger: trigger, eventSeqs: seqs)
        } catch {
            throw APIError(.internalServerError, code: error.code.rawValue, error.message)
        }
        return try jsonObjectResponse(["redriven": count])
    }

    private func triggerExists(namespace: String, name: String) throws -> Bool {
        try storeCall { try store.document(EventingKind.trigger, namespace: namespace, name: name) } != nil
    }

    /// An event as the API shows it: log facts, the CloudEvent in structured JSON, deliveries.
    static func object(_ stored: StoredEventView) -> [String: Any] {
        var object: [String: Any] = [
            "seq": stored.seq, "namespace": stored.namespace, "broker": stored.broker,
            "receivedAt": ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: stored.receivedAt)),
        ]
        if let event = try? CloudEvent(storageBytes: stored.payload),
           let json = try? JSONSerialization.jsonObject(with: Data(CloudEventHTTP.encodeStructured(event))) {
            object["event"] = json
        }
        object["deliveries"] = stored.deliveries.map { delivery -> [String: Any] in
            var row: [String: Any] = [
                "trigger": delivery.trigger.name, "state": delivery.state.name, "attempts": delivery.attempts,
            ]
            if let status = delivery.lastStatus { row["lastStatus"] = status }
            if let error = delivery.lastError { row["lastError"] = error }
            if delivery.state.isOpen {
                row["nextAttemptAt"] = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: delivery.nextAttemptAt))
            }
            return row
        }
        return object
    }
}

/// Encodes a JSON object built from dictionaries and arrays.
func jsonObjectResponse(_ object: Any, status: HTTPResponse.Status = .ok) throws -> Response {
    var data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    data.append(UInt8(ascii: "\n"))
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}
