import GRDB

extension Migrations {
    /// `v6-resource-documents`: the table of JSON-document resources, created for the eventing
    /// kinds in `v5-eventing`, holds security kinds too (authorization policies, peer
    /// authentications), so it is renamed after what it is.
    static func registerDocuments(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v6-resource-documents") { db in
            try db.execute(sql: "ALTER TABLE eventingResource RENAME TO resourceDocument")
        }
    }
}
