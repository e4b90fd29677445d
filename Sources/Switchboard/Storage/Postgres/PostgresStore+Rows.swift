import CEL
import Foundation
import PostgresNIO

/// Row mapping of ``PostgresStore``: records to rows and back, checkpoints and step changes written.
extension PostgresStore {
    static let runColumns = "id, workflow, status, decision, tags, trigger, event, input, error, created_at, updated_at, wake_at, "
        + "version, event_id, workflow_version, output"
    static let stepColumns = "step_id, parent, sequence, status, attempts, output, error, started_at, ended_at, wake_at, "
        + "delivery_id, callback_connector, correlation"
    /// A delivery's body is its own or, when it names its event (`body_event`), the event's payload.
    static let deliveryColumns = "id, run_id, step_id, connector, operation, status, retry, attempt_count, next_attempt_at, "
        + "manual, last_error, detached, created_at, updated_at, lease_owner, lease_expires_at, request, "
        + "COALESCE(body, (SELECT payload FROM events WHERE events.id = deliveries.body_event)) AS body"

    func insert(_ run: RunRecord, eventStored: Bool = false, on connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO runs (id, workflow, status, decision, tags, trigger, event, event_id, input, error, created_at, updated_at,
              wake_at, workflow_version, output)
            VALUES (\(run.id.rawValue), \(run.workflow), \(run.status.rawValue), \(run.decision?.rawValue), \(Self.encode(run.tags)),
              \(Self.encode(run.trigger)), \(eventStored ? nil : run.event?.text),
              \(eventStored ? run.trigger.eventID?.rawValue : nil), \(run.input?.text), \(try run.error.map(Self.encode)),
              \(run.createdAt.microseconds), \(run.updatedAt.microseconds), \(run.wakeAt?.microseconds), \(run.workflowVersion),
              \(run.output?.text))
            """, logger: logger)
        if !run.searchTerms.isEmpty {
            try await connection.query("""
                INSERT INTO run_search_terms (term, run_id) SELECT unnest(\(run.searchTerms)::text[]), \(run.id.rawValue)
                ON CONFLICT DO NOTHING
                """, logger: logger)
        }
    }

    /// Writes a run's row, ends its lease and moves its version, if the store still has it at
    /// `run.version`; false, and nothing written, if not.
    func updateIfCurrent(_ run: RunRecord, on connection: PostgresConnection) async throws -> Bool {
        try await !rows("""
            UPDATE runs SET status = \(run.status.rawValue), decision = \(run.decision?.rawValue), tags = \(Self.encode(run.tags)),
              error = \(try run.error.map(Self.encode)), updated_at = \(run.updatedAt.microseconds),
              wake_at = \(run.wakeAt?.microseconds), version = version + 1, lease_owner = NULL, lease_expires_at = NULL,
              output = \(run.output?.text)
            WHERE id = \(run.id.rawValue) AND version = \(run.version)
            RETURNING id
            """, on: connection).isEmpty
    }

    /// What a checkpoint does beyond its run: list changes, the runs its steps started, and its
    /// parent step's answer when it ends a run its parent waits for.
    func writeEffects(of checkpoint: RunCheckpoint, on connection: PostgresConnection) async throws {
        try await write(listChanges: checkpoint.listChanges, on: connection)
        for child in checkpoint.newRuns { try await insert(child, on: connection) }
        if let change = checkpoint.parentChange { try await record(change, at: checkpoint.run.updatedAt, on: connection) }
    }

    /// Adds and removes the items a checkpoint's list steps decided, each with its audit entry; a
    /// list deleted since the step looked at it is left deleted.
    func write(listChanges: [ListChange], on connection: PostgresConnection) async throws {
        guard !listChanges.isEmpty else { return }
        try await connection.query("LOCK TABLE lists IN SHARE ROW EXCLUSIVE MODE", logger: logger)
        for change in listChanges {
            let updated = try await rows("""
                UPDATE lists SET revision = (SELECT MAX(revision) + 1 FROM lists) WHERE name = \(change.list) RETURNING name
                """, on: connection)
            guard !updated.isEmpty else { continue }
            for item in change.items {
                switch change.operation {
                case .add:
                    try await connection.query("""
                        INSERT INTO list_items (list_name, item, position)
                        VALUES (\(change.list), \(item),
                                (SELECT COALESCE(MAX(position), -1) + 1 FROM list_items WHERE list_name = \(change.list)))
                        ON CONFLICT DO NOTHING
                        """, logger: logger)
                case .remove:
                    try await connection.query("DELETE FROM list_items WHERE list_name = \(change.list) AND item = \(item)", logger: logger)
                }
            }
            try await insert(change.audit, on: connection)
        }
    }

    /// Upserts step records and inserts new deliveries of one run, with the rules of
    /// ``SQLiteStore``'s: an answer written into a step is never erased by a checkpoint that lacks it.
    func write(steps: [StepRecord], deliveries: [Delivery], run: RunID, storedEvent: (id: EventID, text: String)? = nil,
               on connection: PostgresConnection) async throws {
        for step in steps {
            try await connection.query("""
                INSERT INTO steps (run_id, step_id, parent, sequence, status, attempts, output, error, started_at, ended_at,
                  wake_at, delivery_id, callback_connector, correlation)
                VALUES (\(run.rawValue), \(step.id), \(step.parent), \(step.sequence), \(step.status.rawValue), \(step.attempts),
                  \(step.output?.text), \(try step.error.map(Self.encode)), \(step.startedAt.microseconds),
                  \(step.endedAt?.microseconds), \(step.wakeAt?.microseconds), \(step.deliveryID?.rawValue),
                  \(step.awaitedCallback?.connector), \(step.awaitedCallback?.correlation))
                ON CONFLICT (run_id, step_id) DO UPDATE SET
                  status = excluded.status, attempts = excluded.attempts,
                  output = COALESCE(excluded.output, steps.output), error = COALESCE(excluded.error, steps.error),
                  ended_at = excluded.ended_at, wake_at = excluded.wake_at,
                  delivery_id = COALESCE(excluded.delivery_id, steps.delivery_id),
                  callback_connector = COALESCE(excluded.callback_connector, steps.callback_connector),
                  correlation = COALESCE(excluded.correlation, steps.correlation)
                """, logger: logger)
        }
        for delivery in deliveries { try await insert(delivery, storedEvent: storedEvent, on: connection) }
    }

    /// Inserts a delivery; one whose body is the text of `storedEvent` names the event instead of a copy.
    func insert(_ delivery: Delivery, storedEvent: (id: EventID, text: String)? = nil, on connection: PostgresConnection) async throws {
        let bodyEvent = storedEvent.flatMap { event in delivery.request.body == event.text ? event.id : nil }
        try await connection.query("""
            INSERT INTO deliveries (id, run_id, step_id, connector, operation, status, request, body, body_event, retry,
              attempt_count, next_attempt_at, manual, last_error, detached, created_at, updated_at, lease_owner, lease_expires_at)
            VALUES (\(delivery.id.rawValue), \(delivery.runID.rawValue), \(delivery.stepID), \(delivery.connector),
              \(delivery.operation), \(delivery.status.rawValue), \(Self.encodeWithoutBody(delivery.request)),
              \(bodyEvent == nil ? delivery.request.body : nil), \(bodyEvent?.rawValue), \(try delivery.retry.map(Self.encode)),
              \(delivery.attemptCount), \(delivery.nextAttemptAt?.microseconds), \(delivery.manual),
              \(try delivery.lastError.map(Self.encode)), \(delivery.detached), \(delivery.createdAt.microseconds),
              \(delivery.updatedAt.microseconds), \(delivery.lease?.owner.rawValue), \(delivery.lease?.expiresAt.microseconds))
            """, logger: logger)
        if delivery.status == .pending && delivery.lease == nil { try await hintWork(on: connection) }
    }

    /// Writes a change into its step (when the step takes it) and moves its run's version: the run
    /// is made due when the change settles the step, for a scheduler to advance it.
    func record(_ change: StepChange, at now: Date, on connection: PostgresConnection) async throws {
        _ = try await write(change, on: connection)
        if change.settles { try await wake(change.runID, now, on: connection) } else { try await touch(change.runID, on: connection) }
    }

    /// Writes a change into the step it is for, while the step is in the state the change is for
    /// (``StepChange/applies(to:)``); returns whether it was.
    func write(_ change: StepChange, on connection: PostgresConnection) async throws -> Bool {
        var binds = PostgresBindings()
        func bind<Value: PostgresThrowingDynamicTypeEncodable>(_ value: Value?) throws -> String {
            try binds.append(value)
            return "$\(binds.count)"
        }
        let set: String
        switch change.patch {
        case let .answered(output, attempts):
            set = "output = \(try bind(output.text)), error = NULL, attempts = COALESCE(\(try bind(attempts)), attempts)"
        case let .failed(error, attempts):
            set = "error = \(try bind(try Self.encode(error))), attempts = COALESCE(\(try bind(attempts)), attempts)"
        case let .awaiting(callback, attempts):
            set = "callback_connector = \(try bind(callback.connector)), correlation = \(try bind(callback.correlation)), "
                + "attempts = COALESCE(\(try bind(attempts)), attempts)"
        case let .attempts(count):
            set = "attempts = \(try bind(count))"
        case let .redirected(next):
            set = "delivery_id = \(try bind(next.rawValue)), callback_connector = NULL, correlation = NULL"
        }
        var sql = "UPDATE steps SET \(set) WHERE run_id = \(try bind(change.runID.rawValue)) AND step_id = \(try bind(change.stepID))"
            + " AND status = 'waiting'"
        if let delivery = change.deliveryID { sql += " AND delivery_id = \(try bind(delivery.rawValue))" }
        if change.answers { sql += " AND output IS NULL AND error IS NULL" }
        return try await rows(PostgresQuery(unsafeSQL: sql + " RETURNING step_id", binds: binds), on: connection).count == 1
    }

    /// A run and its steps, with its event.
    func snapshot(_ id: RunID, on connection: PostgresConnection?) async throws -> RunSnapshot? {
        guard let row = try await rows("""
            SELECT \(unescaped: Self.runColumns), (SELECT payload FROM events WHERE events.id = runs.event_id) AS event_payload
            FROM runs WHERE id = \(id.rawValue)
            """, on: connection).first else { return nil }
        var run = try Self.run(from: row)
        if run.event == nil, let text = try row.makeRandomAccess()["event_payload"].decode(String?.self) {
            run.event = try JSON.parse(Data(text.utf8))
            run.eventText = text
        }
        let steps = try await rows("""
            SELECT \(unescaped: Self.stepColumns) FROM steps WHERE run_id = \(id.rawValue) ORDER BY sequence, step_id
            """, on: connection)
        return RunSnapshot(run: run, steps: try steps.map(Self.step(from:)))
    }

    /// Several runs with their steps in two queries (a page of the console), in the order asked.
    func snapshots(_ ids: [RunID]) async throws -> [RunSnapshot] {
        guard !ids.isEmpty else { return [] }
        let keys = ids.map(\.rawValue)
        var runs: [String: RunRecord] = [:]
        for row in try await rows("""
            SELECT \(unescaped: Self.runColumns), (SELECT payload FROM events WHERE events.id = runs.event_id) AS event_payload
            FROM runs WHERE id = ANY(\(keys))
            """)
        {
            var run = try Self.run(from: row)
            if run.event == nil, let text = try row.makeRandomAccess()["event_payload"].decode(String?.self) {
                run.event = try JSON.parse(Data(text.utf8))
                run.eventText = text
            }
            runs[run.id.rawValue] = run
        }
        var steps: [String: [StepRecord]] = [:]
        for row in try await rows("""
            SELECT run_id, \(unescaped: Self.stepColumns) FROM steps WHERE run_id = ANY(\(keys)) ORDER BY run_id, sequence, step_id
            """)
        {
            steps[try row.makeRandomAccess()["run_id"].decode(String.self), default: []].append(try Self.step(from: row))
        }
        return keys.compactMap { key in runs[key].map { RunSnapshot(run: $0, steps: steps[key] ?? []) } }
    }

    static func run(from row: PostgresRow) throws -> RunRecord {
        let r = row.makeRandomAccess()
        guard let status = RunStatus(rawValue: try r["status"].decode(String.self)) else {
            throw StoreError.corrupt("unknown run status")
        }
        return RunRecord(
            id: RunID(try r["id"].decode(String.self)), workflow: try r["workflow"].decode(String.self), status: status,
            decision: try r["decision"].decode(String?.self).flatMap(Decision.init(rawValue:)),
            tags: try strings(try r["tags"].decode(String?.self)), trigger: try trigger(try r["trigger"].decode(String?.self)),
            event: try json(try r["event"].decode(String?.self)), input: try json(try r["input"].decode(String?.self)),
            error: try decode(StepError.self, try r["error"].decode(String?.self)),
            createdAt: Date(microseconds: try r["created_at"].decode(Int64.self)),
            updatedAt: Date(microseconds: try r["updated_at"].decode(Int64.self)),
            wakeAt: try r["wake_at"].decode(Int64?.self).map(Date.init(microseconds:)),
            version: Int(try r["version"].decode(Int64.self)),
            workflowVersion: try r["workflow_version"].decode(Int32?.self).map(Int.init),
            output: try json(try r["output"].decode(String?.self)))
    }

    static func step(from row: PostgresRow) throws -> StepRecord {
        let r = row.makeRandomAccess()
        guard let status = StepStatus(rawValue: try r["status"].decode(String.self)) else {
            throw StoreError.corrupt("unknown step status")
        }
        let connector = try r["callback_connector"].decode(String?.self)
        let correlation = try r["correlation"].decode(String?.self)
        return StepRecord(
            id: try r["step_id"].decode(String.self), parent: try r["parent"].decode(String?.self),
            sequence: Int(try r["sequence"].decode(Int64.self)), status: status, attempts: Int(try r["attempts"].decode(Int64.self)),
            output: try json(try r["output"].decode(String?.self)), error: try decode(StepError.self, try r["error"].decode(String?.self)),
            startedAt: Date(microseconds: try r["started_at"].decode(Int64.self)),
            endedAt: try r["ended_at"].decode(Int64?.self).map(Date.init(microseconds:)),
            wakeAt: try r["wake_at"].decode(Int64?.self).map(Date.init(microseconds:)),
            deliveryID: try r["delivery_id"].decode(String?.self).map(DeliveryID.init),
            awaitedCallback: connector.flatMap { connector in correlation.map { CallbackKey(connector: connector, correlation: $0) } })
    }

    static func delivery(from row: PostgresRow) throws -> Delivery {
        let r = row.makeRandomAccess()
        guard let status = DeliveryStatus(rawValue: try r["status"].decode(String.self)) else {
            throw StoreError.corrupt("unknown delivery status")
        }
        let owner = try r["lease_owner"].decode(String?.self)
        let expires = try r["lease_expires_at"].decode(Int64?.self)
        return Delivery(
            id: DeliveryID(try r["id"].decode(String.self)), runID: RunID(try r["run_id"].decode(String.self)),
            stepID: try r["step_id"].decode(String.self), connector: try r["connector"].decode(String.self),
            operation: try r["operation"].decode(String.self), status: status,
            request: try request(try r["request"].decode(String?.self), body: try r["body"].decode(String?.self)),
            retry: try decode(RetrySettings.self, try r["retry"].decode(String?.self)),
            attemptCount: Int(try r["attempt_count"].decode(Int64.self)),
            nextAttemptAt: try r["next_attempt_at"].decode(Int64?.self).map(Date.init(microseconds:)),
            manual: try r["manual"].decode(Bool.self), lastError: try decode(StepError.self, try r["last_error"].decode(String?.self)),
            detached: try r["detached"].decode(Bool.self), createdAt: Date(microseconds: try r["created_at"].decode(Int64.self)),
            updatedAt: Date(microseconds: try r["updated_at"].decode(Int64.self)),
            lease: owner.map { Lease(owner: InstanceID($0), expiresAt: Date(microseconds: expires ?? 0)) })
    }

    static func attempt(from row: PostgresRow) throws -> DeliveryAttempt {
        let r = row.makeRandomAccess()
        return DeliveryAttempt(
            deliveryID: DeliveryID(try r["delivery_id"].decode(String.self)), number: Int(try r["number"].decode(Int64.self)),
            trigger: DeliveryAttempt.Trigger(rawValue: try r["trigger"].decode(String.self)) ?? .scheduled,
            startedAt: Date(microseconds: try r["started_at"].decode(Int64.self)),
            durationMilliseconds: Int(try r["duration_ms"].decode(Int64.self)),
            requestText: try r["request"].decode(String?.self) ?? "null", responseText: try r["response"].decode(String?.self),
            errorClass: try r["error_class"].decode(String?.self), errorMessage: try r["error_message"].decode(String?.self))
    }

    static func event(from row: PostgresRow) throws -> EventRecord {
        let r = row.makeRandomAccess()
        return EventRecord(
            id: EventID(try r["id"].decode(String.self)), dedupeKey: try r["dedupe_key"].decode(String.self),
            type: try r["type"].decode(String.self), source: try r["source"].decode(String.self),
            payload: try json(try r["payload"].decode(String?.self)) ?? .null,
            receivedAt: Date(microseconds: try r["received_at"].decode(Int64.self)),
            runs: try decode([RunReference].self, try r["runs"].decode(String?.self)) ?? [])
    }

    static func apiKey(from row: PostgresRow) throws -> APIKeyRecord {
        let (name, hash, scopes, created, revoked, expires) = try row.decode((String, String, String, Int64, Int64?, Int64?).self)
        return APIKeyRecord(name: name, hash: hash, scopes: try decode([String].self, scopes) ?? [],
                            createdAt: Date(microseconds: created), revokedAt: revoked.map(Date.init(microseconds:)),
                            expiresAt: expires.map(Date.init(microseconds:)))
    }
}

/// The WHERE clause of a list query, from the filters that are set, with its bindings.
struct PostgresFilter {
    private var clauses: [String] = []
    private var bindings = PostgresBindings()

    mutating func add(_ column: String, _ value: String?, op: String = "=") {
        guard let value else { return }
        bindings.append(value)
        clauses.append("\(column) \(op) $\(bindings.count)")
    }

    mutating func add(_ column: String, _ value: Int64?, op: String = "=") {
        guard let value else { return }
        bindings.append(value)
        clauses.append("\(column) \(op) $\(bindings.count)")
    }

    /// A clause with no value of its own (one that names a partial index's condition).
    mutating func add(_ clause: String) {
        clauses.append(clause)
    }

    /// `clause` with `$?` standing for `value`'s binding.
    mutating func add(clause: String, _ value: String?) {
        guard let value else { return }
        bindings.append(value)
        clauses.append(clause.replacingOccurrences(of: "$?", with: "$\(bindings.count)"))
    }

    func query(_ select: String, order: String, limit: Int) -> PostgresQuery {
        var bindings = bindings
        bindings.append(Int64(limit))
        let whereClause = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return PostgresQuery(unsafeSQL: "\(select) \(whereClause) \(order) LIMIT $\(bindings.count)", binds: bindings)
    }
}
