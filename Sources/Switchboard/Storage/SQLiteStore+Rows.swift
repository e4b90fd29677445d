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
        return migrator
    }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    static func json(_ text: String?) throws -> JSON? {
        guard let text else { return nil }
        return try JSON.parse(Data(text.utf8))
    }

    static func insert(_ run: RunRecord, _ db: Database) throws {
        try db.execute(
            sql: """
            INSERT INTO runs (id, workflow, status, decision, tags, trigger, event, input, error, created_at, updated_at, wake_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            arguments: [run.id.rawValue, run.workflow, run.status.rawValue, run.decision?.rawValue, try encode(run.tags),
                        try encode(run.trigger), run.event?.text, run.input?.text, try run.error.map(encode),
                        run.createdAt.microseconds, run.updatedAt.microseconds, run.wakeAt?.microseconds])
    }

    static func run(from row: Row) throws -> RunRecord {
        guard let status = RunStatus(rawValue: row["status"]) else { throw StoreError.corrupt("unknown run status") }
        return RunRecord(
            id: RunID(row["id"] as String), workflow: row["workflow"], status: status,
            decision: (row["decision"] as String?).flatMap(Decision.init(rawValue:)),
            tags: try decode([String].self, row["tags"]) ?? [],
            trigger: try decode(RunTrigger.self, row["trigger"]) ?? RunTrigger(),
            event: try json(row["event"]), input: try json(row["input"]), error: try decode(StepError.self, row["error"]),
            createdAt: Date(microseconds: row["created_at"]), updatedAt: Date(microseconds: row["updated_at"]),
            wakeAt: (row["wake_at"] as Int64?).map(Date.init(microseconds:)))
    }

    static func step(from row: Row) throws -> StepRecord {
        guard let status = StepStatus(rawValue: row["status"]) else { throw StoreError.corrupt("unknown step status") }
        return StepRecord(
            id: row["step_id"], parent: row["parent"], sequence: row["sequence"], status: status, attempts: row["attempts"],
            output: try json(row["output"]), error: try decode(StepError.self, row["error"]),
            startedAt: Date(microseconds: row["started_at"]), endedAt: (row["ended_at"] as Int64?).map(Date.init(microseconds:)),
            wakeAt: (row["wake_at"] as Int64?).map(Date.init(microseconds:)))
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
