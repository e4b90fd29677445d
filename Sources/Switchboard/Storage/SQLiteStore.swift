import CEL
import Foundation
import GRDB

/// The embedded store: SQLite through GRDB, in WAL mode with `synchronous = FULL`, so a commit
/// has reached the disk before anyone is answered. Concurrent writes share transactions
/// (``GroupCommit``), which is what makes durable ingest fast.
public final class SQLiteStore: Store {
    let pool: DatabasePool
    let commits: GroupCommit
    /// Parsed payloads of recent events, so that advancing a run does not parse its event again.
    let recentEvents = RecentEvents()
    /// Runs as last committed or read here, so that a delivery's result advances its run without
    /// reading it back (``loadRun(_:allowStale:)``).
    let recentRuns = RecentRuns()
    public let path: String

    /// Opens (and creates, with its folder) the database at `path`.
    public init(path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var configuration = GRDB.Configuration()
        configuration.foreignKeysEnabled = true
        configuration.busyMode = .timeout(10)
        configuration.maximumReaderCount = 8
        // Each write of a group commit runs in its own savepoint, and SQLite keeps the original of
        // every page a savepoint changes in a statement journal: a temporary file by default, which
        // more than doubled what a commit wrote through the kernel. In memory it costs a copy.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA temp_store = MEMORY") }
        pool = try DatabasePool(path: path, configuration: configuration)
        // GRDB sets NORMAL on the writer after prepareDatabase; FULL makes each commit durable.
        // Checkpoint every 8,000 WAL pages (32 MB) rather than SQLite's 1,000: pages rewritten between
        // checkpoints are copied once. Ingest was faster in 8 of 8 alternating pairs (e.g. 8,942 vs
        // 7,986 events/s); each checkpoint stalls the writer longer, so ingest p99 went from ~9 to
        // ~18 ms and ingest-to-delivery p99 at 2,000/s from 12.7 to 17.5 ms. A checkpointer on its own
        // connection was tried and was slower.
        try pool.writeWithoutTransaction { db in
            try db.cached(sql: "PRAGMA synchronous = FULL")
            try db.execute(sql: "PRAGMA wal_autocheckpoint = 8000")
        }
        commits = GroupCommit(writer: pool)
        self.path = path
    }

    public func migrate() async throws {
        try Self.migrator.migrate(pool)
    }

    public func ping() async throws {
        _ = try await pool.read { db in try Int.fetchOne(db, sql: "SELECT 1") }
    }

    // MARK: Events and runs

