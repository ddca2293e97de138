import Foundation
import GRDB
import Synchronization

/// A trigger as the event log knows it: the uid ties a delivery to one incarnation of the
/// trigger (a trigger deleted and created again under the same name is a different one).
public struct TriggerRef: Sendable, Hashable {
    /// The trigger's uid.
    public var uid: String
    /// The trigger's name, kept for listings after the trigger is gone.
    public var name: String

    /// Creates a reference.
    public init(uid: String, name: String) {
        self.uid = uid
        self.name = name
    }
}

/// An event accepted by a broker, about to be committed with one delivery per matching trigger.
public struct NewEvent: Sendable {
    /// The broker's namespace.
    public var namespace: String
    /// The broker's name.
    public var broker: String
    /// The CloudEvent's `id`.
    public var eventId: String
    /// The CloudEvent's `source`.
    public var source: String
    /// The CloudEvent's `type`.
    public var type: String
    /// The event, encoded by the Eventing module.
    public var payload: [UInt8]
    /// The triggers whose filters matched: each gets exactly one delivery row.
    public var triggers: [TriggerRef]

    /// Creates an event to append.
    public init(namespace: String, broker: String, eventId: String, source: String, type: String, payload: [UInt8], triggers: [TriggerRef]) {
        self.namespace = namespace
        self.broker = broker
        self.eventId = eventId
        self.source = source
        self.type = type
        self.payload = payload
        self.triggers = triggers
    }
}

/// Where one delivery stands. Values below 10 are open (the dispatcher still works on them).
public enum DeliveryState: Int, Sendable, Hashable, CaseIterable {
    /// Waiting for its next attempt to the subscriber.
    case pending = 0
    /// The subscriber attempts are used up; waiting for an attempt to the dead-letter sink.
    case deadLetterPending = 1
    /// The subscriber accepted it.
    case delivered = 10
    /// The dead-letter sink accepted it.
    case deadLettered = 11
    /// Given up: no dead-letter sink, or the sink failed too.
    case dropped = 12

    /// Whether the dispatcher still has work to do on it.
    public var isOpen: Bool { rawValue < 10 }
    /// Whether it ended without reaching the subscriber.
    public var isFailed: Bool { self == .deadLettered || self == .dropped }

    /// The name used by the API, e.g. `DeadLettered`.
    public var name: String {
        switch self {
        case .pending: "Pending"
        case .deadLetterPending: "DeadLetterPending"
        case .delivered: "Delivered"
        case .deadLettered: "DeadLettered"
        case .dropped: "Dropped"
        }
    }
}

/// A change to one delivery row after an attempt.
public struct DeliveryProgress: Sendable, Hashable {
    /// The event.
    public var eventSeq: Int64
    /// The trigger's uid.
    public var triggerUID: String
    /// The new state.
    public var state: DeliveryState
    /// Attempts made so far (to the subscriber, then to the dead-letter sink).
    public var attempts: Int
    /// When the next attempt is due (seconds since 1970), for open states.
    public var nextAttemptAt: Double
    /// The last HTTP status, nil for a network error or timeout.
    public var lastStatus: Int?
    /// What went wrong last, for people.
    public var lastError: String?

    /// Creates a progress record.
    public init(eventSeq: Int64, triggerUID: String, state: DeliveryState, attempts: Int, nextAttemptAt: Double, lastStatus: Int?, lastError: String?) {
        self.eventSeq = eventSeq
        self.triggerUID = triggerUID
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastStatus = lastStatus
        self.lastError = lastError
    }
}

/// A delivery the dispatcher must (still) carry out, with its event.
public struct OpenDelivery: Sendable {
    /// The event's sequence number in the log.
    public var eventSeq: Int64
    /// The broker's namespace.
    public var namespace: String
    /// The broker.
    public var broker: String
    /// The trigger.
    public var trigger: TriggerRef
    /// Pending or dead-letter pending.
    public var state: DeliveryState
    /// Attempts made so far.
    public var attempts: Int
    /// When the next attempt is due.
    public var nextAttemptAt: Double
    /// The encoded event.
    public var payload: [UInt8]
    /// The status of the last attempt (nil: none yet, or a network error).
    public var lastStatus: Int?
    /// What went wrong last.
    public var lastError: String?

