import GRDB

extension Migrations {
    /// `v5-eventing`: brokers, triggers and ping sources (one table; their specs are JSON owned by
    /// the Eventing module), the durable event log and one delivery row per (event, trigger).
    ///
    /// An event is stored once, as the compact bytes the Eventing module encodes, with the
    /// attributes the API filters on copied into columns. `delivery` is `WITHOUT ROWID` keyed by
    /// (event, trigger) so "one delivery per matching trigger" is a primary-key fact, and a
    /// partial index holds only the open rows, so recovery after a crash reads just those.
    static func registerEventing(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v5-eventing") { db in
            try db.execute(sql: """
                CREATE TABLE eventingResource (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    kind TEXT NOT NULL,
                    namespace TEXT NOT NULL,
                    name TEXT NOT NULL,
                    uid TEXT NOT NULL UNIQUE,
                    generation INTEGER NOT NULL,
                    resourceVersion INTEGER NOT NULL,
                    annotations TEXT NOT NULL,
                    spec TEXT NOT NULL,
                    status TEXT NOT NULL,
                    createdAt DATETIME NOT NULL,
                    updatedAt DATETIME NOT NULL,
                    UNIQUE (kind, namespace, name)
                );
                CREATE TABLE event (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    namespace TEXT NOT NULL,
                    broker TEXT NOT NULL,
                    eventId TEXT NOT NULL,
                    source TEXT NOT NULL,
                    type TEXT NOT NULL,
                    receivedAt REAL NOT NULL,
                    payload BLOB NOT NULL
                );
                CREATE INDEX event_by_broker ON event (namespace, broker, seq);
                CREATE INDEX event_by_time ON event (receivedAt);
                CREATE TABLE delivery (
                    eventSeq INTEGER NOT NULL REFERENCES event(seq) ON DELETE CASCADE,
                    triggerUID TEXT NOT NULL,
                    triggerName TEXT NOT NULL,
                    state INTEGER NOT NULL,
                    attempts INTEGER NOT NULL,
                    nextAttemptAt REAL NOT NULL,
                    lastStatus INTEGER,
                    lastError TEXT,
                    updatedAt REAL NOT NULL,
                    PRIMARY KEY (eventSeq, triggerUID)
                ) WITHOUT ROWID;
                CREATE INDEX delivery_open ON delivery (eventSeq) WHERE state < 10;
                CREATE INDEX delivery_failed ON delivery (triggerName, eventSeq) WHERE state >= 11;
                """)
        }
    }

    /// `v7-event-log-rowid`: the event table without `AUTOINCREMENT` and without the index on
    /// `receivedAt`, the two writes every append paid for beside the row itself (a
    /// `sqlite_sequence` update and a second index entry).
    ///
    /// `seq` still only grows: SQLite gives a new row the largest rowid plus one, and retention
    /// never deletes the newest event. (Numbers above the newest event left at the upgrade, of
    /// events an older retention had already deleted, can be handed out once more.) Retention
    /// walks the log in `seq` order, which is commit order, instead of using the index. The
    /// rebuild follows SQLite's procedure for table changes (new table, copy, drop, rename);
    /// GRDB runs migrations with foreign keys off and checks them before it commits, so the
    /// delivery rows stay with their events.
    static func registerEventLogRowID(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v7-event-log-rowid") { db in
            try db.execute(sql: """
                CREATE TABLE event_new (
                    seq INTEGER PRIMARY KEY,
                    namespace TEXT NOT NULL,
                    broker TEXT NOT NULL,
                    eventId TEXT NOT NULL,
                    source TEXT NOT NULL,
                    type TEXT NOT NULL,
                    receivedAt REAL NOT NULL,
                    payload BLOB NOT NULL
                );
                INSERT INTO event_new (seq, namespace, broker, eventId, source, type, receivedAt, payload)
                    SELECT seq, namespace, broker, eventId, source, type, receivedAt, payload FROM event ORDER BY seq;
                DROP TABLE event;
                ALTER TABLE event_new RENAME TO event;
                CREATE INDEX event_by_broker ON event (namespace, broker, seq);
                """)
        }
    }
}