    public func ingest(_ event: EventRecord, runs: [RunCheckpoint]) async throws -> IngestOutcome {
        // Encoded before the transaction: the one writer should only write.
        let payload = event.payloadText ?? event.payload.text  // the runs refer to it
        let references = Self.encode(event.runs)
        let outcome = try await commits.write { db -> IngestOutcome in
            if let receipt = event.receipt {
                if let messageID = receipt.messageID, try Int.fetchOne(db, sql: """
                    SELECT 1 FROM callbacks WHERE connector = ? AND message_id = ? AND status = 'accepted'
                    """, arguments: [receipt.connector, messageID]) != nil
                {
                    try Self.insert(receipt.replay, db)
                    return .replayed
                }
                try Self.insert(receipt, db)
            }
            try db.execute(
                cached: """
                INSERT INTO events (id, dedupe_key, type, source, payload, received_at, runs) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (dedupe_key) DO NOTHING
                """,
                [.text(event.id.rawValue), .text(event.dedupeKey), .text(event.type), .text(event.source), .text(payload),
                 .integer(event.receivedAt.microseconds), .text(references)])
            if db.changesCount == 0 {
                let existing = try Row.fetchOne(try db.cachedStatement(sql: "SELECT * FROM events WHERE dedupe_key = ?"),
                                                arguments: [event.dedupeKey])
                if let existing { return .duplicate(try Self.event(from: existing)) }
            }
            for checkpoint in runs {
                let refers = checkpoint.run.trigger.eventID == event.id
                try Self.insert(checkpoint.run, db, eventStored: refers)
                try Self.write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id,
                               storedEvent: refers ? (event.id, payload) : nil, db)
                try Self.writeEffects(of: checkpoint, db)
            }
            return .accepted
        }
        // Runs that will advance again need the event parsed; remembered here, after the commit
        // and off the writer (forgetting the oldest frees a whole parsed event).
        if case .accepted = outcome, runs.contains(where: { !$0.run.status.isFinished }) {
            recentEvents.remember(event.id, event.payload, text: payload)
            for checkpoint in runs where !checkpoint.run.status.isFinished {
                recentRuns.remember(Self.stored(checkpoint, over: nil))
            }
        }
        return outcome
    }

    public func createRuns(_ runs: [RunCheckpoint]) async throws {
        try await commits.write { db in
            for checkpoint in runs {
                try Self.insert(checkpoint.run, db)
                try Self.write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id, db)
                try Self.writeEffects(of: checkpoint, db)
            }
        }
        for checkpoint in runs { recentRuns.remember(Self.stored(checkpoint, over: nil)) }
    }

    public func loadRun(_ id: RunID, allowStale: Bool) async throws -> RunSnapshot? {
        if allowStale, let remembered = recentRuns.latest(id) { return remembered }
        let snapshot = try await pool.read { [recentEvents] db in try Self.snapshot(id, db, events: recentEvents) }
        if let snapshot { recentRuns.remember(snapshot) }
        return snapshot
    }

    /// In one read: each run read alone costs two thread hops, which dominated a page of 100.
    public func loadRuns(_ ids: [RunID]) async throws -> [RunSnapshot] {
        try await pool.read { [recentEvents] db in try ids.compactMap { try Self.snapshot($0, db, events: recentEvents) } }
    }

    public func listRuns(_ query: RunQuery) async throws -> [RunRecord] {
        try await pool.read { db in
            var filter = SQLFilter()
            // A search reads its term's runs newest first, in the terms' key order, and stops at
            // the limit (an IN over every run with a common value would read them all).
            filter.add("t.term = ?", query.searchTerm)
            filter.add("workflow = ?", query.workflow)
            filter.add("status = ?", query.status?.rawValue)
            filter.add("decision = ?", query.decision?.rawValue)
            // Ids are time-ordered: a time filter is a range of the primary key.
            filter.add("id >= ?", query.since.map { RunID.lowerBound(at: $0).rawValue })
            filter.add("id < ?", query.until.map { RunID.lowerBound(at: $0).rawValue })
            filter.add("id < ?", query.before?.rawValue)
            filter.add("id > ?", query.after?.rawValue)
            // An event lists the runs it started.
            filter.add("id IN (SELECT json_extract(value, '$.id') FROM json_each((SELECT runs FROM events WHERE id = ?)))",
                       query.eventID?.rawValue)
            let from = query.searchTerm == nil ? "runs" : "run_search_terms AS t CROSS JOIN runs ON runs.id = t.run_id"
            let order = query.searchTerm == nil ? "id" : "t.run_id"
            return try Row.fetchAll(db, sql: """
                SELECT \(RunColumn.list) FROM \(from) \(filter.whereClause) ORDER BY \(order) \(query.oldestFirst ? "ASC" : "DESC") LIMIT ?
                """, arguments: filter.arguments + [query.limit]).map(Self.run(from:))
        }
    }

    public func finishedRunCounts(workflow: String, since: Date) async throws -> [Decision?: Int] {
        try await pool.read { db in
            var counts: [Decision?: Int] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT decision, COUNT(*) FROM runs
                WHERE workflow = ? AND id >= ? AND status IN ('completed', 'failed', 'cancelled') GROUP BY decision
                """, arguments: [workflow, RunID.lowerBound(at: since).rawValue])
            {
                counts[(row[0] as String?).flatMap(Decision.init(rawValue:)), default: 0] += row[1] as Int
            }
            return counts
        }
    }

    public func save(_ checkpoint: RunCheckpoint) async throws {
        try await commits.write { db in try Self.apply(checkpoint, db) }
    }

    /// Upserts step records and inserts new deliveries of one run. `storedEvent` is the run's event
    /// when it is stored in the same transaction: a delivery whose body is its text refers to it.
    /// Steps in `existingSteps` are known to be stored: a plain UPDATE (one b-tree seek where the
    /// upsert's insert attempt makes two), with the same rules as the upsert's.
    static func write(steps: [StepRecord], deliveries: [Delivery], run: RunID,
                      storedEvent: (id: EventID, text: String)? = nil, existingSteps: [StepRecord] = [], _ db: Database) throws {
        for step in steps {
            if existingSteps.contains(where: { $0.id == step.id }) {
                try db.execute(
                    cached: """
                    UPDATE steps SET status = ?, attempts = ?, output = COALESCE(?, output), error = COALESCE(?, error),
                      ended_at = ?, wake_at = ?, delivery_id = COALESCE(?, delivery_id),
                      callback_connector = COALESCE(?, callback_connector), correlation = COALESCE(?, correlation)
                    WHERE run_id = ? AND step_id = ?
                    """,
                    [.text(step.status.rawValue), .integer(step.attempts), .text(step.output?.text),
                     .text(try step.error.map(Self.encode)), .integer(step.endedAt?.microseconds), .integer(step.wakeAt?.microseconds),
                     .text(step.deliveryID?.rawValue), .text(step.awaitedCallback?.connector),
                     .text(step.awaitedCallback?.correlation), .text(run.rawValue), .text(step.id)])
                if db.changesCount == 1 { continue }
            }
            // Answers from outside (a review, a delivery's result) are written into a waiting
            // step's output or error; a checkpoint that does not know them never erases them.
            try db.execute(
                cached: """
                INSERT INTO steps (run_id, step_id, parent, sequence, status, attempts, output, error, started_at, ended_at,
                  wake_at, delivery_id, callback_connector, correlation)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (run_id, step_id) DO UPDATE SET
                  status = excluded.status, attempts = excluded.attempts,
                  output = COALESCE(excluded.output, steps.output), error = COALESCE(excluded.error, steps.error),
                  ended_at = excluded.ended_at, wake_at = excluded.wake_at,
                  delivery_id = COALESCE(excluded.delivery_id, steps.delivery_id),
                  callback_connector = COALESCE(excluded.callback_connector, steps.callback_connector),
                  correlation = COALESCE(excluded.correlation, steps.correlation)
                """,
                [.text(run.rawValue), .text(step.id), .text(step.parent), .integer(step.sequence), .text(step.status.rawValue),
                 .integer(step.attempts), .text(step.output?.text), .text(try step.error.map(Self.encode)),
                 .integer(step.startedAt.microseconds), .integer(step.endedAt?.microseconds), .integer(step.wakeAt?.microseconds),
                 .text(step.deliveryID?.rawValue), .text(step.awaitedCallback?.connector), .text(step.awaitedCallback?.correlation)])
        }
        for delivery in deliveries { try insert(delivery, db, storedEvent: storedEvent) }
    }

    public func claimRuns(at now: Date, limit: Int, lease: Lease) async throws -> [RunID] {
        let free = "(lease_expires_at IS NULL OR lease_expires_at < ?)"
        // The scheduler polls several times a second: with nothing to claim, a read answers
        // without taking the writer.
        let any = try await pool.read { db in
            try Int.fetchOne(db, sql: """
                SELECT 1 FROM runs INDEXED BY runs_waking WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= ?
                  AND \(free)
                UNION ALL SELECT 1 FROM runs INDEXED BY runs_by_status WHERE status IN ('pending', 'running') AND \(free)
                LIMIT 1
                """, arguments: [now.microseconds, now.microseconds, now.microseconds]) != nil
        }
        guard any else { return [] }
        return try await commits.write { db in
            let claimed = try String.fetchAll(db, sql: """
                UPDATE runs SET lease_owner = ?, lease_expires_at = ? WHERE id IN (
                  SELECT id FROM runs INDEXED BY runs_waking WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= ?
                    AND \(free) ORDER BY wake_at LIMIT ?)
                RETURNING id
                """, arguments: [lease.owner.rawValue, lease.expiresAt.microseconds, now.microseconds, now.microseconds, limit])
            let unfinished = try String.fetchAll(db, sql: """
                UPDATE runs SET lease_owner = ?, lease_expires_at = ? WHERE id IN (
                  SELECT id FROM runs INDEXED BY runs_by_status WHERE status IN ('pending', 'running') AND \(free)
                  ORDER BY id LIMIT ?)
                RETURNING id
                """, arguments: [lease.owner.rawValue, lease.expiresAt.microseconds, now.microseconds, max(0, limit - claimed.count)])
            return (claimed + unfinished).map(RunID.init)
        }
    }

    public func answer(_ change: StepChange, followUps: [Delivery], audit: AuditEntry?) async throws -> WaitResolution {
        try await commits.write { db in
            guard try Int.fetchOne(db, sql: "SELECT 1 FROM runs WHERE id = ?", arguments: [change.runID.rawValue]) != nil else {
                return .runNotFound
            }
            guard try Self.write(change, db) else { return .stepNotWaiting }
            try Self.wake(change.runID, Date(), db)
            for delivery in followUps { try Self.insert(delivery, db) }
            if let audit { try Self.insert(audit, db) }
            return .resolved
        }
    }

    public func enqueue(_ deliveries: [Delivery]) async throws {
        try await commits.write { db in
            for delivery in deliveries { try Self.insert(delivery, db) }
        }
    }

    /// Makes a waiting run due now, and free for any instance to claim, so that a scheduler
    /// advances it, after an answer from outside was written into one of its steps.
    ///
    /// The run's version moves too: every write to a run's steps does, so that a checkpoint made
    /// from the run as it was before (``apply(_:_:)`` compares versions) is refused rather than
    /// committed over an answer it never saw.
    static func wake(_ run: RunID, _ now: Date, _ db: Database) throws {
        try db.cached(sql: """
            UPDATE runs SET wake_at = CASE WHEN status IN ('waiting', 'running') THEN ? ELSE wake_at END, version = version + 1,
              lease_owner = NULL, lease_expires_at = NULL
            WHERE id = ?
            """, arguments: [now.microseconds, run.rawValue])
    }

    /// Moves a run's version after a write to its steps that does not wake it.
    static func touch(_ run: RunID, _ db: Database) throws {
        try db.cached(sql: "UPDATE runs SET version = version + 1 WHERE id = ?", arguments: [run.rawValue])
    }

    // MARK: Lists

    public func putList(_ list: ListRecord, audit: AuditEntry?) async throws {
        try await commits.write { db in
            if let audit { try Self.insert(audit, db) }
            try db.cached(sql: "DELETE FROM list_items WHERE list_name = ?", arguments: [list.name])
            try db.cached(
                sql: """
                INSERT INTO lists (name, kind, revision) VALUES (?, ?, (SELECT COALESCE(MAX(revision), 0) + 1 FROM lists))
                ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, revision = excluded.revision
                """, arguments: [list.name, list.kind.rawValue])
            for item in list.items {
                try db.cached(sql: "INSERT OR IGNORE INTO list_items (list_name, item) VALUES (?, ?)", arguments: [list.name, item])
            }
        }
    }

    public func addListItems(_ name: String, items: [String], audit: AuditEntry?) async throws -> Bool {
        try await commits.write { db in
            try db.cached(sql: "UPDATE lists SET revision = (SELECT MAX(revision) + 1 FROM lists) WHERE name = ?", arguments: [name])
            guard db.changesCount == 1 else { return false }
            if let audit { try Self.insert(audit, db) }
            for item in items {
                try db.cached(sql: "INSERT OR IGNORE INTO list_items (list_name, item) VALUES (?, ?)", arguments: [name, item])
            }
            return true
        }
    }

    public func removeListItem(_ name: String, item: String, audit: AuditEntry?) async throws -> Bool {
        try await commits.write { db in
            try db.cached(sql: "DELETE FROM list_items WHERE list_name = ? AND item = ?", arguments: [name, item])
            guard db.changesCount == 1 else { return false }
            if let audit { try Self.insert(audit, db) }
            try db.cached(sql: "UPDATE lists SET revision = (SELECT MAX(revision) + 1 FROM lists) WHERE name = ?", arguments: [name])
            return true
        }
    }

    public func deleteList(_ name: String, audit: AuditEntry?) async throws -> Bool {
        try await commits.write { db in
            try db.cached(sql: "DELETE FROM lists WHERE name = ?", arguments: [name])
            let deleted = db.changesCount == 1
            if deleted, let audit { try Self.insert(audit, db) }
            // Count deletions, so that listsRevision() changes even when the newest list went.
            try db.cached(sql: "UPDATE meta SET value = value + 1 WHERE key = 'lists_deleted'")
            return deleted
        }
    }

    public func list(_ name: String) async throws -> ListRecord? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM lists WHERE name = ?", arguments: [name]) else { return nil }
            return try Self.list(from: row, db)
        }
    }

    public func lists() async throws -> [ListRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM lists ORDER BY name").map { try Self.list(from: $0, db) }
        }
    }

    public func listsRevision() async throws -> Int64 {
        try await pool.read { db in
            let revision = try Int64.fetchOne(db, sql: "SELECT COALESCE(MAX(revision), 0) FROM lists") ?? 0
            let deletions = try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'lists_deleted'") ?? 0
            return revision &* 1_000_003 &+ deletions
        }
    }

    // MARK: API keys

    public func createAPIKey(_ key: APIKeyRecord, audit: AuditEntry?) async throws {
        try await commits.write { db in
            if try Int.fetchOne(db, sql: "SELECT 1 FROM api_keys WHERE name = ? AND revoked_at IS NULL", arguments: [key.name]) != nil {
                throw StoreError.duplicate("an active API key named '\(key.name)' already exists")
            }
            try db.cached(sql: "DELETE FROM api_keys WHERE name = ?", arguments: [key.name])
            try db.cached(sql: "INSERT INTO api_keys (name, hash, scopes, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [key.name, key.hash, Self.encode(key.scopes), key.createdAt.microseconds,
                                       key.expiresAt?.microseconds])
            if let audit { try Self.insert(audit, db) }
        }
    }

    public func apiKeys() async throws -> [APIKeyRecord] {
        try await pool.read { db in try Row.fetchAll(db, sql: "SELECT * FROM api_keys ORDER BY name").map(Self.apiKey(from:)) }
    }

    public func revokeAPIKey(named name: String, audit: AuditEntry?) async throws -> Bool {
        try await commits.write { db in
            try db.cached(sql: "UPDATE api_keys SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                           arguments: [Date().microseconds, name])
            guard db.changesCount == 1 else { return false }
            if let audit { try Self.insert(audit, db) }
            return true
        }
    }

    public func apiKey(hash: String) async throws -> APIKeyRecord? {
        try await pool.read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM api_keys WHERE hash = ?", arguments: [hash]).map(Self.apiKey(from:))
        }
    }
}
