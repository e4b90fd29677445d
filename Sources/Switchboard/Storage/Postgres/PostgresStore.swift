import CEL
import Foundation
import Logging
import PostgresNIO
import Synchronization

/// The shared store: PostgreSQL through PostgresNIO, for several instances working on one database.
///
/// Each write is one transaction on a pooled connection; claims take rows with
/// `FOR UPDATE SKIP LOCKED`, so that instances claiming at once take different rows; event
/// deduplication and callback replay protection rest on unique keys. The client's connections live
/// while ``run()`` runs: ``DatabaseURL/withStore(logger:_:)`` runs it around the store's use.
///
/// ```swift
/// try await DatabaseURL("postgres://switchboard@127.0.0.1:5432/switchboard").withStore(logger: logger) { store in
///     try await store.ping()
/// }
/// ```
public final class PostgresStore: Store {
    let client: PostgresClient
    let logger: Logger
    /// Whether the last operation reached the database (``bounded(within:_:)``).
    let reachable = Atomic(true)
    /// When this store last told other instances of work (``hintWork(on:)``), in uptime nanoseconds.
    let lastHint = Atomic<UInt64>(0)
    /// The slot sets (name and size) this process made sure exist (``takeSlot(_:limit:holder:hold:)``).
    let slotsMade = Mutex<Set<String>>([])

    /// - Parameters:
    ///   - settings: where the database is and how to reach it.
    ///   - logger: for the client's background messages (connections made and lost).
    public init(settings: PostgresSettings, logger: Logger) {
        client = PostgresClient(configuration: settings.clientConfiguration, backgroundLogger: logger)
        self.logger = logger
    }

    /// Keeps the client's connection pool: run it, in a task of its own, while the store is used.
    public func run() async {
        await client.run()
    }

    public func ping() async throws {
        _ = try await bounded(within: Self.outageDeadline) { [client, logger] in
            try await client.query("SELECT 1", logger: logger).collect()
        }
    }

    /// How long an operation may wait for the database before it fails with
    /// ``StoreError/unavailable(_:)``. The pool waits for a connection for as long as the server is
    /// down, so every operation has a deadline: a generous one while the database answers (a
    /// busy pool queues requests), and 5 s once an operation found it unreachable, until one
    /// succeeds again (the heartbeat and `/ready` find out within seconds).
    static let deadline: Duration = .seconds(30)
    static let outageDeadline: Duration = .seconds(5)

