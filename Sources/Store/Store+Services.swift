public import Foundation
import GRDB

extension Store {
    /// Creates a service with its first revision (`<name>-00001`) and its route, in one transaction.
    /// Throws `.alreadyExists` when the name is taken in the namespace.
    public func createService(
        namespace: String, name: String, annotations: [String: String] = [:], spec: ServiceSpec, now: Date = Date()
    ) throws -> ServiceResource {
        try write { db, changes in
            if try ServiceRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db) != nil {
                throw StoreError(.alreadyExists, "service \(namespace)/\(name) already exists")
            }
            var record = ServiceRecord(
                id: nil, namespace: namespace, name: name, uid: Self.newUID(), generation: 1,
                resourceVersion: try Self.nextResourceVersion(db), annotations: try ColumnJSON.encode(annotations),
                spec: try ColumnJSON.encode(spec), status: try ColumnJSON.encode(ServiceStatus()),
                configurationGeneration: 0, createdAt: now, updatedAt: now)
            try record.insert(db)
            let revision = try Self.cutRevision(db, service: &record, template: spec.template, now: now)
            var route = RouteRecord(
                id: nil, serviceId: record.id!, namespace: namespace, name: name, uid: Self.newUID(), generation: 1,
                resourceVersion: record.resourceVersion, traffic: try ColumnJSON.encode(spec.traffic),
                resolvedTraffic: "[]", createdAt: now, updatedAt: now)
            try route.insert(db)
            changes.append(StoreChange(kind: .service, namespace: namespace, name: name))
            changes.append(StoreChange(kind: .revision, namespace: namespace, name: revision.name))
            return try record.resource()
        }
    }

    /// Replaces a service's spec and annotations. A changed template cuts the next revision; any
    /// spec change bumps `generation`. With `expectedResourceVersion`, a stale value throws `.conflict`.
    public func updateService(
        namespace: String, name: String, annotations: [String: String], spec: ServiceSpec,
        expectedResourceVersion: Int64? = nil, now: Date = Date()
    ) throws -> ServiceResource {
        try write { db, changes in
            var record = try Self.fetchService(db, namespace: namespace, name: name)
            if let expected = expectedResourceVersion, expected != record.resourceVersion {
                throw StoreError(
                    .conflict,
                    "service \(namespace)/\(name) was changed since resourceVersion \(expected) (now \(record.resourceVersion)); read it again and retry")
            }
            let old = try ColumnJSON.decode(ServiceSpec.self, from: record.spec)
            let newAnnotations = try ColumnJSON.encode(annotations)
            if old == spec && newAnnotations == record.annotations { return try record.resource() }
            if old != spec { record.generation += 1 }
            record.spec = try ColumnJSON.encode(spec)
            record.annotations = newAnnotations
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            if old.template != spec.template {
                let revision = try Self.cutRevision(db, service: &record, template: spec.template, now: now)
                changes.append(StoreChange(kind: .revision, namespace: namespace, name: revision.name))
            }
            try record.update(db)
            if old.traffic != spec.traffic {
                try db.execute(
                    sql: "UPDATE route SET traffic = ?, generation = generation + 1, resourceVersion = ?, updatedAt = ? WHERE serviceId = ?",
                    arguments: [try ColumnJSON.encode(spec.traffic), record.resourceVersion, now, record.id])
            }
            changes.append(StoreChange(kind: .service, namespace: namespace, name: name))
            return try record.resource()
        }
    }

    /// Deletes a service with its revisions and route. Returns the revisions that were removed.
    @discardableResult
    public func deleteService(namespace: String, name: String) throws -> [RevisionResource] {
        try write { db, changes in
            let record = try Self.fetchService(db, namespace: namespace, name: name)
            let revisions = try RevisionRecord.filter(Column("serviceId") == record.id).fetchAll(db)
            try record.delete(db)  // revisions and route cascade
            changes.append(StoreChange(kind: .service, namespace: namespace, name: name))
            for revision in revisions {
                changes.append(StoreChange(kind: .revision, namespace: namespace, name: revision.name))
            }
            return try revisions.map { try $0.resource() }
        }
    }

    /// Writes a service's status (controllers only). Returns false, writing nothing, when the
    /// service is gone or the status is unchanged.
    @discardableResult
    public func updateServiceStatus(namespace: String, name: String, now: Date = Date(), _ mutate: (inout ServiceStatus, ServiceResource) -> Void) throws -> Bool {
        try write { db, changes in
            guard var record = try ServiceRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db) else {
                return false
            }
            let resource = try record.resource()
            var status = resource.status
            mutate(&status, resource)
            guard status != resource.status else { return false }
            record.status = try ColumnJSON.encode(status)
            record.resourceVersion = try Self.nextResourceVersion(db)
            record.updatedAt = now
            try record.update(db)
            try db.execute(
                sql: "UPDATE route SET resolvedTraffic = ?, resourceVersion = ?, updatedAt = ? WHERE serviceId = ?",
                arguments: [try ColumnJSON.encode(status.traffic), record.resourceVersion, now, record.id])
            changes.append(StoreChange(kind: .service, namespace: namespace, name: name))
            return true
        }
    }

    // MARK: Reads

    /// One service, or nil.
    public func service(namespace: String, name: String) throws -> ServiceResource? {
        try read { db in
            try ServiceRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db)?.resource()
        }
    }

    /// Services of a namespace (all namespaces when nil), ordered by namespace and name.
    public func services(namespace: String? = nil) throws -> [ServiceResource] {
        try read { db in
            var request = ServiceRecord.order(Column("namespace"), Column("name"))
            if let namespace { request = request.filter(Column("namespace") == namespace) }
            return try request.fetchAll(db).map { try $0.resource() }
        }
    }

    /// A service's route, or nil.
    public func route(namespace: String, name: String) throws -> RouteResource? {
        try read { db in
            try RouteRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db)?.resource()
        }
    }

    static func fetchService(_ db: Database, namespace: String, name: String) throws -> ServiceRecord {
        guard let record = try ServiceRecord.filter(Column("namespace") == namespace && Column("name") == name).fetchOne(db) else {
            throw StoreError(.notFound, "service \(namespace)/\(name) not found")
        }
        return record
    }

    /// Inserts the next revision of a service (the caller saves the service record).
    static func cutRevision(_ db: Database, service: inout ServiceRecord, template: RevisionTemplate, now: Date) throws -> RevisionRecord {
        service.configurationGeneration += 1
        let name = revisionName(service: service.name, generation: service.configurationGeneration)
        var revision = RevisionRecord(
            id: nil, serviceId: service.id!, namespace: service.namespace, name: name, serviceName: service.name,
            uid: newUID(), configurationGeneration: service.configurationGeneration,
            resourceVersion: service.resourceVersion, spec: try ColumnJSON.encode(template),
            status: try ColumnJSON.encode(RevisionStatus()), createdAt: now, updatedAt: now)
        try revision.insert(db)
        try db.execute(
            sql: "UPDATE service SET configurationGeneration = ? WHERE id = ?",
            arguments: [service.configurationGeneration, service.id])
        return revision
    }

    /// `<service>-00001`, Knative's generated revision name.
    public static func revisionName(service: String, generation: Int64) -> String {
        let digits = String(generation)
        return service + "-" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
    }
}
