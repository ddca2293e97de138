public import Foundation
import GRDB

/// The kinds of eventing resource. Their specs and statuses are JSON documents owned by the
/// Eventing module; the Store keeps the metadata, the concurrency counters and the change stream.
public enum EventingKind: String, Sendable, Hashable, CaseIterable {
    /// A broker: an ingress address plus a durable event log.
    case broker
    /// A trigger: a filter and a subscriber on one broker.
    case trigger
    /// A ping source: a cron schedule that sends an event to a sink.
    case pingSource

    /// The kind of change a write of this resource publishes.
    public var changeKind: StoreChange.Kind {
        switch self {
        case .broker: .broker
        case .trigger: .trigger
        case .pingSource: .pingSource
        }
    }

    /// The eventing kind a change is about, or nil for a serving resource.
    public init?(_ change: StoreChange.Kind) {
        switch change {
        case .broker: self = .broker
        case .trigger: self = .trigger
        case .pingSource: self = .pingSource
        case .service, .revision, .trafficPolicy: return nil
        }
    }

    /// How the resource is named in messages, e.g. `ping source`.
    public var displayName: String {
        switch self {
        case .broker: "broker"
        case .trigger: "trigger"
        case .pingSource: "ping source"
        }
    }
}

/// A broker, trigger or ping source as stored.
public struct EventingResource: Sendable, Hashable {
    /// Its kind.
    public var kind: EventingKind
    /// Name, namespace, uid, generation, resourceVersion, annotations, timestamps.
    public var meta: ResourceMeta
    /// The desired state, as the JSON text the Eventing module wrote.
    public var spec: String
    /// The observed state, as JSON text (`{}` until a controller writes one).
    public var status: String
}

/// A row of `eventingResource`.
struct EventingResourceRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "eventingResource"
    var id: Int64?
    var kind: String
    var namespace: String
    var name: String
    var uid: String
    var generation: Int64
    var resourceVersion: Int64
    var annotations: String
    var spec: String
    var status: String
    var createdAt: Date
    var updatedAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    func resource() throws -> EventingResource {
        EventingResource(
            kind: EventingKind(rawValue: kind) ?? .broker,
            meta: ResourceMeta(
                namespace: namespace, name: name, uid: uid, generation: generation, resourceVersion: resourceVersion,
                annotations: try ColumnJSON.decode([String: String].self, from: annotations),
                createdAt: createdAt, updatedAt: updatedAt),
            spec: spec, status: status)
    }

    static func find(_ db: Database, _ kind: EventingKind, _ namespace: String, _ name: String) throws -> Self? {
        try filter(Column("kind") == kind.rawValue && Column("namespace") == namespace && Column("name") == name).fetchOne(db)
    }
}

extension Store {
    /// Creates a broker, trigger or ping source; throws `.alreadyExists` when the name is taken.
    public func createEventingResource(
        _ kind: EventingKind, namespace: String, name: String, annotations: [String: String] = [:], spec: String,
        now: Date = Date()
    ) throws -> EventingResource {
        try write { db, changes in
            if try EventingResourceRecord.find(db, kind, namespace, name) != nil {
                throw StoreError(.alreadyExists, "\(kind.displayName) \(namespace)/\(name) already exists")
            }
            var record = EventingResourceRecord(
                id: nil, kind: kind.rawValue, namespace: namespace, name: name, uid: Self.newUID(), generation: 1,
                resourceVersion: try Self.nextResourceVersion(db), annotations: try ColumnJSON.encode(annotations),
                spec: spec, status: "{}", createdAt: now, updatedAt: now)
            try record.insert(db)
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
            return try record.resource()
        }
    }

    /// Replaces the spec (and annotations) of an existing resource. A changed spec bumps
    /// `generation`; with `expectedResourceVersion`, a stale value throws `.conflict`.
    public func replaceEventingResource(
        _ kind: EventingKind, namespace: String, name: String, annotations: [String: String], spec: String,
        expectedResourceVersion: Int64? = nil, now: Date = Date()
    ) throws -> EventingResource {
        try write { db, changes in
            guard var record = try EventingResourceRecord.find(db, kind, namespace, name) else {
                throw StoreError(.notFound, "\(kind.displayName) \(namespace)/\(name) not found")
            }
            if let expected = expectedResourceVersion, expected != record.resourceVersion {
                throw StoreError(
                    .conflict,
                    "\(kind.displayName) \(namespace)/\(name) was changed since resourceVersion \(expected); read it again and retry")
            }
            let annotationText = try ColumnJSON.encode(annotations)
            guard record.spec != spec || record.annotations != annotationText else { return try record.resource() }
            if record.spec != spec { record.generation += 1 }
            record.spec = spec
            record.annotations = annotationText
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
            return try record.resource()
        }
    }

    /// Writes the observed status of a resource (a no-op when it is unchanged or the resource
    /// is gone: a controller may lose a race with a delete).
    public func setEventingStatus(_ kind: EventingKind, namespace: String, name: String, status: String, now: Date = Date()) throws {
        try write { db, changes in
            guard var record = try EventingResourceRecord.find(db, kind, namespace, name), record.status != status else { return }
            record.status = status
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
        }
    }

    /// Deletes a resource; throws `.notFound` when there is none.
    public func deleteEventingResource(_ kind: EventingKind, namespace: String, name: String) throws {
        try write { db, changes in
            let deleted = try EventingResourceRecord
                .filter(Column("kind") == kind.rawValue && Column("namespace") == namespace && Column("name") == name)
                .deleteAll(db)
            guard deleted > 0 else { throw StoreError(.notFound, "\(kind.displayName) \(namespace)/\(name) not found") }
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
        }
    }

    /// One resource, or nil.
    public func eventingResource(_ kind: EventingKind, namespace: String, name: String) throws -> EventingResource? {
        try read { db in try EventingResourceRecord.find(db, kind, namespace, name)?.resource() }
    }

    /// The resources of a kind in a namespace (all namespaces when nil), by namespace and name.
    public func eventingResources(_ kind: EventingKind, namespace: String? = nil) throws -> [EventingResource] {
        try read { db in
            var request = EventingResourceRecord.filter(Column("kind") == kind.rawValue).order(Column("namespace"), Column("name"))
            if let namespace { request = request.filter(Column("namespace") == namespace) }
            return try request.fetchAll(db).map { try $0.resource() }
        }
    }
}
