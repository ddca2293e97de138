public import Foundation
import GRDB

/// An admin API token as listed (its secret is never stored, only its SHA-256).
public struct AdminToken: Codable, Hashable, Sendable {
    /// Who or what the token is for; it names the caller in the audit log.
    public var name: String
    /// When it was created.
    public var createdAt: Date
    /// When it was revoked, if it was.
    public var revokedAt: Date?
}

/// One mutating admin call: who, what, when, and how it ended.
public struct AuditEntry: Codable, Hashable, Sendable {
    /// When the call arrived.
    public var at: Date
    /// The token's name, or `anonymous` / `invalid-token` / `revoked:<name>` for refused calls.
    public var actor: String
    /// HTTP method.
    public var method: String
    /// Path with query.
    public var path: String
    /// Response status.
    public var status: Int
    /// The caller's address.
    public var remoteAddress: String

    /// Creates an entry.
    public init(at: Date, actor: String, method: String, path: String, status: Int, remoteAddress: String) {
        self.at = at
        self.actor = actor
        self.method = method
        self.path = path
        self.status = status
        self.remoteAddress = remoteAddress
    }
}

/// How a presented token resolved.
public enum TokenLookup: Equatable, Sendable {
    /// A live token with this name.
    case valid(String)
    /// A token that was revoked.
    case revoked(String)
    /// No such token.
    case unknown
}

struct AdminTokenRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "adminToken"
    var id: Int64?
    var name: String
    var hash: String
    var createdAt: Date
    var revokedAt: Date?

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

struct AuditEntryRecord: Codable, FetchableRecord, MutablePersistableRecord {
    static let databaseTableName = "auditEntry"
    var id: Int64?
    var at: Date
    var actor: String
    var method: String
    var path: String
    var status: Int
    var remoteAddress: String

    mutating func didInsert(_ inserted: InsertionSuccess) { id = inserted.rowID }
}

extension Store {
    /// Stores a token's hash under `name`; `.alreadyExists` when the name is taken.
    public func createAdminToken(name: String, hash: String, now: Date = Date()) throws -> AdminToken {
        try write { db, _ in
            if try AdminTokenRecord.filter(Column("name") == name).fetchOne(db) != nil {
                throw StoreError(.alreadyExists, "a token named \(name) already exists")
            }
            var record = AdminTokenRecord(id: nil, name: name, hash: hash, createdAt: now, revokedAt: nil)
            try record.insert(db)
            return AdminToken(name: name, createdAt: now, revokedAt: nil)
        }
    }

    /// Every token, oldest first.
    public func adminTokens() throws -> [AdminToken] {
        try read { db in
            try AdminTokenRecord.order(Column("id")).fetchAll(db).map {
                AdminToken(name: $0.name, createdAt: $0.createdAt, revokedAt: $0.revokedAt)
            }
        }
    }

    /// Revokes a token; `.notFound` when there is none by that name.
    public func revokeAdminToken(name: String, now: Date = Date()) throws -> AdminToken {
        try write { db, _ in
            guard var record = try AdminTokenRecord.filter(Column("name") == name).fetchOne(db) else {
                throw StoreError(.notFound, "no token named \(name)")
            }
            if record.revokedAt == nil {
                record.revokedAt = now
                try record.update(db)
            }
            return AdminToken(name: record.name, createdAt: record.createdAt, revokedAt: record.revokedAt)
        }
    }

    /// Resolves a token's hash.
    public func lookupAdminToken(hash: String) throws -> TokenLookup {
        try read { db in
            guard let record = try AdminTokenRecord.filter(Column("hash") == hash).fetchOne(db) else { return .unknown }
            return record.revokedAt == nil ? .valid(record.name) : .revoked(record.name)
        }
    }

    /// The most audit entries kept: the oldest go as new ones come (refused requests are
    /// audited too, and anyone who can reach the admin address can make those).
    public static let maxAuditEntries: Int64 = 100_000

    /// Appends to the audit log (a path is kept to its first 2 KiB), dropping the entries that
    /// fall out of the newest ``maxAuditEntries``.
    public func appendAudit(_ entry: AuditEntry, keeping limit: Int64 = Store.maxAuditEntries) throws {
        try write { db, _ in
            var record = AuditEntryRecord(
                id: nil, at: entry.at, actor: entry.actor, method: entry.method, path: String(entry.path.prefix(2048)), status: entry.status,
                remoteAddress: entry.remoteAddress)
            try record.insert(db)
            // Ids only grow (AUTOINCREMENT): one range delete on the primary key.
            if let id = record.id, id > limit {
                try db.execute(sql: "DELETE FROM auditEntry WHERE id <= ?", arguments: [id - limit])
            }
        }
    }

    /// The newest `limit` audit entries (newest first), optionally only those of `actor`.
    public func auditEntries(limit: Int, actor: String? = nil) throws -> [AuditEntry] {
        try read { db in
            var request = AuditEntryRecord.order(Column("id").desc).limit(limit)
            if let actor { request = request.filter(Column("actor") == actor) }
            return try request.fetchAll(db).map {
                AuditEntry(at: $0.at, actor: $0.actor, method: $0.method, path: $0.path, status: $0.status, remoteAddress: $0.remoteAddress)
            }
        }
    }
}