    /// Creates a delivery.
    public init(
        eventSeq: Int64, namespace: String, broker: String, trigger: TriggerRef, state: DeliveryState, attempts: Int, nextAttemptAt: Double,
        payload: [UInt8], lastStatus: Int? = nil, lastError: String? = nil
    ) {
        self.eventSeq = eventSeq
        self.namespace = namespace
        self.broker = broker
        self.trigger = trigger
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.payload = payload
        self.lastStatus = lastStatus
        self.lastError = lastError
    }
}

/// How hard a commit of the event log is pushed to disk.
public enum CommitDurability: Sendable, Hashable {
    /// `synchronous=FULL`: the WAL is fsynced before the commit returns; survives power loss.
    case full
    /// `synchronous=NORMAL`: the WAL is fsynced at checkpoints; survives a crash of the
    /// process (SIGKILL), but the last commits may roll back after a power loss.
    case normal
}

/// One delivery row, for listings.
public struct DeliveryRecordView: Sendable, Hashable {
    /// The trigger.
    public var trigger: TriggerRef
    /// Its state.
    public var state: DeliveryState
    /// Attempts made.
    public var attempts: Int
    /// When the next attempt is due (open states).
    public var nextAttemptAt: Double
    /// The last HTTP status.
    public var lastStatus: Int?
    /// The last error.
    public var lastError: String?
    /// When the row last changed.
    public var updatedAt: Double
}

/// An event in the log with its deliveries.
public struct StoredEventView: Sendable {
    /// Sequence number (increases with arrival).
    public var seq: Int64
    /// The broker's namespace.
    public var namespace: String
    /// The broker.
    public var broker: String
    /// CloudEvent `id`, `source` and `type`.
    public var eventId: String, source: String, type: String
    /// When the broker committed it (seconds since 1970).
    public var receivedAt: Double
    /// The encoded event.
    public var payload: [UInt8]
    /// Its deliveries (filled by the listing calls that say so).
    public var deliveries: [DeliveryRecordView]
}

extension Store {
    /// Appends `events` (each with its delivery rows) and applies `progress` to existing rows,
    /// in one transaction committed with `durability`. Returns the new events' sequence numbers,
    /// in order. Called by one writer at a time (the Eventing module's log writer), so statements
    /// are prepared once per connection and reused.
    public func commitEventLog(
        appending events: [NewEvent], progress: [DeliveryProgress], durability: CommitDurability, now: Double
    ) throws -> [Int64] {
        do {
            let seqs = try writer.writeWithoutTransaction { db in
                // BEGIN and COMMIT are cached: parsing them again for each commit cost about as
                // much as an insert.
                try setWriterSynchronous(durability == .full ? 2 : 1, db)
                var seqs: [Int64] = []
                seqs.reserveCapacity(events.count)
                try Self.inCachedTransaction(db) {
                    let insertEvent = try db.cachedStatement(sql: """
                        INSERT INTO event (namespace, broker, eventId, source, type, receivedAt, payload)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """)
                    let insertDelivery = try db.cachedStatement(sql: """
                        INSERT OR IGNORE INTO delivery (eventSeq, triggerUID, triggerName, state, attempts, nextAttemptAt, updatedAt)
                        VALUES (?, ?, ?, 0, 0, ?, ?)
                        """)
                    for event in events {
                        try insertEvent.execute(arguments: [
                            event.namespace, event.broker, event.eventId, event.source, event.type, now,
                            Data(event.payload),
                        ])
                        let seq = db.lastInsertedRowID
                        seqs.append(seq)
                        for trigger in event.triggers {
                            try insertDelivery.execute(arguments: [seq, trigger.uid, trigger.name, now, now])
                        }
                    }
                    if !progress.isEmpty {
                        let update = try db.cachedStatement(sql: """
                            UPDATE delivery SET state = ?, attempts = ?, nextAttemptAt = ?, lastStatus = ?, lastError = ?, updatedAt = ?
                            WHERE eventSeq = ? AND triggerUID = ?
                            """)
                        for item in progress {
                            try update.execute(arguments: [
                                item.state.rawValue, item.attempts, item.nextAttemptAt, item.lastStatus, item.lastError, now,
                                item.eventSeq, item.triggerUID,
                            ])
                        }
                    }
                }
                return seqs
            }
            checkpointer?.noteCommit()
            return seqs
        } catch {
            throw StoreError(.storage, "cannot commit to the event log: \(error)")
        }
    }

