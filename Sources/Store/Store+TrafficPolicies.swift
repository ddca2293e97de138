public import Foundation
import GRDB

/// A row of `trafficPolicy`.
struct TrafficPolicyRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "trafficPolicy"
    var id: Int64?
    var namespace: String
    var name: String
    var uid: String
    var generation: Int64
    var resourceVersion: Int64
    var spec: String
    var createdAt: Date
    var updatedAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    func resource() throws -> TrafficPolicyResource {
        TrafficPolicyResource(
            meta: ResourceMeta(
                namespace: namespace, name: name, uid: uid, generation: generation, resourceVersion: resourceVersion,
                annotations: [:], createdAt: createdAt, updatedAt: updatedAt),
            spec: try ColumnJSON.decode(TrafficPolicySpec.self, from: spec))
    }
}

extension Store {
    /// Creates or replaces the traffic policy of service `name`. A changed spec bumps
    /// `generation`; with `expectedResourceVersion`, a stale value throws `.conflict`.
    public func setTrafficPolicy(
        namespace: String, name: String, spec: TrafficPolicySpec, expectedResourceVersion: Int64? = nil, now: Date = Date()
    ) throws -> TrafficPolicyResource {
        try write { db, changes in
            let text = try ColumnJSON.encode(spec)
            let existing = try TrafficPolicyRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db)
            if let expected = expectedResourceVersion, expected != existing?.resourceVersion {
                throw StoreError(
                    .conflict,
                    "traffic policy \(namespace)/\(name) was changed since resourceVersion \(expected); read it again and retry")
            }
            guard var record = existing else {
                var record = TrafficPolicyRecord(
                    id: nil, namespace: namespace, name: name, uid: Self.newUID(), generation: 1,
                    resourceVersion: try Self.nextResourceVersion(db), spec: text, createdAt: now, updatedAt: now)
                try record.insert(db)
                changes.append(StoreChange(kind: .trafficPolicy, namespace: namespace, name: name))
                return try record.resource()
            }
            if record.spec == text { return try record.resource() }
            record.spec = text
            record.generation += 1
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            changes.append(StoreChange(kind: .trafficPolicy, namespace: namespace, name: name))
            return try record.resource()
        }
    }

    /// Deletes the traffic policy of service `name`; throws `.notFound` when there is none.
    public func deleteTrafficPolicy(namespace: String, name: String) throws {
        try write { db, changes in
            let deleted = try TrafficPolicyRecord.filter(Column("namespace") == namespace && Column("name") == name).deleteAll(db)
            guard deleted > 0 else { throw StoreError(.notFound, "traffic policy \(namespace)/\(name) not found") }
            changes.append(StoreChange(kind: .trafficPolicy, namespace: namespace, name: name))
        }
    }

    /// The traffic policy of service `name`, or nil.
    public func trafficPolicy(namespace: String, name: String) throws -> TrafficPolicyResource? {
        try read { db in
            try TrafficPolicyRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db)?.resource()
        }
    }

    /// Traffic policies of a namespace (all namespaces when nil), ordered by namespace and name.
    public func trafficPolicies(namespace: String? = nil) throws -> [TrafficPolicyResource] {
        try read { db in
            var request = TrafficPolicyRecord.order(Column("namespace"), Column("name"))
            if let namespace { request = request.filter(Column("namespace") == namespace) }
            return try request.fetchAll(db).map { try $0.resource() }
        }
    }
}