    /// Runs `body` in one transaction; an error `body` throws comes out as it is (and rolls back).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await bounded { [client, logger] in
            do {
                return try await client.withTransaction(logger: logger) { connection in try await body(connection) }
            } catch let error as PostgresTransactionError {
                // The error that stopped it: the closure's, or the database's on BEGIN or COMMIT
                // (a lost connection comes out as what it is).
                if let thrown = error.closureError, error.beginError == nil { throw thrown }
                if let thrown = error.beginError ?? error.commitError, thrown is PSQLError { throw thrown }
                throw error
            }
        }
    }

    /// The rows a query answers (all of them, read before returning); on `connection`, inside its
    /// transaction's deadline.
    @discardableResult
    func rows(_ query: PostgresQuery, on connection: PostgresConnection? = nil) async throws -> [PostgresRow] {
        if let connection { return try await connection.query(query, logger: logger).collect() }
        return try await bounded { [client, logger] in try await client.query(query, logger: logger).collect() }
    }

    /// A small statement that must answer quickly (a heartbeat): given ``outageDeadline``, so that
    /// an instance finds out within seconds that the database went away.
    func quick(_ query: PostgresQuery) async throws {
        _ = try await bounded(within: Self.outageDeadline) { [client, logger] in try await client.query(query, logger: logger).collect() }
    }

    /// `operation`, given at most ``deadline``; a database that cannot be reached (no answer in
    /// time, or a connection that failed) is ``StoreError/unavailable(_:)``.
    func bounded<T: Sendable>(within limit: Duration? = nil,
                              _ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        let limit = limit ?? (reachable.load(ordering: .relaxed) ? Self.deadline : Self.outageDeadline)
        let started = ContinuousClock.now
        do {
            let result = try await Deadline.race(operation) { [self] in
                // An operation that started while the database answered waits no longer than
                // ``outageDeadline`` once another found it gone.
                while true {
                    let waited = ContinuousClock.now - started
                    if waited >= limit || (waited >= Self.outageDeadline && !reachable.load(ordering: .relaxed)) { break }
                    try await Sleep.for(min(.seconds(1), limit - waited))
                }
                return StoreError.unavailable("the database did not answer within \(ContinuousClock.now - started)")
            }
            reachable.store(true, ordering: .relaxed)
            return result
        } catch let error as StoreError where error.code == .unavailable {
            reachable.store(false, ordering: .relaxed)
            throw error
        } catch let error as PSQLError where error.meansUnreachable {
            reachable.store(false, ordering: .relaxed)
            throw StoreError.unavailable("the database cannot be reached (\(error.serverInfo?[.message] ?? "\(error.code)"))")
        }
    }

    // MARK: Events and runs

    /// An event's signed request was received before.
    private struct ReceiptReplayed: Error {}

    public func ingest(_ event: EventRecord, runs: [RunCheckpoint]) async throws -> IngestOutcome {
        let payload = event.payloadText ?? event.payload.text
        let references = Self.encode(event.runs)
        do {
            return try await transaction { [self] connection in
                if let receipt = event.receipt {
                    if let messageID = receipt.messageID, try await !rows("""
                        SELECT 1 FROM callbacks WHERE connector = \(receipt.connector) AND message_id = \(messageID)
                          AND status = 'accepted'
                        """, on: connection).isEmpty
                    {
                        throw ReceiptReplayed()
                    }
                    try await insert(receipt, on: connection)
                }
                let inserted = try await rows("""
                    INSERT INTO events (id, dedupe_key, type, source, payload, received_at, runs)
                    VALUES (\(event.id.rawValue), \(event.dedupeKey), \(event.type), \(event.source), \(payload),
                            \(event.receivedAt.microseconds), \(references))
                    ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
                    """, on: connection)
                if inserted.isEmpty {
                    let existing = try await rows("SELECT * FROM events WHERE dedupe_key = \(event.dedupeKey)", on: connection)
                    if let row = existing.first { return .duplicate(try Self.event(from: row)) }
                }
                for checkpoint in runs {
                    let refers = checkpoint.run.trigger.eventID == event.id
                    try await insert(checkpoint.run, eventStored: refers, on: connection)
                    try await write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id,
                                    storedEvent: refers ? (event.id, payload) : nil, on: connection)
                    try await writeEffects(of: checkpoint, on: connection)
                }
                return .accepted
            }
        } catch is ReceiptReplayed {
            if let receipt = event.receipt { try await recordCallback(receipt.replay) }
            return .replayed
        } catch let error as PSQLError where error.isUniqueViolation && error.serverInfo?[.constraintName] == "callbacks_taken" {
            // The same signed request taken by another instance at the same moment.
            if let receipt = event.receipt { try await recordCallback(receipt.replay) }
            return .replayed
        } catch let error as PSQLError where error.isUniqueViolation {
            // Another instance stored the same event between our insert and its commit.
            let existing = try await rows("SELECT * FROM events WHERE dedupe_key = \(event.dedupeKey)")
            guard let row = existing.first else { throw error }
            return .duplicate(try Self.event(from: row))
        }
    }

    public func createRuns(_ runs: [RunCheckpoint]) async throws {
        try await transaction { [self] connection in
            for checkpoint in runs {
                try await insert(checkpoint.run, on: connection)
                try await write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id, on: connection)
                try await writeEffects(of: checkpoint, on: connection)
            }
        }
    }

    public func loadRun(_ id: RunID, allowStale: Bool) async throws -> RunSnapshot? {
        try await snapshot(id, on: nil)
    }

    public func loadRuns(_ ids: [RunID]) async throws -> [RunSnapshot] {
        try await snapshots(ids)
    }

    public func listRuns(_ query: RunQuery) async throws -> [RunRecord] {
        var filter = PostgresFilter()
        // A search reads its term's runs newest first, in the terms' key order, and stops at the limit.
        filter.add("t.term", query.searchTerm)
        filter.add("workflow", query.workflow)
        filter.add("status", query.status?.rawValue)
        filter.add("decision", query.decision?.rawValue)
        // Ids are time-ordered: a time filter is a range of the primary key.
        filter.add("id", query.since.map { RunID.lowerBound(at: $0).rawValue }, op: ">=")
        filter.add("id", query.until.map { RunID.lowerBound(at: $0).rawValue }, op: "<")
        filter.add("id", query.before?.rawValue, op: "<")
        filter.add("id", query.after?.rawValue, op: ">")
        // An event lists the runs it started.
        filter.add(clause: "id IN (SELECT r ->> 'id' FROM events, jsonb_array_elements(events.runs::jsonb) AS r WHERE events.id = $?)",
                   query.eventID?.rawValue)
        let from = query.searchTerm == nil ? "runs" : "run_search_terms AS t JOIN runs ON runs.id = t.run_id"
        let order = query.searchTerm == nil ? "id" : "t.run_id"
        return try await rows(filter.query("SELECT \(Self.runColumns) FROM \(from)", order: "ORDER BY \(order) \(query.oldestFirst ? "ASC" : "DESC")",
                                           limit: query.limit))
            .map(Self.run(from:))
    }

    public func finishedRunCounts(workflow: String, since: Date) async throws -> [Decision?: Int] {
        var counts: [Decision?: Int] = [:]
        for row in try await rows("""
            SELECT decision, COUNT(*) FROM runs
            WHERE workflow = \(workflow) AND id >= \(RunID.lowerBound(at: since).rawValue)
              AND status IN ('completed', 'failed', 'cancelled') GROUP BY decision
            """)
        {
            let (decision, count) = try row.decode((String?, Int64).self)
            counts[decision.flatMap(Decision.init(rawValue:)), default: 0] += Int(count)
        }
        return counts
    }

    public func save(_ checkpoint: RunCheckpoint) async throws {
        try await transaction { [self] connection in
            guard try await updateIfCurrent(checkpoint.run, on: connection) else {
                throw StoreError.conflict("run \(checkpoint.run.id) changed since version \(checkpoint.run.version)")
            }
            try await write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id, on: connection)
            try await writeEffects(of: checkpoint, on: connection)
        }
    }

    public func claimRuns(at now: Date, limit: Int, lease: Lease) async throws -> [RunID] {
        let now = now.microseconds
        return try await transaction { [self] connection in
            let due = try await rows("""
                UPDATE runs SET lease_owner = \(lease.owner.rawValue), lease_expires_at = \(lease.expiresAt.microseconds)
                WHERE id IN (SELECT id FROM runs WHERE status = 'waiting' AND wake_at IS NOT NULL AND wake_at <= \(now)
                               AND (lease_expires_at IS NULL OR lease_expires_at < \(now))
                             ORDER BY wake_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
                RETURNING id
                """, on: connection)
            let unfinished = try await rows("""
                UPDATE runs SET lease_owner = \(lease.owner.rawValue), lease_expires_at = \(lease.expiresAt.microseconds)
                WHERE id IN (SELECT id FROM runs WHERE status IN ('pending', 'running')
                               AND (lease_expires_at IS NULL OR lease_expires_at < \(now))
                             ORDER BY id LIMIT \(max(0, limit - due.count)) FOR UPDATE SKIP LOCKED)
                RETURNING id
                """, on: connection)
            return try (due + unfinished).map { RunID(try $0.decode(String.self)) }
        }
    }

    public func answer(_ change: StepChange, followUps: [Delivery], audit: AuditEntry?) async throws -> WaitResolution {
        try await transaction { [self] connection in
            guard try await !rows("SELECT 1 FROM runs WHERE id = \(change.runID.rawValue)", on: connection).isEmpty else {
                return .runNotFound
            }
            guard try await write(change, on: connection) else { return .stepNotWaiting }
            try await wake(change.runID, Date(), on: connection)
            for delivery in followUps { try await insert(delivery, on: connection) }
            if let audit { try await insert(audit, on: connection) }
            return .resolved
        }
    }

    public func enqueue(_ deliveries: [Delivery]) async throws {
        try await transaction { [self] connection in
            for delivery in deliveries { try await insert(delivery, on: connection) }
        }
    }

    /// Makes a waiting run due now and free to claim, and moves its version (``SQLiteStore`` says why).
    func wake(_ run: RunID, _ now: Date, on connection: PostgresConnection) async throws {
        try await connection.query("""
            UPDATE runs SET wake_at = CASE WHEN status IN ('waiting', 'running') THEN \(now.microseconds) ELSE wake_at END,
              version = version + 1, lease_owner = NULL, lease_expires_at = NULL
            WHERE id = \(run.rawValue)
            """, logger: logger)
        try await hintWork(on: connection)
    }

    /// Tells the instances listening (``watchForWork(_:)``) that this transaction leaves work any of
    /// them could take: a `NOTIFY`, delivered when the transaction commits and not at all if it
    /// rolls back. At most one in 50 ms from each instance (a notification takes a database-wide
    /// lock at commit); polling finds what a skipped hint would have announced.
    func hintWork(on connection: PostgresConnection) async throws {
        let now = DispatchTime.now().uptimeNanoseconds
        let last = lastHint.load(ordering: .relaxed)
        guard now &- last >= 50_000_000, lastHint.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged else {
            return
        }
        try await connection.query("NOTIFY \(unescaped: Self.workChannel)", logger: logger)
    }

    static let workChannel = "switchboard_work"

    public func watchForWork(_ hint: @escaping @Sendable () -> Void) async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { [logger] connection in
                    try await connection.listen(on: Self.workChannel) { notifications in
                        for try await _ in notifications { hint() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("listening for work failed; listening again in a second", metadata: ["error": "\(error)"])
            }
            try? await Sleep.for(.seconds(1))
        }
    }

    /// Moves a run's version after a write to its steps that does not wake it.
    func touch(_ run: RunID, on connection: PostgresConnection) async throws {
        try await connection.query("UPDATE runs SET version = version + 1 WHERE id = \(run.rawValue)", logger: logger)
    }
}

extension PSQLError {
    /// A unique key refused the row (SQLSTATE 23505).
    var isUniqueViolation: Bool { serverInfo?[.sqlState] == "23505" }
}

extension PSQLError {
    /// No connection, or the server going away: a connection exception (SQLSTATE class 08) or an
    /// operator's intervention (class 57: shutting down, starting up, crashed).
    var meansUnreachable: Bool {
        guard let serverInfo else { return true }
        let state = serverInfo[.sqlState] ?? ""
        return state.hasPrefix("08") || state.hasPrefix("57")
    }
}