    /// Open deliveries after a position, oldest first (by event, then trigger UID), with their
    /// events: what the dispatcher reloads after a restart or when it let its queue spill.
    ///
    /// The position is an event sequence number, and optionally a trigger UID of that event: a
    /// page that ended part-way through one event's deliveries goes on with that event's next
    /// trigger. Without `afterTrigger`, every delivery of event `afterSeq` is skipped.
    public func openDeliveries(afterSeq: Int64 = 0, afterTrigger: String? = nil, limit: Int) throws -> [OpenDelivery] {
        try read { db in
            // `eventSeq >= ?` alone bounds the index range, so each page starts where the last
            // one ended instead of scanning the open deliveries before it.
            let position = afterTrigger == nil ? "d.eventSeq > ?1" : "d.eventSeq >= ?1 AND (d.eventSeq > ?1 OR d.triggerUID > ?2)"
            let rows = try Row.fetchAll(db, sql: """
                SELECT d.eventSeq, e.namespace, e.broker, d.triggerUID, d.triggerName, d.state, d.attempts, d.nextAttemptAt, e.payload,
                       d.lastStatus, d.lastError
                FROM delivery d JOIN event e ON e.seq = d.eventSeq
                WHERE d.state < 10 AND \(position)
                ORDER BY d.eventSeq, d.triggerUID LIMIT ?3
                """, arguments: [afterSeq, afterTrigger ?? "", limit])
            return rows.map { row in
                OpenDelivery(
                    eventSeq: row[0], namespace: row[1], broker: row[2], trigger: TriggerRef(uid: row[3], name: row[4]),
                    state: DeliveryState(rawValue: row[5]) ?? .pending, attempts: row[6], nextAttemptAt: row[7],
                    payload: [UInt8](row[8] as Data), lastStatus: row[9], lastError: row[10])
            }
        }
    }

    /// Events of a broker, newest first, optionally of one `type`, older than `beforeSeq`.
    public func storedEvents(
        namespace: String, broker: String, type: String? = nil, beforeSeq: Int64? = nil, limit: Int
    ) throws -> [StoredEventView] {
        try read { db in
            var sql = "SELECT seq, namespace, broker, eventId, source, type, receivedAt, payload FROM event WHERE namespace = ? AND broker = ?"
            var arguments: StatementArguments = [namespace, broker]
            if let type {
                sql += " AND type = ?"
                _ = arguments.append(contentsOf: [type])
            }
            if let beforeSeq {
                sql += " AND seq < ?"
                _ = arguments.append(contentsOf: [beforeSeq])
            }
            sql += " ORDER BY seq DESC LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            var events = try Row.fetchAll(db, sql: sql, arguments: arguments).map(Self.eventView)
            try Self.attachDeliveries(db, to: &events)
            return events
        }
    }

    /// One event with its deliveries, or nil.
    public func storedEvent(seq: Int64) throws -> StoredEventView? {
        try read { db in
            guard let row = try Row.fetchOne(
                db, sql: "SELECT seq, namespace, broker, eventId, source, type, receivedAt, payload FROM event WHERE seq = ?",
                arguments: [seq]) else { return nil }
            var events = [Self.eventView(row)]
            try Self.attachDeliveries(db, to: &events)
            return events.first
        }
    }

