import Foundation
import GRDB

/// JSON for spec/status columns: stable key order so equal values store equal text.
enum ColumnJSON {
    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.dateEncodingStrategy = .millisecondsSince1970
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, from text: String) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return try decoder.decode(type, from: Data(text.utf8))
    }
}

/// A row of `service`.
struct ServiceRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "service"
    var id: Int64?
    var namespace: String
    var name: String
    var uid: String
    var generation: Int64
    var resourceVersion: Int64
    var annotations: String
    var spec: String
    var status: String
    /// Count of revisions ever cut; the next revision is `name-%05d` of this plus one.
    var configurationGeneration: Int64
    var createdAt: Date
    var updatedAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    func resource() throws -> ServiceResource {
        ServiceResource(
            meta: ResourceMeta(
                namespace: namespace, name: name, uid: uid, generation: generation, resourceVersion: resourceVersion,
                annotations: try ColumnJSON.decode([String: String].self, from: annotations),
                createdAt: createdAt, updatedAt: updatedAt),
            spec: try ColumnJSON.decode(ServiceSpec.self, from: spec),
            status: try ColumnJSON.decode(ServiceStatus.self, from: status))
    }
}

/// A row of `revision`.
struct RevisionRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "revision"
    var id: Int64?
    var serviceId: Int64
    var namespace: String
    var name: String
    var serviceName: String
    var uid: String
    var configurationGeneration: Int64
    var resourceVersion: Int64
    var spec: String
    var status: String
    var createdAt: Date
    var updatedAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    func resource() throws -> RevisionResource {
        let template = try ColumnJSON.decode(RevisionTemplate.self, from: spec)
        return RevisionResource(
            meta: ResourceMeta(
                namespace: namespace, name: name, uid: uid, generation: 1, resourceVersion: resourceVersion,
                annotations: template.annotations, createdAt: createdAt, updatedAt: updatedAt),
            serviceName: serviceName, configurationGeneration: configurationGeneration,
            spec: template, status: try ColumnJSON.decode(RevisionStatus.self, from: status))
    }
}

/// A row of `route`.
struct RouteRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "route"
    var id: Int64?
    var serviceId: Int64
    var namespace: String
    var name: String
    var uid: String
    var generation: Int64
    var resourceVersion: Int64
    var traffic: String
    var resolvedTraffic: String
    var createdAt: Date
    var updatedAt: Date

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }

    func resource() throws -> RouteResource {
        RouteResource(
            meta: ResourceMeta(
                namespace: namespace, name: name, uid: uid, generation: generation, resourceVersion: resourceVersion,
                annotations: [:], createdAt: createdAt, updatedAt: updatedAt),
            traffic: try ColumnJSON.decode([TrafficTarget].self, from: traffic),
            resolvedTraffic: try ColumnJSON.decode([TrafficTarget].self, from: resolvedTraffic))
    }
}
