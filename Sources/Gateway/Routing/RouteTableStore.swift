import Synchronization

/// Holds the current ``RouteTable`` snapshot. The control plane publishes whole tables; the
/// data path reads them through a per-event-loop ``RouteTableCache`` so a request costs one
/// atomic load, and takes the lock only after a publish.
final class RouteTableStore: Sendable {
    private let table: Mutex<(version: UInt64, table: RouteTable)>
    private let version = Atomic<UInt64>(0)

    init(initial: RouteTable) {
        self.table = Mutex((0, initial))
    }

    /// Replaces the snapshot; readers see it on their next request.
    func publish(_ newTable: RouteTable) {
        table.withLock { current in
            let next = current.version &+ 1
            current = (next, newTable.inheritingRuntime(from: current.table))
            version.store(next, ordering: .releasing)
        }
    }

    /// The current snapshot.
    var current: RouteTable {
        table.withLock { $0.table }
    }

    /// The version of the current snapshot (bumps on every publish).
    var currentVersion: UInt64 {
        version.load(ordering: .acquiring)
    }

    /// The snapshot together with its version, read consistently.
    func versionedSnapshot() -> (version: UInt64, table: RouteTable) {
        table.withLock { $0 }
    }
}

/// One event loop's copy of the latest route table: no lock while nothing was published.
/// Not thread-safe; owned by one event loop.
final class RouteTableCache {
    private let store: RouteTableStore
    private var version: UInt64
    private var table: RouteTable

    init(store: RouteTableStore) {
        self.store = store
        (self.version, self.table) = store.versionedSnapshot()
    }

    /// The latest published table.
    var current: RouteTable {
        if store.currentVersion != version {
            (version, table) = store.versionedSnapshot()
        }
        return table
    }
}