    /// Deliveries that ended without reaching their subscriber (dead-lettered or dropped) in a
    /// namespace, optionally of one trigger, newest first; each event carries just that row.
    public func failedDeliveries(namespace: String, triggerName: String? = nil, limit: Int) throws -> [StoredEventView] {
        try read { db in
            var sql = """
                SELECT e.seq, e.namespace, e.broker, e.eventId, e.source, e.type, e.receivedAt, e.payload,
                       d.triggerUID, d.triggerName, d.state, d.attempts, d.nextAttemptAt, d.lastStatus, d.lastError, d.updatedAt
                FROM delivery d JOIN event e ON e.seq = d.eventSeq
                WHERE d.state >= 11 AND e.namespace = ?
                """
            var arguments: StatementArguments = [namespace]
            if let triggerName {
                sql += " AND d.triggerName = ?"
                _ = arguments.append(contentsOf: [triggerName])
            }
            sql += " ORDER BY e.seq DESC LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
            return try Row.fetchAll(db, sql: sql, arguments: arguments).map { row in
                var event = Self.eventView(row)
                event.deliveries = [Self.deliveryView(row, from: 8)]
                return event
            }
        }
    }

    /// Sends failed deliveries of a namespace back to their subscribers: each becomes pending
    /// with no attempts made, due `now`. Limited to one trigger and/or some events when given,
    /// and to the triggers in `triggerUIDs` (those that still exist) when that is given.
    /// Returns the reopened deliveries for the dispatcher.
    public func redriveDeliveries(
        namespace: String, triggerName: String? = nil, eventSeqs: [Int64]? = nil, triggerUIDs: Set<String>? = nil, now: Double
    ) throws -> [OpenDelivery] {
        try write { db, _ in
            var condition = "d.state >= 11 AND e.namespace = ?"
            var arguments: StatementArguments = [namespace]
            if let triggerUIDs {
                guard !triggerUIDs.isEmpty else { return [] }
                condition += " AND d.triggerUID IN (\(triggerUIDs.map { _ in "?" }.joined(separator: ",")))"
                _ = arguments.append(contentsOf: StatementArguments(Array(triggerUIDs)))
            }
            if let triggerName {
                condition += " AND d.triggerName = ?"
                _ = arguments.append(contentsOf: [triggerName])
            }
            if let eventSeqs {
                guard !eventSeqs.isEmpty else { return [] }
                condition += " AND d.eventSeq IN (\(eventSeqs.map { _ in "?" }.joined(separator: ",")))"
                _ = arguments.append(contentsOf: StatementArguments(eventSeqs))
            }
            let rows = try Row.fetchAll(db, sql: """
                SELECT d.eventSeq, e.namespace, e.broker, d.triggerUID, d.triggerName, e.payload
                FROM delivery d JOIN event e ON e.seq = d.eventSeq WHERE \(condition) ORDER BY d.eventSeq
                """, arguments: arguments)
            let update = try db.cachedStatement(sql: """
                UPDATE delivery SET state = 0, attempts = 0, nextAttemptAt = ?, lastStatus = NULL, lastError = NULL, updatedAt = ?
                WHERE eventSeq = ? AND triggerUID = ?
                """)
            return try rows.map { row in
                let delivery = OpenDelivery(
                    eventSeq: row[0], namespace: row[1], broker: row[2], trigger: TriggerRef(uid: row[3], name: row[4]),
                    state: .pending, attempts: 0, nextAttemptAt: now, payload: [UInt8](row[5] as Data))
                try update.execute(arguments: [now, now, delivery.eventSeq, delivery.trigger.uid])
                return delivery
            }
        }
    }

