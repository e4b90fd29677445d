import CEL
import Foundation
import GRDB

/// Row mapping of ``SQLiteStore``: rows to records and back, and checkpoints applied.
extension SQLiteStore {
    /// Writes a checkpoint if the run is still at the version it was made from.
    static func apply(_ checkpoint: RunCheckpoint, _ db: Database) throws {
        guard try updateIfCurrent(checkpoint.run, db) else {
            throw StoreError.conflict("run \(checkpoint.run.id) changed since version \(checkpoint.run.version)")
        }
        try write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id, db)
        try writeEffects(of: checkpoint, db)
    }

    /// What a checkpoint does beyond its run: list changes, the runs its steps started, and its
    /// parent step's answer when it ends a run its parent waits for.
    static func writeEffects(of checkpoint: RunCheckpoint, _ db: Database) throws {
        try write(listChanges: checkpoint.listChanges, db)
        for child in checkpoint.newRuns { try insert(child, db) }
        if let change = checkpoint.parentChange { try record(change, at: checkpoint.run.updatedAt, db) }
    }

    /// Adds and removes the items a checkpoint's list steps decided, each with its audit entry; a
    /// list deleted since the step looked at it is left deleted.
    static func write(listChanges: [ListChange], _ db: Database) throws {
        for change in listChanges {
            try db.cached(sql: "UPDATE lists SET revision = (SELECT MAX(revision) + 1 FROM lists) WHERE name = ?", arguments: [change.list])
            guard db.changesCount == 1 else { continue }
            for item in change.items {
                switch change.operation {
                case .add:
                    try db.cached(sql: "INSERT OR IGNORE INTO list_items (list_name, item) VALUES (?, ?)", arguments: [change.list, item])
                case .remove:
                    try db.cached(sql: "DELETE FROM list_items WHERE list_name = ? AND item = ?", arguments: [change.list, item])
                }
            }
            try insert(change.audit, db)
        }
    }

    /// Writes a run's row and moves its version, if the store still has it at `run.version`;
    /// false, and nothing written, if not.
    static func updateIfCurrent(_ run: RunRecord, _ db: Database) throws -> Bool {
        try db.execute(
            cached: """
            UPDATE runs SET status = ?, decision = ?, tags = ?, error = ?, updated_at = ?, wake_at = ?, version = version + 1,
              lease_owner = NULL, lease_expires_at = NULL, output = ?
            WHERE id = ? AND version = ?
            """,
            [.text(run.status.rawValue), .text(run.decision?.rawValue), .text(encode(run.tags)), .text(try run.error.map(encode)),
             .integer(run.updatedAt.microseconds), .integer(run.wakeAt?.microseconds), .text(run.output?.text), .text(run.id.rawValue),
             .integer(run.version)])
        return db.changesCount == 1
    }

    /// The run as the store holds it once `checkpoint` committed over `base` (nil: the checkpoint
    /// of a new run, inserted by ``insert(_:_:eventStored:)``): in memory, what ``apply(_:_:)`` and
    /// ``write(steps:deliveries:run:_:)`` write, for ``RecentRuns``. Keep the three in step. Dates
    /// are kept to the microsecond, as the store keeps them; debug builds compare the result with
    /// the store's (``commitAttempt(_:checkpoint:)``).
    static func stored(_ checkpoint: RunCheckpoint, over base: RunSnapshot?) -> RunSnapshot {
        var run: RunRecord
        var steps: [String: StepRecord] = [:]
        if let base {
            run = base.run
            run.status = checkpoint.run.status
            run.decision = checkpoint.run.decision
            run.tags = checkpoint.run.tags
            run.error = checkpoint.run.error
            run.updatedAt = checkpoint.run.updatedAt.storedPrecision
            run.wakeAt = checkpoint.run.wakeAt?.storedPrecision
            run.output = checkpoint.run.output
            run.version = checkpoint.run.version + 1
            for step in base.steps { steps[step.id] = step }
        } else {
            run = checkpoint.run
            run.createdAt = run.createdAt.storedPrecision
            run.updatedAt = run.updatedAt.storedPrecision
            run.wakeAt = run.wakeAt?.storedPrecision
            run.version = 0
            run.searchTerms = []  // kept in their own table, not read back with the run
        }
        for new in checkpoint.steps {
            var step = new
            step.startedAt = step.startedAt.storedPrecision
            step.endedAt = step.endedAt?.storedPrecision
            step.wakeAt = step.wakeAt?.storedPrecision
            if let old = steps[new.id] {
                // The upsert's ON CONFLICT branch: these columns keep what the row had.
                step.parent = old.parent
                step.sequence = old.sequence
                step.startedAt = old.startedAt
                step.output = step.output ?? old.output
                step.error = step.error ?? old.error
                step.deliveryID = step.deliveryID ?? old.deliveryID
                step.awaitedCallback = step.awaitedCallback ?? old.awaitedCallback
            }
            steps[new.id] = step
        }
        return RunSnapshot(run: run, steps: steps.values.sorted { ($0.sequence, $0.id) < ($1.sequence, $1.id) })
    }

    /// A run and its steps. Its event comes from `events` when it is there, and is read and
    /// remembered otherwise.
    static func snapshot(_ id: RunID, _ db: Database, events: RecentEvents) throws -> RunSnapshot? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: "SELECT \(RunColumn.list) FROM runs WHERE id = ?"),
                                         arguments: [id.rawValue]) else { return nil }
        var run = try run(from: row)
        if run.event == nil, let eventID = row[RunColumn.eventID.rawValue] as String? {
            if let remembered = events.event(eventID) {
                run.event = remembered.payload
                run.eventText = remembered.text
            } else if let text = try String.fetchOne(try db.cachedStatement(sql: "SELECT payload FROM events WHERE id = ?"),
                                                     arguments: [eventID]) {
                let payload = try JSON.parse(Data(text.utf8))
                events.remember(EventID(eventID), payload, text: text)
                run.event = payload
                run.eventText = text
            }
        }
        let steps = try Row.fetchAll(
            try db.cachedStatement(sql: "SELECT \(StepColumn.list) FROM steps WHERE run_id = ? ORDER BY sequence, step_id"),
            arguments: [id.rawValue])
        return RunSnapshot(run: run, steps: try steps.map(step(from:)))
    }

    /// Inserts a run. A run whose event is in the events table refers to it (`event_id`) instead
    /// of keeping a copy, which halves what ingest writes.
    static func insert(_ run: RunRecord, _ db: Database, eventStored: Bool = false) throws {
        try db.execute(
            cached: """
            INSERT INTO runs (id, workflow, status, decision, tags, trigger, event, event_id, input, error, created_at,
              updated_at, wake_at, workflow_version, output)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.text(run.id.rawValue), .text(run.workflow), .text(run.status.rawValue), .text(run.decision?.rawValue),
             .text(encode(run.tags)), .text(encode(run.trigger)), .text(eventStored ? nil : run.event?.text),
             .text(eventStored ? run.trigger.eventID?.rawValue : nil), .text(run.input?.text), .text(try run.error.map(encode)),
             .integer(run.createdAt.microseconds), .integer(run.updatedAt.microseconds), .integer(run.wakeAt?.microseconds),
             .integer(run.workflowVersion.map(Int64.init)), .text(run.output?.text)])
        for term in run.searchTerms {
            try db.execute(cached: "INSERT OR IGNORE INTO run_search_terms (term, run_id) VALUES (?, ?)",
                           [.text(term), .text(run.id.rawValue)])
        }
    }

    // Rows are read by position, from explicit column lists: GRDB's lookup by name lowercases
    // the name on every access, which cost about 2 % of the gateway's CPU on the forward path.

    /// The columns of a run, in the order ``run(from:)`` reads them.
    enum RunColumn: Int, CaseIterable {
        case id, workflow, status, decision, tags, trigger, event, input, error, createdAt, updatedAt, wakeAt, version, eventID,
             workflowVersion, output
        static let list = "id, workflow, status, decision, tags, trigger, event, input, error, created_at, updated_at, wake_at, "
            + "version, event_id, workflow_version, output"
    }

    /// A run from a row of ``RunColumn/list``; its `event` is the run's own copy, if it has one.
    static func run(from row: Row) throws -> RunRecord {
        typealias C = RunColumn
        guard let status = RunStatus(rawValue: row[C.status.rawValue]) else { throw StoreError.corrupt("unknown run status") }
        return RunRecord(
            id: RunID(row[C.id.rawValue] as String), workflow: row[C.workflow.rawValue], status: status,
            decision: (row[C.decision.rawValue] as String?).flatMap(Decision.init(rawValue:)),
            tags: try strings(row[C.tags.rawValue]),
            trigger: try trigger(row[C.trigger.rawValue]),
            event: try json(row[C.event.rawValue]), input: try json(row[C.input.rawValue]),
            error: try decode(StepError.self, row[C.error.rawValue]),
            createdAt: Date(microseconds: row[C.createdAt.rawValue]), updatedAt: Date(microseconds: row[C.updatedAt.rawValue]),
            wakeAt: (row[C.wakeAt.rawValue] as Int64?).map(Date.init(microseconds:)), version: row[C.version.rawValue] ?? 0,
            workflowVersion: row[C.workflowVersion.rawValue], output: try json(row[C.output.rawValue]))
    }

    /// The columns of a step, in the order ``step(from:)`` reads them.
    enum StepColumn: Int, CaseIterable {
        case stepID, parent, sequence, status, attempts, output, error, startedAt, endedAt, wakeAt, deliveryID,
             callbackConnector, correlation
        static let list = "step_id, parent, sequence, status, attempts, output, error, started_at, ended_at, wake_at, "
            + "delivery_id, callback_connector, correlation"
    }

    static func step(from row: Row) throws -> StepRecord {
        typealias C = StepColumn
        guard let status = StepStatus(rawValue: row[C.status.rawValue]) else { throw StoreError.corrupt("unknown step status") }
        return StepRecord(
            id: row[C.stepID.rawValue], parent: row[C.parent.rawValue], sequence: row[C.sequence.rawValue], status: status,
            attempts: row[C.attempts.rawValue],
            output: try json(row[C.output.rawValue]), error: try decode(StepError.self, row[C.error.rawValue]),
            startedAt: Date(microseconds: row[C.startedAt.rawValue]),
            endedAt: (row[C.endedAt.rawValue] as Int64?).map(Date.init(microseconds:)),
            wakeAt: (row[C.wakeAt.rawValue] as Int64?).map(Date.init(microseconds:)),
            deliveryID: (row[C.deliveryID.rawValue] as String?).map(DeliveryID.init),
            awaitedCallback: (row[C.callbackConnector.rawValue] as String?).flatMap { connector in
                (row[C.correlation.rawValue] as String?).map { CallbackKey(connector: connector, correlation: $0) }
            })
    }

    /// Inserts a delivery. A body that is the text of `storedEvent` (`body: = event` forwards the
    /// event as it arrived) is not stored a second time: the row names the event (`body_event`)
    /// and reads its payload back as the body (``DeliveryColumn/list``).
    static func insert(_ delivery: Delivery, _ db: Database, storedEvent: (id: EventID, text: String)? = nil) throws {
        // Usually the very same string, which == recognises without reading the bytes.
        let bodyEvent = storedEvent.flatMap { event in delivery.request.body == event.text ? event.id : nil }
        try db.execute(
            cached: """
            INSERT INTO deliveries (id, run_id, step_id, connector, operation, status, request, body, body_event, retry,
              attempt_count, next_attempt_at, manual, last_error, detached, created_at, updated_at, lease_owner, lease_expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.text(delivery.id.rawValue), .text(delivery.runID.rawValue), .text(delivery.stepID), .text(delivery.connector),
             .text(delivery.operation), .text(delivery.status.rawValue), .text(encodeWithoutBody(delivery.request)),
             .text(bodyEvent == nil ? delivery.request.body : nil), .text(bodyEvent?.rawValue),
             .text(try delivery.retry.map(encode)), .integer(delivery.attemptCount),
             .integer(delivery.nextAttemptAt?.microseconds), .bool(delivery.manual), .text(try delivery.lastError.map(encode)),
             .bool(delivery.detached), .integer(delivery.createdAt.microseconds), .integer(delivery.updatedAt.microseconds),
             .text(delivery.lease?.owner.rawValue), .integer(delivery.lease?.expiresAt.microseconds)])
    }

    /// The columns of a delivery, in the order ``delivery(from:)`` reads them; its request last,
    /// so that the writer's hot paths, which settle a delivery without reading what it sent, can
    /// leave it out (``DeliveryColumn/listWithoutRequest``).
    enum DeliveryColumn: Int, CaseIterable {
        case id, runID, stepID, connector, operation, status, retry, attemptCount, nextAttemptAt, manual, lastError, detached,
             createdAt, updatedAt, leaseOwner, leaseExpiresAt, request, body
        static let listWithoutRequest = "id, run_id, step_id, connector, operation, status, retry, attempt_count, "
            + "next_attempt_at, manual, last_error, detached, created_at, updated_at, lease_owner, lease_expires_at"
        /// The body is the row's own or, when the row names its event (`body_event`), the event's payload.
        static let list = listWithoutRequest
            + ", request, COALESCE(body, (SELECT payload FROM events WHERE events.id = deliveries.body_event)) AS body"
    }

    /// A delivery from a row of ``DeliveryColumn/list``.
    static func delivery(from row: Row) throws -> Delivery {
        try delivery(from: row, request: try request(row[DeliveryColumn.request.rawValue], body: row[DeliveryColumn.body.rawValue]))
    }

    /// A delivery read without its request (``DeliveryColumn/listWithoutRequest``): its `request` is empty.
    static func deliveryWithoutRequest(from row: Row) throws -> Delivery {
        try delivery(from: row, request: OutboundRequest(method: "", url: ""))
    }

    private static func delivery(from row: Row, request: OutboundRequest) throws -> Delivery {
        typealias C = DeliveryColumn
        guard let status = DeliveryStatus(rawValue: row[C.status.rawValue]) else {
            throw StoreError.corrupt("unknown delivery status")
        }
        return Delivery(
            id: DeliveryID(row[C.id.rawValue] as String), runID: RunID(row[C.runID.rawValue] as String),
            stepID: row[C.stepID.rawValue], connector: row[C.connector.rawValue], operation: row[C.operation.rawValue],
            status: status, request: request,
            retry: try decode(RetrySettings.self, row[C.retry.rawValue]), attemptCount: row[C.attemptCount.rawValue],
            nextAttemptAt: (row[C.nextAttemptAt.rawValue] as Int64?).map(Date.init(microseconds:)), manual: row[C.manual.rawValue],
            lastError: try decode(StepError.self, row[C.lastError.rawValue]), detached: row[C.detached.rawValue] ?? false,
            createdAt: Date(microseconds: row[C.createdAt.rawValue]),
            updatedAt: Date(microseconds: row[C.updatedAt.rawValue]),
            lease: (row[C.leaseOwner.rawValue] as String?).map { owner in
                Lease(owner: InstanceID(owner), expiresAt: Date(microseconds: row[C.leaseExpiresAt.rawValue] ?? 0))
            })
    }

    static func attempt(from row: Row) throws -> DeliveryAttempt {
        DeliveryAttempt(
            deliveryID: DeliveryID(row["delivery_id"] as String), number: row["number"],
            trigger: DeliveryAttempt.Trigger(rawValue: row["trigger"]) ?? .scheduled, startedAt: Date(microseconds: row["started_at"]),
            durationMilliseconds: row["duration_ms"], requestText: row["request"] ?? "null", responseText: row["response"],
            errorClass: row["error_class"], errorMessage: row["error_message"])
    }

    static func event(from row: Row) throws -> EventRecord {
        EventRecord(
            id: EventID(row["id"] as String), dedupeKey: row["dedupe_key"], type: row["type"], source: row["source"],
            payload: try json(row["payload"]) ?? .null, receivedAt: Date(microseconds: row["received_at"]),
            runs: try decode([RunReference].self, row["runs"]) ?? [])
    }

    static func list(from row: Row, _ db: Database) throws -> ListRecord {
        let name: String = row["name"]
        let items = try String.fetchAll(db, sql: "SELECT item FROM list_items WHERE list_name = ? ORDER BY rowid", arguments: [name])
        return ListRecord(name: name, kind: ListKind(rawValue: row["kind"]) ?? .string, items: items, revision: row["revision"])
    }

    static func apiKey(from row: Row) throws -> APIKeyRecord {
        APIKeyRecord(name: row["name"], hash: row["hash"], scopes: try decode([String].self, row["scopes"]) ?? [],
                     createdAt: Date(microseconds: row["created_at"]),
                     revokedAt: (row["revoked_at"] as Int64?).map(Date.init(microseconds:)),
                     expiresAt: (row["expires_at"] as Int64?).map(Date.init(microseconds:)))
    }
}

extension Database {
    /// Executes a statement from GRDB's per-connection cache: the SQL is compiled once, not per call.
    func cached(sql: String, arguments: StatementArguments = StatementArguments()) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}

/// The WHERE clause of a list query, from the filters that are set.
struct SQLFilter {
    private var clauses: [String] = []
    private(set) var arguments: StatementArguments = []

    mutating func add(_ clause: String, _ value: (some DatabaseValueConvertible)?) {
        guard let value else { return }
        clauses.append(clause)
        arguments += [value]
    }

    /// A clause with no value of its own (one that names a partial index's condition).
    mutating func add(_ clause: String) {
        clauses.append(clause)
    }

    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}
