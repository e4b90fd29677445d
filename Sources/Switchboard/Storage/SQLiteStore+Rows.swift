import CEL
import Foundation
import GRDB

/// Row mapping and the schema of ``SQLiteStore``.
extension SQLiteStore {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: events, runs, steps, lists, api keys") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                INSERT INTO meta (key, value) VALUES ('lists_deleted', 0);
                CREATE TABLE events (
                  id TEXT PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, type TEXT NOT NULL, source TEXT NOT NULL,
                  payload TEXT NOT NULL, received_at INTEGER NOT NULL, runs TEXT NOT NULL);
                CREATE TABLE runs (
                  id TEXT PRIMARY KEY, workflow TEXT NOT NULL, status TEXT NOT NULL, decision TEXT,
                  tags TEXT NOT NULL DEFAULT '[]', trigger TEXT NOT NULL, event TEXT, input TEXT, error TEXT,
                  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, wake_at INTEGER);
                CREATE INDEX runs_by_status ON runs (status, wake_at);
                CREATE INDEX runs_by_workflow ON runs (workflow, id);
                CREATE TABLE steps (
                  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step_id TEXT NOT NULL, parent TEXT,
                  sequence INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, output TEXT, error TEXT,
                  started_at INTEGER NOT NULL, ended_at INTEGER, wake_at INTEGER,
                  PRIMARY KEY (run_id, step_id));
                CREATE TABLE lists (name TEXT PRIMARY KEY, kind TEXT NOT NULL, revision INTEGER NOT NULL);
                CREATE TABLE list_items (
                  list_name TEXT NOT NULL REFERENCES lists (name) ON DELETE CASCADE, item TEXT NOT NULL,
                  PRIMARY KEY (list_name, item));
                CREATE TABLE api_keys (
                  name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, created_at INTEGER NOT NULL,
                  revoked_at INTEGER);
                """)
        }
        migrator.registerMigration("v2: deliveries and their attempts") { db in
            try db.execute(sql: """
                ALTER TABLE steps ADD COLUMN delivery_id TEXT;
                CREATE TABLE deliveries (
                  id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step_id TEXT NOT NULL,
                  connector TEXT NOT NULL, operation TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, retry TEXT,
                  attempt_count INTEGER NOT NULL, next_attempt_at INTEGER, manual INTEGER NOT NULL DEFAULT 0, last_error TEXT,
                  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
                CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
                CREATE INDEX deliveries_by_run ON deliveries (run_id);
                CREATE INDEX deliveries_by_connector ON deliveries (connector, id);
                CREATE TABLE delivery_attempts (
                  delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE, number INTEGER NOT NULL,
                  trigger TEXT NOT NULL, started_at INTEGER NOT NULL, duration_ms INTEGER NOT NULL, request TEXT NOT NULL,
                  response TEXT, error_class TEXT, error_message TEXT, PRIMARY KEY (delivery_id, number));
                CREATE INDEX delivery_attempts_by_time ON delivery_attempts (started_at);
                """)
        }
        migrator.registerMigration("v3: runs refer to their event instead of copying it") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN event_id TEXT")
        }
        migrator.registerMigration("v4: run versions") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN version INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("v5: callbacks, and detached deliveries") { db in
            try db.execute(sql: """
                ALTER TABLE steps ADD COLUMN callback_connector TEXT;
                ALTER TABLE steps ADD COLUMN correlation TEXT;
                CREATE INDEX steps_by_correlation ON steps (callback_connector, correlation) WHERE correlation IS NOT NULL;
                ALTER TABLE deliveries ADD COLUMN detached INTEGER NOT NULL DEFAULT 0;
                CREATE TABLE callbacks (
                  id TEXT PRIMARY KEY, connector TEXT NOT NULL, status TEXT NOT NULL, message_id TEXT, correlation TEXT,
                  payload TEXT, error TEXT, run_id TEXT, step_id TEXT, received_at INTEGER NOT NULL, expires_at INTEGER);
                CREATE INDEX callbacks_by_message ON callbacks (connector, message_id);
                CREATE INDEX callbacks_pending ON callbacks (status, expires_at);
                """)
        }
        return migrator
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    // Hot-path encoders that avoid JSONEncoder.
    static func encode(_ strings: [String]) -> String { JSON.array(strings.map(JSON.string)).text }
    static func encode(_ trigger: RunTrigger) -> String {
        var object: [String: JSON] = [:]
        if let eventID = trigger.eventID { object["event_id"] = .string(eventID.rawValue) }
        object["api"] = .bool(trigger.api)
        return JSON.object(object).text
    }
    static func encode(_ runs: [RunReference]) -> String {
        JSON.array(runs.map { ["id": .string($0.id.rawValue), "workflow": .string($0.workflow)] }).text
    }

    // Hot-path decoders with the CEL module's JSON parser: Foundation's JSONDecoder costs several
    // times more, and these run inside the single writer's transactions.
    static func strings(_ text: String?) throws -> [String] {
        guard let text, case let .array(items) = try JSON.parse(Data(text.utf8)) else { return [] }
        return items.compactMap(\.stringValue)
    }

    static func trigger(_ text: String?) throws -> RunTrigger {
        guard let text else { return RunTrigger() }
        let json = try JSON.parse(Data(text.utf8))
        return RunTrigger(eventID: json["event_id"]?.stringValue.map(EventID.init), api: json["api"] == .bool(true))
    }

    static func encode(_ request: OutboundRequest) -> String {
        var object: [String: JSON] = ["method": .string(request.method), "url": .string(request.url),
                                      "headers": .array(request.headers.map { .array($0.map(JSON.string)) })]
        if let body = request.body { object["body"] = .string(body) }
        if let stage = request.stage { object["stage"] = .string(stage) }
        return JSON.object(object).text
    }

    static func request(_ text: String?) throws -> OutboundRequest {
        guard let text, case let .object(object) = try JSON.parse(Data(text.utf8)),
              let method = object["method"]?.stringValue, let url = object["url"]?.stringValue
        else { throw StoreError.corrupt("delivery without a readable request") }
        var request = OutboundRequest(method: method, url: url, body: object["body"]?.stringValue, stage: object["stage"]?.stringValue)
        request.headers = (object["headers"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.stringValue) }
        return request
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    static func json(_ text: String?) throws -> JSON? {
        guard let text else { return nil }
        return try JSON.parse(Data(text.utf8))
    }

    /// Writes a checkpoint if the run is still at the version it was made from.
    static func apply(_ checkpoint: RunCheckpoint, _ db: Database) throws {
        let run = checkpoint.run
        try db.cached(
            sql: """
            UPDATE runs SET status = ?, decision = ?, tags = ?, error = ?, updated_at = ?, wake_at = ?, version = version + 1
            WHERE id = ? AND version = ?
            """,
            arguments: [run.status.rawValue, run.decision?.rawValue, encode(run.tags), try run.error.map(encode),
                        run.updatedAt.microseconds, run.wakeAt?.microseconds, run.id.rawValue, run.version])
        guard db.changesCount == 1 else { throw StoreError.conflict("run \(run.id) changed since version \(run.version)") }
        try SQLiteStore.write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: run.id, db)
    }

    /// A run and its steps, read inside a write transaction.
    static func snapshot(_ id: RunID, _ db: Database) throws -> RunSnapshot? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT runs.*, events.payload AS event_payload FROM runs LEFT JOIN events ON events.id = runs.event_id
            WHERE runs.id = ?
            """), arguments: [id.rawValue]) else { return nil }
        let steps = try Row.fetchAll(try db.cachedStatement(sql: "SELECT * FROM steps WHERE run_id = ? ORDER BY sequence"),
                                     arguments: [id.rawValue])
        return RunSnapshot(run: try run(from: row), steps: try steps.map(step(from:)))
    }

    /// Inserts a run. A run whose event is in the events table refers to it (`event_id`) instead
    /// of keeping a copy, which halves what ingest writes.
    static func insert(_ run: RunRecord, _ db: Database, eventStored: Bool = false) throws {
        try db.cached(
            sql: """
            INSERT INTO runs (id, workflow, status, decision, tags, trigger, event, event_id, input, error, created_at,
              updated_at, wake_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            arguments: [run.id.rawValue, run.workflow, run.status.rawValue, run.decision?.rawValue, encode(run.tags),
                        encode(run.trigger), eventStored ? nil : run.event?.text,
                        eventStored ? run.trigger.eventID?.rawValue : nil, run.input?.text, try run.error.map(encode),
                        run.createdAt.microseconds, run.updatedAt.microseconds, run.wakeAt?.microseconds])
    }

    static func run(from row: Row) throws -> RunRecord {
        guard let status = RunStatus(rawValue: row["status"]) else { throw StoreError.corrupt("unknown run status") }
        return RunRecord(
            id: RunID(row["id"] as String), workflow: row["workflow"], status: status,
            decision: (row["decision"] as String?).flatMap(Decision.init(rawValue:)),
            tags: try strings(row["tags"]),
            trigger: try trigger(row["trigger"]),
            event: try json((row["event"] as String?) ?? row["event_payload"]), input: try json(row["input"]), error: try decode(StepError.self, row["error"]),
            createdAt: Date(microseconds: row["created_at"]), updatedAt: Date(microseconds: row["updated_at"]),
            wakeAt: (row["wake_at"] as Int64?).map(Date.init(microseconds:)), version: row["version"] ?? 0)
    }

    static func step(from row: Row) throws -> StepRecord {
        guard let status = StepStatus(rawValue: row["status"]) else { throw StoreError.corrupt("unknown step status") }
        return StepRecord(
            id: row["step_id"], parent: row["parent"], sequence: row["sequence"], status: status, attempts: row["attempts"],
            output: try json(row["output"]), error: try decode(StepError.self, row["error"]),
            startedAt: Date(microseconds: row["started_at"]), endedAt: (row["ended_at"] as Int64?).map(Date.init(microseconds:)),
            wakeAt: (row["wake_at"] as Int64?).map(Date.init(microseconds:)),
            deliveryID: (row["delivery_id"] as String?).map(DeliveryID.init),
            awaitedCallback: (row["callback_connector"] as String?).flatMap { connector in
                (row["correlation"] as String?).map { CallbackKey(connector: connector, correlation: $0) }
            })
    }

    static func insert(_ delivery: Delivery, _ db: Database) throws {
        try db.cached(
            sql: """
            INSERT INTO deliveries (id, run_id, step_id, connector, operation, status, request, retry, attempt_count,
              next_attempt_at, manual, last_error, detached, created_at, updated_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            arguments: [delivery.id.rawValue, delivery.runID.rawValue, delivery.stepID, delivery.connector, delivery.operation,
                        delivery.status.rawValue, encode(delivery.request), try delivery.retry.map(encode),
                        delivery.attemptCount, delivery.nextAttemptAt?.microseconds, delivery.manual,
                        try delivery.lastError.map(encode), delivery.detached, delivery.createdAt.microseconds,
                        delivery.updatedAt.microseconds])
    }

    /// The columns of a delivery without its request, for the writer's hot paths, which settle a
    /// delivery without reading what it sent.
    static let deliveryColumnsWithoutRequest = columnsWithoutRequest.joined(separator: ", ")
    static let columnsWithoutRequest = ["id", "run_id", "step_id", "connector", "operation", "status", "retry", "attempt_count",
                                        "next_attempt_at", "manual", "last_error", "detached", "created_at", "updated_at"]

    static func delivery(from row: Row) throws -> Delivery {
        try delivery(from: row, request: try request(row["request"]))
    }

    /// A delivery read without its request (``deliveryColumnsWithoutRequest``): its `request` is empty.
    static func deliveryWithoutRequest(from row: Row) throws -> Delivery {
        try delivery(from: row, request: OutboundRequest(method: "", url: ""))
    }

    private static func delivery(from row: Row, request: OutboundRequest) throws -> Delivery {
        guard let status = DeliveryStatus(rawValue: row["status"]) else { throw StoreError.corrupt("unknown delivery status") }
        return Delivery(
            id: DeliveryID(row["id"] as String), runID: RunID(row["run_id"] as String), stepID: row["step_id"],
            connector: row["connector"], operation: row["operation"], status: status, request: request,
            retry: try decode(RetrySettings.self, row["retry"]), attemptCount: row["attempt_count"],
            nextAttemptAt: (row["next_attempt_at"] as Int64?).map(Date.init(microseconds:)), manual: row["manual"],
            lastError: try decode(StepError.self, row["last_error"]), detached: row["detached"] ?? false,
            createdAt: Date(microseconds: row["created_at"]),
            updatedAt: Date(microseconds: row["updated_at"]))
    }

    static func attempt(from row: Row) throws -> DeliveryAttempt {
        DeliveryAttempt(
            deliveryID: DeliveryID(row["delivery_id"] as String), number: row["number"],
            trigger: DeliveryAttempt.Trigger(rawValue: row["trigger"]) ?? .scheduled, startedAt: Date(microseconds: row["started_at"]),
            durationMilliseconds: row["duration_ms"], request: try json(row["request"]) ?? .null, response: try json(row["response"]),
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
                     revokedAt: (row["revoked_at"] as Int64?).map(Date.init(microseconds:)))
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

    var whereClause: String { clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ") }
}