    /// Deletes up to `limit` events received before `cutoff` whose deliveries have all ended
    /// (retention); their delivery rows go with them. Returns how many were deleted.
    ///
    /// The log is walked from its oldest event in `seq` (commit) order and the walk stops at the
    /// first event received at or after `cutoff`, so a run reads what it deletes plus the old
    /// events still being delivered, at most `scanLimit` rows. The newest event is never
    /// deleted: it keeps the next `seq` above every one handed out.
    public func pruneEvents(receivedBefore cutoff: Double, limit: Int = 10_000, scanLimit: Int = 100_000) throws -> Int {
        try write { db, _ in
            guard let newest = try Int64.fetchOne(db, sql: "SELECT max(seq) FROM event") else { return 0 }
            let candidates = try db.cachedStatement(sql: """
                SELECT e.seq, e.receivedAt, EXISTS (SELECT 1 FROM delivery d WHERE d.eventSeq = e.seq AND d.state < 10)
                FROM event e WHERE e.seq < ? ORDER BY e.seq LIMIT ?
                """)
            var doomed: [Int64] = []
            do {
                let rows = try Row.fetchCursor(candidates, arguments: [newest, scanLimit])
                while doomed.count < limit, let row = try rows.next() {
                    let receivedAt: Double = row[1]
                    if receivedAt >= cutoff { break }
                    if !(row[2] as Bool) { doomed.append(row[0]) }
                }
            }
            let delete = try db.cachedStatement(sql: "DELETE FROM event WHERE seq = ?")
            for seq in doomed { try delete.execute(arguments: [seq]) }
            return doomed.count
        }
    }

    /// Counts of events and of open deliveries (for metrics and back-pressure decisions).
    public func eventLogCounts() throws -> (events: Int, openDeliveries: Int) {
        try read { db in
            let events = try Int.fetchOne(db, sql: "SELECT count(*) FROM event") ?? 0
            let open = try Int.fetchOne(db, sql: "SELECT count(*) FROM delivery WHERE state < 10") ?? 0
            return (events, open)
        }
    }

    /// Runs `body` in an IMMEDIATE transaction whose BEGIN and COMMIT are cached statements;
    /// rolls back when `body` or the commit throws.
    private static func inCachedTransaction(_ db: Database, _ body: () throws -> Void) throws {
        try db.cachedStatement(sql: "BEGIN IMMEDIATE TRANSACTION").execute()
        do {
            try body()
            try db.cachedStatement(sql: "COMMIT TRANSACTION").execute()
        } catch {
            if db.isInsideTransaction { try? db.execute(sql: "ROLLBACK TRANSACTION") }
            throw error
        }
    }

    private static func eventView(_ row: Row) -> StoredEventView {
        StoredEventView(
            seq: row[0], namespace: row[1], broker: row[2], eventId: row[3], source: row[4], type: row[5], receivedAt: row[6],
            payload: [UInt8](row[7] as Data), deliveries: [])
    }

    private static func deliveryView(_ row: Row, from start: Int) -> DeliveryRecordView {
        DeliveryRecordView(
            trigger: TriggerRef(uid: row[start], name: row[start + 1]),
            state: DeliveryState(rawValue: row[start + 2]) ?? .pending, attempts: row[start + 3], nextAttemptAt: row[start + 4],
            lastStatus: row[start + 5], lastError: row[start + 6], updatedAt: row[start + 7])
    }

    private static func attachDeliveries(_ db: Database, to events: inout [StoredEventView]) throws {
        guard !events.isEmpty else { return }
        let statement = try db.cachedStatement(sql: """
            SELECT triggerUID, triggerName, state, attempts, nextAttemptAt, lastStatus, lastError, updatedAt
            FROM delivery WHERE eventSeq = ? ORDER BY triggerName
            """)
        for index in events.indices {
            events[index].deliveries = try Row.fetchAll(statement, arguments: [events[index].seq]).map { deliveryView($0, from: 0) }
        }
    }
}
