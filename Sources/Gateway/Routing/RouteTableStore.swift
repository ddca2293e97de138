import Synchronization

/// Holds the current snapshot of a table the control plane publishes whole (the route table,
/// the security table). The data path reads it through a per-event-loop ``SnapshotCache`` so a
/// request costs one atomic load, and takes the lock only after a publish.
final class SnapshotStore<Value: Sendable>: Sendable {
    private let table: Mutex<(version: UInt64, value: Value)>
    private let version = Atomic<UInt64>(0)
    /// Combines the published value with the one it replaces (state that must survive a publish).
    private let merge: @Sendable (_ old: Value, _ new: Value) -> Value

    init(initial: Value, merge: @escaping @Sendable (_ old: Value, _ new: Value) -> Value = { $1 }) {
        self.table = Mutex((0, initial))
        self.merge = merge
    }

    /// Replaces the snapshot; readers see it on their next request.
    func publish(_ newValue: Value) {
        table.withLock { current in
            let next = current.version &+ 1
            current = (next, merge(current.value, newValue))
            version.store(next, ordering: .releasing)
        }
    }

    /// The current snapshot.
    var current: Value {
        table.withLock { $0.value }
    }

    /// The version of the current snapshot (bumps on every publish).
    var currentVersion: UInt64 {
        version.load(ordering: .acquiring)
    }

    /// The snapshot together with its version, read consistently.
    func versionedSnapshot() -> (version: UInt64, value: Value) {
        table.withLock { $0 }
    }
}

/// The published route tables. A new table keeps the shared limits (rate-limit buckets,
/// in-flight counters) of the services it still routes.
typealias RouteTableStore = SnapshotStore<RouteTable>

extension SnapshotStore where Value == RouteTable {
    convenience init(initial: RouteTable) {
        self.init(initial: initial) { old, new in new.inheritingRuntime(from: old) }
    }
}

/// One event loop's copy of the latest snapshot: no lock while nothing was published.
/// Not thread-safe; owned by one event loop.
final class SnapshotCache<Value: Sendable> {
    private let store: SnapshotStore<Value>
    private var version: UInt64
    private var value: Value

    init(store: SnapshotStore<Value>) {
        self.store = store
        (self.version, self.value) = store.versionedSnapshot()
    }

    /// The latest published snapshot.
    var current: Value {
        if store.currentVersion != version {
            (version, value) = store.versionedSnapshot()
        }
        return value
    }
}

/// One event loop's view of the route table.
typealias RouteTableCache = SnapshotCache<RouteTable>
