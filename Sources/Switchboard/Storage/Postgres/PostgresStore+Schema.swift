import Foundation
import PostgresNIO

/// The schema of ``PostgresStore``: versioned migrations, applied in order under an advisory lock,
/// so that instances started together migrate once.
extension PostgresStore {
    /// The advisory lock's key: any number no other application on the database uses.
    static let migrationLock: Int64 = 0x5357_4254_4348  // "SWBTCH"

    static let migrations: [(version: Int, name: String, sql: [String])] = [
        (1, "events, runs, steps, deliveries, attempts, callbacks, lists, keys, instances", [
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL)",
            "INSERT INTO meta (key, value) VALUES ('lists_deleted', 0)",
            """
            CREATE TABLE events (
              id TEXT PRIMARY KEY, dedupe_key TEXT NOT NULL UNIQUE, type TEXT NOT NULL, source TEXT NOT NULL,
              payload TEXT NOT NULL, received_at BIGINT NOT NULL, runs TEXT NOT NULL)
            """,
            """
            CREATE TABLE runs (
              id TEXT PRIMARY KEY, workflow TEXT NOT NULL, status TEXT NOT NULL, decision TEXT, tags TEXT NOT NULL DEFAULT '[]',
              trigger TEXT NOT NULL, event TEXT, event_id TEXT, input TEXT, error TEXT, created_at BIGINT NOT NULL,
              updated_at BIGINT NOT NULL, wake_at BIGINT, version BIGINT NOT NULL DEFAULT 0, lease_owner TEXT,
              lease_expires_at BIGINT)
            """,
            "CREATE INDEX runs_by_workflow ON runs (workflow, id)",
            "CREATE INDEX runs_by_status ON runs (status, id)",
            "CREATE INDEX runs_waking ON runs (wake_at) WHERE status = 'waiting' AND wake_at IS NOT NULL",
            "CREATE INDEX runs_leased ON runs (lease_owner) WHERE lease_owner IS NOT NULL",
            """
            CREATE TABLE steps (
              run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step_id TEXT NOT NULL, parent TEXT,
              sequence BIGINT NOT NULL, status TEXT NOT NULL, attempts BIGINT NOT NULL, output TEXT, error TEXT,
              started_at BIGINT NOT NULL, ended_at BIGINT, wake_at BIGINT, delivery_id TEXT, callback_connector TEXT,
              correlation TEXT, PRIMARY KEY (run_id, step_id))
            """,
            "CREATE INDEX steps_by_correlation ON steps (callback_connector, correlation) WHERE correlation IS NOT NULL",
            """
            CREATE TABLE deliveries (
              id TEXT PRIMARY KEY, run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step_id TEXT NOT NULL,
              connector TEXT NOT NULL, operation TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, body TEXT,
              body_event TEXT, retry TEXT, attempt_count BIGINT NOT NULL, next_attempt_at BIGINT,
              manual BOOLEAN NOT NULL DEFAULT FALSE, last_error TEXT, detached BOOLEAN NOT NULL DEFAULT FALSE,
              created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, lease_owner TEXT, lease_expires_at BIGINT)
            """,
            "CREATE INDEX deliveries_by_run ON deliveries (run_id)",
            "CREATE INDEX deliveries_by_connector ON deliveries (connector, id)",
            "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending'",
            "CREATE INDEX deliveries_leased ON deliveries (lease_owner, lease_expires_at) WHERE status = 'sending'",
            """
            CREATE TABLE delivery_attempts (
              seq BIGSERIAL UNIQUE, delivery_id TEXT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
              number BIGINT NOT NULL, trigger TEXT NOT NULL, started_at BIGINT NOT NULL, duration_ms BIGINT NOT NULL,
              request TEXT NOT NULL, response TEXT, error_class TEXT, error_message TEXT, PRIMARY KEY (delivery_id, number))
            """,
            """
            CREATE TABLE callbacks (
              id TEXT PRIMARY KEY, connector TEXT NOT NULL, status TEXT NOT NULL, message_id TEXT, correlation TEXT,
              payload TEXT, error TEXT, run_id TEXT, step_id TEXT, received_at BIGINT NOT NULL, expires_at BIGINT)
            """,
            // Replay protection that holds across instances: one taken callback per connector and message id.
            """
            CREATE UNIQUE INDEX callbacks_taken ON callbacks (connector, message_id)
              WHERE status IN ('matched', 'pending', 'unmatched') AND message_id IS NOT NULL
            """,
            "CREATE INDEX callbacks_pending ON callbacks (status, expires_at)",
            "CREATE TABLE lists (name TEXT PRIMARY KEY, kind TEXT NOT NULL, revision BIGINT NOT NULL)",
            """
            CREATE TABLE list_items (
              list_name TEXT NOT NULL REFERENCES lists (name) ON DELETE CASCADE, item TEXT NOT NULL, position BIGINT NOT NULL,
              PRIMARY KEY (list_name, item))
            """,
            """
            CREATE TABLE api_keys (
              name TEXT NOT NULL, hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT)
            """,
            "CREATE TABLE instances (id TEXT PRIMARY KEY, started_at BIGINT NOT NULL, heartbeat_at BIGINT NOT NULL)",
        ]),
        (2, "limits shared by instances: token buckets, slots, versioned values", [
            "CREATE TABLE limit_buckets (name TEXT PRIMARY KEY, tokens DOUBLE PRECISION NOT NULL, updated_at TIMESTAMPTZ NOT NULL)",
            """
            CREATE TABLE limit_slots (
              name TEXT NOT NULL, slot INTEGER NOT NULL, holder TEXT, expires_at TIMESTAMPTZ, PRIMARY KEY (name, slot))
            """,
            "CREATE TABLE shared_values (name TEXT PRIMARY KEY, text TEXT NOT NULL, version BIGINT NOT NULL)",
        ]),
        (3, "signed event source requests take their message id", [
            "DROP INDEX callbacks_taken",
            """
            CREATE UNIQUE INDEX callbacks_taken ON callbacks (connector, message_id)
              WHERE status IN ('matched', 'pending', 'unmatched', 'accepted') AND message_id IS NOT NULL
            """,
        ]),
        (5, "the audit log", [
            """
            CREATE TABLE audit_log (
              id TEXT PRIMARY KEY, at BIGINT NOT NULL, actor_kind TEXT NOT NULL, actor_name TEXT NOT NULL, action TEXT NOT NULL,
              target TEXT NOT NULL, outcome TEXT NOT NULL, request_id TEXT, source_ip TEXT, details TEXT)
            """,
            "CREATE INDEX audit_by_action ON audit_log (action, id)",
            "CREATE INDEX audit_by_actor ON audit_log (actor_name, id)",
        ]),
        (6, "workflow versions", [
            """
            CREATE TABLE workflow_versions (
              workflow TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, source TEXT NOT NULL,
              created_at BIGINT NOT NULL, PRIMARY KEY (workflow, version), UNIQUE (workflow, sha256))
            """,
            "ALTER TABLE runs ADD COLUMN workflow_version INTEGER",
        ]),
        (7, "run outputs", ["ALTER TABLE runs ADD COLUMN output TEXT"]),
        (8, "console sessions", [
            """
            CREATE TABLE console_sessions (
              id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, csrf_token TEXT NOT NULL, created_at BIGINT NOT NULL,
              expires_at BIGINT NOT NULL, ended_at BIGINT)
            """,
        ]),
        (4, "keys that expire; reviews need their own scope", [
            "ALTER TABLE api_keys ADD COLUMN expires_at BIGINT",
            // Reviews needed runs:write before they had a scope of their own: a key keeps what it could do.
            """
            UPDATE api_keys SET scopes = (scopes::jsonb || '["reviews:write"]'::jsonb)::text
            WHERE scopes::jsonb ? 'runs:write' AND NOT scopes::jsonb ? 'reviews:write'
            """,
        ]),
        (9, "what the console finds runs and deliveries by", [
            // As SQLite's v17: search terms keyed by term; partial indexes that a run without a
            // decision and a delivery that succeeds never enter.
            """
            CREATE TABLE run_search_terms (
              term TEXT NOT NULL, run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, PRIMARY KEY (term, run_id))
            """,
            "CREATE INDEX runs_by_decision ON runs (decision, id) WHERE decision IS NOT NULL",
            "CREATE INDEX deliveries_settled ON deliveries (status, id) WHERE status IN ('failed', 'dead')",
            "CREATE INDEX deliveries_settled_by_connector ON deliveries (connector, status, id) WHERE status IN ('failed', 'dead')",
        ]),
    ]

    /// Applies the migrations not applied yet, each in its own transaction, holding the advisory
    /// lock so that instances started together migrate once.
    public func migrate() async throws {
        try await client.withConnection { connection in
            try await connection.query("SELECT pg_advisory_lock(\(Self.migrationLock))", logger: logger)
            do {
                try await connection.query("""
                    CREATE TABLE IF NOT EXISTS switchboard_migrations (
                      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())
                    """, logger: logger)
                let applied = Set(try await connection.query("SELECT version FROM switchboard_migrations", logger: logger)
                    .collect().map { try $0.decode(Int.self) })
                for migration in Self.migrations where !applied.contains(migration.version) {
                    try await connection.withTransaction(logger: logger) { connection in
                        for statement in migration.sql {
                            try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                        }
                        try await connection.query("""
                            INSERT INTO switchboard_migrations (version, name) VALUES (\(migration.version), \(migration.name))
                            """, logger: logger)
                    }
                }
            } catch {
                _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
                throw error
            }
            try await connection.query("SELECT pg_advisory_unlock(\(Self.migrationLock))", logger: logger)
        }
    }
}
