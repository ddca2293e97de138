public import Foundation
import GRDB

extension Store {
    /// One revision, or nil.
    public func revision(namespace: String, name: String) throws -> RevisionResource? {
        try read { db in
            try RevisionRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db)?.resource()
        }
    }

    /// Revisions, filtered by namespace and service when given, oldest first within a service.
    public func revisions(namespace: String? = nil, service: String? = nil) throws -> [RevisionResource] {
        try read { db in
            var request = RevisionRecord.order(Column("namespace"), Column("serviceName"), Column("configurationGeneration"))
            if let namespace { request = request.filter(Column("namespace") == namespace) }
            if let service { request = request.filter(Column("serviceName") == service) }
            return try request.fetchAll(db).map { try $0.resource() }
        }
    }

    /// Writes a revision's status (controllers only; the spec never changes). Returns false,
    /// writing nothing, when the revision is gone or the status is unchanged.
    @discardableResult
    public func updateRevisionStatus(namespace: String, name: String, now: Date = Date(), _ mutate: (inout RevisionStatus) -> Void) throws -> Bool {
        try write { db, changes in
            guard var record = try RevisionRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db) else {
                return false
            }
            let old = try ColumnJSON.decode(RevisionStatus.self, from: record.status)
            var status = old
            mutate(&status)
            guard status != old else { return false }
            record.status = try ColumnJSON.encode(status)
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            changes.append(StoreChange(kind: .revision, namespace: namespace, name: name))
            return true
        }
    }
}
