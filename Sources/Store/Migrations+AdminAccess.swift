import GRDB

extension Migrations {
    /// `v4-admin-access`: admin API tokens (only their SHA-256 is kept) and the audit log of
    /// mutating admin calls.
    static func registerAdminAccess(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v4-admin-access") { db in
            try db.execute(sql: """
                CREATE TABLE adminToken (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    name TEXT NOT NULL UNIQUE,
                    hash TEXT NOT NULL UNIQUE,
                    createdAt DATETIME NOT NULL,
                    revokedAt DATETIME
                );
                CREATE TABLE auditEntry (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    at DATETIME NOT NULL,
                    actor TEXT NOT NULL,
                    method TEXT NOT NULL,
                    path TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    remoteAddress TEXT NOT NULL
                );
                CREATE INDEX auditEntry_by_time ON auditEntry(at);
                """)
        }
    }
}
