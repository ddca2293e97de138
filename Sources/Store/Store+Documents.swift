public import Foundation
import GRDB

/// A kind of resource whose spec and status are JSON documents owned by the module that
/// defines the kind; the Store keeps the metadata, the concurrency counters and the change
/// stream (table `resourceDocument`, one namespace of names per kind).
public protocol DocumentKind: RawRepresentable<String>, Sendable, Hashable {
    /// The kind of change a write of this resource publishes.
    var changeKind: StoreChange.Kind { get }
    /// How the resource is named in messages, e.g. `ping source`.
    var displayName: String { get }
}

/// The kinds of eventing resource (specs owned by the Eventing module).
public enum EventingKind: String, DocumentKind, CaseIterable {
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

    /// The eventing kind a change is about, or nil for another resource.
    public init?(_ change: StoreChange.Kind) {
        switch change {
        case .broker: self = .broker
        case .trigger: self = .trigger
        case .pingSource: self = .pingSource
        case .service, .revision, .trafficPolicy, .authorizationPolicy, .peerAuthentication: return nil
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

/// The kinds of security resource (Istio's names; specs owned by the Platform module).
public enum SecurityKind: String, DocumentKind, CaseIterable {
    /// An AuthorizationPolicy.
    case authorizationPolicy
    /// A PeerAuthentication of one namespace or service.
    case peerAuthentication

    /// The kind of change a write of this resource publishes.
    public var changeKind: StoreChange.Kind {
        switch self {
        case .authorizationPolicy: .authorizationPolicy
        case .peerAuthentication: .peerAuthentication
        }
    }

    /// How the resource is named in messages.
    public var displayName: String {
        switch self {
        case .authorizationPolicy: "authorization policy"
        case .peerAuthentication: "peer authentication"
        }
    }
}

/// A resource of a ``DocumentKind`` as stored.
public struct StoredDocument<Kind: DocumentKind>: Sendable, Hashable {
    /// Its kind.
    public var kind: Kind
    /// Name, namespace, uid, generation, resourceVersion, annotations, timestamps.
    public var meta: ResourceMeta
    /// The desired state, as the JSON text its module wrote.
    public var spec: String
    /// The observed state, as JSON text (`{}` until a controller writes one).
    public var status: String
}

/// A broker, trigger or ping source as stored.
public typealias EventingResource = StoredDocument<EventingKind>

/// An authorization policy or peer authentication as stored.
public typealias SecurityResource = StoredDocument<SecurityKind>

/// A row of `resourceDocument`.
struct DocumentRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "resourceDocument"
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

    func resource<Kind: DocumentKind>(_ kind: Kind) throws -> StoredDocument<Kind> {
        StoredDocument(
            kind: kind,
            meta: ResourceMeta(
                namespace: namespace, name: name, uid: uid, generation: generation, resourceVersion: resourceVersion,
                annotations: try ColumnJSON.decode([String: String].self, from: annotations),
                createdAt: createdAt, updatedAt: updatedAt),
            spec: spec, status: status)
    }

    static func find(_ db: Database, _ kind: some DocumentKind, _ namespace: String, _ name: String) throws -> Self? {
        try filter(Column("kind") == kind.rawValue && Column("namespace") == namespace && Column("name") == name).fetchOne(db)
    }
}

extension Store {
    /// Creates a resource; throws `.alreadyExists` when the name is taken.
    public func createDocument<Kind: DocumentKind>(
        _ kind: Kind, namespace: String, name: String, annotations: [String: String] = [:], spec: String,
        now: Date = Date()
    ) throws -> StoredDocument<Kind> {
        try write { db, changes in
            if try DocumentRecord.find(db, kind, namespace, name) != nil {
                throw StoreError(.alreadyExists, "\(kind.displayName) \(namespace)/\(name) already exists")
            }
            var record = DocumentRecord(
                id: nil, kind: kind.rawValue, namespace: namespace, name: name, uid: Self.newUID(), generation: 1,
                resourceVersion: try Self.nextResourceVersion(db), annotations: try ColumnJSON.encode(annotations),
                spec: spec, status: "{}", createdAt: now, updatedAt: now)
            try record.insert(db)
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
            return try record.resource(kind)
        }
    }

    /// Replaces the spec (and annotations) of an existing resource. A changed spec bumps
    /// `generation`; with `expectedResourceVersion`, a stale value throws `.conflict`.
    public func replaceDocument<Kind: DocumentKind>(
        _ kind: Kind, namespace: String, name: String, annotations: [String: String], spec: String,
        expectedResourceVersion: Int64? = nil, now: Date = Date()
    ) throws -> StoredDocument<Kind> {
        try write { db, changes in
            guard var record = try DocumentRecord.find(db, kind, namespace, name) else {
                throw StoreError(.notFound, "\(kind.displayName) \(namespace)/\(name) not found")
            }
            if let expected = expectedResourceVersion, expected != record.resourceVersion {
                throw StoreError(
                    .conflict,
                    "\(kind.displayName) \(namespace)/\(name) was changed since resourceVersion \(expected); read it again and retry")
            }
            let annotationText = try ColumnJSON.encode(annotations)
            guard record.spec != spec || record.annotations != annotationText else { return try record.resource(kind) }
            if record.spec != spec { record.generation += 1 }
            record.spec = spec
            record.annotations = annotationText
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
            return try record.resource(kind)
        }
    }

    /// Writes the observed status of a resource (a no-op when it is unchanged or the resource
    /// is gone: a controller may lose a race with a delete).
    public func setDocumentStatus(_ kind: some DocumentKind, namespace: String, name: String, status: String, now: Date = Date()) throws {
        try write { db, changes in
            guard var record = try DocumentRecord.find(db, kind, namespace, name), record.status != status else { return }
            record.status = status
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
        }
    }

    /// Deletes a resource; throws `.notFound` when there is none.
    public func deleteDocument(_ kind: some DocumentKind, namespace: String, name: String) throws {
        try write { db, changes in
            let deleted = try DocumentRecord
                .filter(Column("kind") == kind.rawValue && Column("namespace") == namespace && Column("name") == name)
                .deleteAll(db)
            guard deleted > 0 else { throw StoreError(.notFound, "\(kind.displayName) \(namespace)/\(name) not found") }
            changes.append(StoreChange(kind: kind.changeKind, namespace: namespace, name: name))
        }
    }

    /// One resource, or nil.
    public func document<Kind: DocumentKind>(_ kind: Kind, namespace: String, name: String) throws -> StoredDocument<Kind>? {
        try read { db in try DocumentRecord.find(db, kind, namespace, name)?.resource(kind) }
    }

    /// The resources of a kind in a namespace (all namespaces when nil), by namespace and name.
    public func documents<Kind: DocumentKind>(_ kind: Kind, namespace: String? = nil) throws -> [StoredDocument<Kind>] {
        try read { db in
            var request = DocumentRecord.filter(Column("kind") == kind.rawValue).order(Column("namespace"), Column("name"))
            if let namespace { request = request.filter(Column("namespace") == namespace) }
            return try request.fetchAll(db).map { try $0.resource(kind) }
        }
    }
}
