// The Store owns all SQL. One `DatabasePool` in WAL mode per process; public API = named
// transactions that keep the resource model's invariants (a service always has a route and at
// least one revision; revisions are immutable snapshots named `<service>-%05d`) plus typed reads
// and an in-process change stream that controllers wake on.
import Foundation
import GRDB
import Synchronization

/// What changed, published after the transaction that changed it commits.
public struct StoreChange: Hashable, Sendable {
    /// The kind of resource.
    public enum Kind: String, Hashable, Sendable {
        /// A service (spec or status).
        case service
        /// A revision (created, status changed or deleted).
        case revision
        /// A traffic policy (set or deleted); its name is the service's.
        case trafficPolicy
        /// A broker (spec or status).
        case broker
        /// A trigger (spec or status).
        case trigger
        /// A ping source (spec or status).
        case pingSource
        /// An authorization policy.
        case authorizationPolicy
        /// A namespace's or service's peer authentication.
        case peerAuthentication
    }
    /// Kind of resource.
    public var kind: Kind
    /// Its namespace.
    public var namespace: String
    /// Its name.
    public var name: String

    /// Creates a change record.
    public init(kind: Kind, namespace: String, name: String) {
        self.kind = kind
        self.namespace = namespace
        self.name = name
    }
}

/// The platform's durable state: one SQLite file.
public final class Store: Sendable {
    let writer: any DatabaseWriter
    /// Checkpoints the WAL off the writer's path (file-backed stores only).
    let checkpointer: WALCheckpointer?
    private let subscribers = Mutex<[UInt64: AsyncStream<StoreChange>.Continuation]>([:])
    private let nextSubscriber = Atomic<UInt64>(0)
    /// The writer connection's `synchronous` level as the event log last set it (0: not set yet,
    /// else the pragma's value); read and changed only inside the writer's critical section.
    let writerSynchronous = Atomic<Int>(0)

    /// Opens (creating if needed) the database at `path` in WAL mode and runs pending migrations.
    public convenience init(path: String) throws {
        try self.init(path: path, walRestartFrames: WALCheckpointer.backstopPages / 2)
    }

    /// As ``init(path:)``, with the WAL length at which the checkpoint thread makes the log start
    /// over (see ``WALCheckpointer``).
    init(path: String, walRestartFrames: Int) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        configuration.label = "outpost"
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA wal_autocheckpoint = \(WALCheckpointer.backstopPages)")
        }
        do {
            let pool = try DatabasePool(path: path, configuration: configuration)
            try Migrations.migrator.migrate(pool)
            writer = pool
            checkpointer = try WALCheckpointer(path: path, writer: pool, restartFrames: walRestartFrames)
        } catch {
            throw StoreError(.storage, "cannot open the store at \(path): \(error)")
        }
    }

    /// An in-memory store for tests (same schema, same transactions).
    public init(inMemory: Void) throws {
        let queue = try DatabaseQueue()
        try Migrations.migrator.migrate(queue)
        writer = queue
        checkpointer = nil
    }

    deinit {
        checkpointer?.stop()
    }

    /// Names of the migrations applied to this database, in order.
    public func appliedMigrations() throws -> [String] {
        try writer.read { db in try Migrations.migrator.appliedIdentifiers(db) }.sorted {
            (Migrations.names.firstIndex(of: $0) ?? 0) < (Migrations.names.firstIndex(of: $1) ?? 0)
        }
    }

    /// SQLite's journal mode (`wal` for a file-backed store).
    public func journalMode() throws -> String {
        try writer.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "" }
    }

    // MARK: Change stream

    /// A stream of changes committed after this call. Ends when the consumer stops iterating.
    public func changes() -> AsyncStream<StoreChange> {
        let id = nextSubscriber.add(1, ordering: .relaxed).newValue
        let (stream, continuation) = AsyncStream<StoreChange>.makeStream(bufferingPolicy: .bufferingNewest(1024))
        subscribers.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        return stream
    }

    func publish(_ changes: [StoreChange]) {
        guard !changes.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for continuation in targets {
            for change in changes { continuation.yield(change) }
        }
    }

    /// Runs a write transaction, maps database errors, and publishes the changes it reports.
    ///
    /// Commits with `synchronous=FULL`: what the API acknowledges (a revoked token, a policy)
    /// survives a power loss, not only a crash of the daemon. These writes are few; the event
    /// log chooses its own level per commit (``commitEventLog(appending:progress:durability:now:)``).
    func write<T>(_ body: (Database, inout [StoreChange]) throws -> T) throws -> T {
        var changes: [StoreChange] = []
        let result: T
        do {
            result = try writer.writeWithoutTransaction { db in
                try setWriterSynchronous(2, db)
                var value: T?
                try db.inTransaction(.immediate) {
                    changes = []
                    value = try body(db, &changes)
                    return .commit
                }
                return value!
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.storage, "database write failed: \(error)")
        }
        checkpointer?.noteCommit()
        publish(changes)
        return result
    }

    /// Sets the writer connection's `synchronous` level (1 NORMAL, 2 FULL) when it changes.
    /// SQLite applies this pragma while preparing it, so it cannot be a cached statement.
    /// Called inside the writer's critical section, outside a transaction.
    func setWriterSynchronous(_ level: Int, _ db: Database) throws {
        guard writerSynchronous.load(ordering: .relaxed) != level else { return }
        try db.execute(sql: "PRAGMA synchronous = \(level)")
        writerSynchronous.store(level, ordering: .relaxed)
    }

    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try writer.read(body)
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.storage, "database read failed: \(error)")
        }
    }

    /// Takes the next value of the global resource-version counter.
    static func nextResourceVersion(_ db: Database) throws -> Int64 {
        try db.execute(sql: "UPDATE sequence SET value = value + 1 WHERE name = 'resourceVersion'")
        return try Int64.fetchOne(db, sql: "SELECT value FROM sequence WHERE name = 'resourceVersion'") ?? 0
    }

    static func newUID() -> String { UUID().uuidString.lowercased() }
}
