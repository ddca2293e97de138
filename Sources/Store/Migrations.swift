import GRDB

/// Every schema change, registered in order. Landed migrations are never edited: a change is a
/// new named migration appended here.
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1-serving-resources") { db in
            // One counter for every write, like Kubernetes' resourceVersion.
            try db.execute(sql: """
                CREATE TABLE sequence (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);
                INSERT INTO sequence (name, value) VALUES ('resourceVersion', 0);
                CREATE TABLE service (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    uid TEXT NOT NULL UNIQUE,
                    generation INTEGER NOT NULL,
                    resourceVersion INTEGER NOT NULL,
                    annotations TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    status TEXT NOT NULL,
                    configurationGeneration INTEGER NOT NULL,
                    createdAt DATETIME NOT NULL,
                    updatedAt DATETIME NOT NULL,
                    UNIQUE (namespace, name)
                );
                CREATE TABLE revision (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    serviceId INTEGER NOT NULL REFERENCES service(id) ON DELETE CASCADE,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    serviceName TEXT NOT NULL,
                    uid TEXT NOT NULL UNIQUE,
                    configurationGeneration INTEGER NOT NULL,
                    resourceVersion INTEGER NOT NULL,
                    spec TEXT NOT NULL,
                    status TEXT NOT NULL,
                    createdAt DATETIME NOT NULL,
                    updatedAt DATETIME NOT NULL,
                    UNIQUE (namespace, name)
                );
                CREATE INDEX revision_by_service ON revision(serviceId, configurationGeneration);
                CREATE TABLE route (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    serviceId INTEGER NOT NULL UNIQUE REFERENCES service(id) ON DELETE CASCADE,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    uid TEXT NOT NULL UNIQUE,
                    generation INTEGER NOT NULL,
                    resourceVersion INTEGER NOT NULL,
                    traffic TEXT NOT NULL,
                    resolvedTraffic TEXT NOT NULL,
                    createdAt DATETIME NOT NULL,
                    updatedAt DATETIME NOT NULL,
                    UNIQUE (namespace, name)
                );
                """)
        }
        registerTrafficPolicies(&migrator)
        registerAdminAccess(&migrator)
        registerEventing(&migrator)
        registerDocuments(&migrator)
        registerEventLogRowID(&migrator)
        registerRateLimitFillDefault(&migrator)
        return migrator
    }

    /// Names of all registered migrations, in order.
    static var names: [String] { migrator.migrations }
}
