import GRDB

/// The schema of ``SQLiteStore``: its migrations, applied in order at start.
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
        migrator.registerMigration("v6: a delivery's body in a column of its own") { db in
            // Kept out of the request's JSON, a body is stored and read as it is, not escaped into
            // a JSON string and parsed back (the event of a forwarding workflow, say). Older rows
            // keep the body in `request`.
            try db.execute(sql: "ALTER TABLE deliveries ADD COLUMN body TEXT")
        }
        migrator.registerMigration("v7: fewer b-trees to write per run") { db in
            // Runs and steps are keyed by text ids: as rowid tables each row went into two b-trees
            // (the rows by rowid, and the primary key's index); WITHOUT ROWID, into one. Indexes on
            // a status that changes cover only the rows that are looked up by it: due deliveries
            // (pending), and runs with a timer; a delivery committed already claimed, or settled, and
            // a run without a timer, are in none. (Deliveries, events and attempts stay rowid tables:
            // their rows hold bodies of a kilobyte and more, which WITHOUT ROWID would spill to
            // overflow pages.) GRDB turns foreign keys off while a migration runs and checks them after.
            try db.execute(sql: """
                CREATE TABLE runs_v7 (
                  id TEXT NOT NULL PRIMARY KEY, workflow TEXT NOT NULL, status TEXT NOT NULL, decision TEXT,
                  tags TEXT NOT NULL DEFAULT '[]', trigger TEXT NOT NULL, event TEXT, event_id TEXT, input TEXT, error TEXT,
                  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, wake_at INTEGER, version INTEGER NOT NULL DEFAULT 0
                ) WITHOUT ROWID;
                INSERT INTO runs_v7 (id, workflow, status, decision, tags, trigger, event, event_id, input, error, created_at,
                  updated_at, wake_at, version)
                SELECT id, workflow, status, decision, tags, trigger, event, event_id, input, error, created_at, updated_at,
                  wake_at, version FROM runs;
                DROP TABLE runs;
                ALTER TABLE runs_v7 RENAME TO runs;
                CREATE INDEX runs_by_workflow ON runs (workflow, id);
                CREATE INDEX runs_by_status ON runs (status, id);
                CREATE INDEX runs_waking ON runs (wake_at) WHERE status = 'waiting' AND wake_at IS NOT NULL;

                CREATE TABLE steps_v7 (
                  run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE, step_id TEXT NOT NULL, parent TEXT,
                  sequence INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, output TEXT, error TEXT,
                  started_at INTEGER NOT NULL, ended_at INTEGER, wake_at INTEGER, delivery_id TEXT, callback_connector TEXT,
                  correlation TEXT,
                  PRIMARY KEY (run_id, step_id)
                ) WITHOUT ROWID;
                INSERT INTO steps_v7 (run_id, step_id, parent, sequence, status, attempts, output, error, started_at, ended_at,
                  wake_at, delivery_id, callback_connector, correlation)
                SELECT run_id, step_id, parent, sequence, status, attempts, output, error, started_at, ended_at, wake_at,
                  delivery_id, callback_connector, correlation FROM steps;
                DROP TABLE steps;
                ALTER TABLE steps_v7 RENAME TO steps;
                CREATE INDEX steps_by_correlation ON steps (callback_connector, correlation) WHERE correlation IS NOT NULL;

                DROP INDEX deliveries_due;
                CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
                """)
        }
        migrator.registerMigration("v8: attempts pruned in insertion order") { db in
            // Pruning reads the oldest attempts by rowid (SQLiteStore.pruneAttempts); the index on
            // their start time cost a b-tree insert per attempt.
            try db.execute(sql: "DROP INDEX delivery_attempts_by_time")
        }
        migrator.registerMigration("v9: a delivery that forwards its event refers to it") { db in
            // `body: = event` sends the event as it arrived: such a delivery, created in the
            // transaction that stores its event, names the event instead of holding a second copy
            // of its text (about a kilobyte per forwarded event, written again when the delivery
            // settles). Events are never deleted while their deliveries are kept.
            try db.execute(sql: "ALTER TABLE deliveries ADD COLUMN body_event TEXT")
        }
        migrator.registerMigration("v10: leases and instances") { db in
            // A delivery being sent is held under a lease (owner, expiry); a partial index finds an
            // instance's leases to renew and the expired ones to take back. Rows left `sending`
            // before leases existed have none, and count as expired.
            try db.execute(sql: """
                ALTER TABLE deliveries ADD COLUMN lease_owner TEXT;
                ALTER TABLE deliveries ADD COLUMN lease_expires_at INTEGER;
                CREATE INDEX deliveries_leased ON deliveries (lease_owner, lease_expires_at) WHERE status = 'sending';
                CREATE TABLE instances (
                  id TEXT PRIMARY KEY, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL);
                """)
        }
        migrator.registerMigration("v11: run leases") { db in
            // A run being advanced by the scheduler is held under a lease; a checkpoint ends it.
            try db.execute(sql: """
                ALTER TABLE runs ADD COLUMN lease_owner TEXT;
                ALTER TABLE runs ADD COLUMN lease_expires_at INTEGER;
                CREATE INDEX runs_leased ON runs (lease_owner) WHERE lease_owner IS NOT NULL;
                """)
        }
        migrator.registerMigration("v12: keys that expire; reviews need their own scope") { db in
            try db.execute(sql: "ALTER TABLE api_keys ADD COLUMN expires_at INTEGER")
            // Reviews needed runs:write before they had a scope of their own: a key keeps what it could do.
            try db.execute(sql: """
                UPDATE api_keys SET scopes = json_insert(scopes, '$[#]', 'reviews:write')
                WHERE EXISTS (SELECT 1 FROM json_each(api_keys.scopes) WHERE value = 'runs:write')
                  AND NOT EXISTS (SELECT 1 FROM json_each(api_keys.scopes) WHERE value = 'reviews:write')
                """)
        }
        migrator.registerMigration("v13: the audit log") { db in
            // Appended only: ids are time-ordered, so the primary key is the order of the log.
            try db.execute(sql: """
                CREATE TABLE audit_log (
                  id TEXT PRIMARY KEY, at INTEGER NOT NULL, actor_kind TEXT NOT NULL, actor_name TEXT NOT NULL, action TEXT NOT NULL,
                  target TEXT NOT NULL, outcome TEXT NOT NULL, request_id TEXT, source_ip TEXT, details TEXT) WITHOUT ROWID;
                CREATE INDEX audit_by_action ON audit_log (action, id);
                CREATE INDEX audit_by_actor ON audit_log (actor_name, id);
                """)
        }
        migrator.registerMigration("v14: workflow versions") { db in
            // Every distinct content of a workflow file, with its source; a run names the version
            // it started on. Runs from before have none and are interpreted by the current file.
            try db.execute(sql: """
                CREATE TABLE workflow_versions (
                  workflow TEXT NOT NULL, version INTEGER NOT NULL, sha256 TEXT NOT NULL, source TEXT NOT NULL,
                  created_at INTEGER NOT NULL, PRIMARY KEY (workflow, version), UNIQUE (workflow, sha256)) WITHOUT ROWID;
                ALTER TABLE runs ADD COLUMN workflow_version INTEGER;
                """)
        }
        migrator.registerMigration("v15: run outputs") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN output TEXT")
        }
        migrator.registerMigration("v16: console sessions") { db in
            try db.execute(sql: """
                CREATE TABLE console_sessions (
                  id TEXT PRIMARY KEY, key_hash TEXT NOT NULL, csrf_token TEXT NOT NULL, created_at INTEGER NOT NULL,
                  expires_at INTEGER NOT NULL, ended_at INTEGER) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v17: what the console finds runs and deliveries by") { db in
            // Search terms of runs (a workflow's `search` fields), keyed by term so that a search
            // reads only its runs. Runs by decision, and deliveries that failed or died by id and by
            // connector: partial indexes, which a run without a decision and a delivery that succeeds (the
            // forwarding path) never enter.
            try db.execute(sql: """
                CREATE TABLE run_search_terms (
                  term TEXT NOT NULL, run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
                  PRIMARY KEY (term, run_id)) WITHOUT ROWID;
                CREATE INDEX runs_by_decision ON runs (decision, id) WHERE decision IS NOT NULL;
                CREATE INDEX deliveries_settled ON deliveries (status, id) WHERE status IN ('failed', 'dead');
                CREATE INDEX deliveries_settled_by_connector ON deliveries (connector, status, id) WHERE status IN ('failed', 'dead');
                """)
        }
        return migrator
    }
}
