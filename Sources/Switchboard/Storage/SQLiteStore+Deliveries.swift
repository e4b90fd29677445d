import CEL
import Foundation
import GRDB

/// The delivery outbox and log of ``SQLiteStore``.
extension SQLiteStore {
    public func claimDueDeliveries(at now: Date, limit: Int, lease: Lease) async throws -> [Delivery] {
        try await commits.write { db in
            try Row.fetchAll(db, sql: """
                UPDATE deliveries SET status = 'sending', lease_owner = ?, lease_expires_at = ?, updated_at = ?
                WHERE id IN (SELECT id FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending' AND next_attempt_at <= ?
                             ORDER BY next_attempt_at LIMIT ?)
                RETURNING \(DeliveryColumn.list)
                """, arguments: [lease.owner.rawValue, lease.expiresAt.microseconds, now.microseconds, now.microseconds, limit])
                .map(Self.delivery(from:))
        }
    }

    public func commitAttempt(_ commit: AttemptCommit, checkpoint: RunCheckpoint?) async throws -> AttemptCommitOutcome {
        // The run as remembered at the checkpoint's version: its steps are stored (updated in place
        // rather than upserted), and what the checkpoint makes of it is remembered after the commit.
        let base = checkpoint.flatMap { checkpoint in
            recentRuns.latest(checkpoint.run.id).flatMap { $0.run.version == checkpoint.run.version ? $0 : nil }
        }
        let outcome = try await commits.write { [recentEvents] db -> AttemptCommitOutcome in
            // The run's versioned UPDATE goes first: a stale checkpoint then has written nothing.
            if let checkpoint, try !Self.updateIfCurrent(checkpoint.run, db) { return .conflict }
            guard try Self.update(commit.delivery, heldAttempts: commit.heldAttempts, heldBy: commit.heldBy, db) else {
                if checkpoint == nil { return .fenced }
                // The run's UPDATE already ran: failing the write undoes it.
                throw StoreError.fenced("delivery \(commit.delivery.id) is no longer held at attempt \(commit.heldAttempts)")
            }
            if let attempt = commit.attempt { try Self.insert(attempt, db) }
            if let followUp = commit.followUp { try Self.insert(followUp, db) }
            if let checkpoint {
                try Self.write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id,
                               existingSteps: base?.steps ?? [], db)
                try Self.writeEffects(of: checkpoint, db)
                #if DEBUG
                    if let base, let actual = try Self.snapshot(checkpoint.run.id, db, events: recentEvents) {
                        let expected = Self.stored(checkpoint, over: base)
                        if actual != expected {
                            assertionFailure("RecentRuns: the run in memory differs from the store's\n\(expected)\n\(actual)")
                        }
                    }
                #endif
            } else if let change = commit.step {
                try Self.record(change, at: commit.delivery.updatedAt, db)
            }
            return .committed
        }
        if let checkpoint {
            switch outcome {
            case .committed:
                if let base { recentRuns.remember(Self.stored(checkpoint, over: base)) }
                recentRuns.found(current: true)
            case .conflict:
                recentRuns.found(current: false)
            case .fenced:
                break
            }
        }
        return outcome
    }

    /// Writes a delivery's new state (and its lease's end) while it is still held as `heldAttempts`
    /// and `heldBy` say; false when it is not.
    private static func update(_ delivery: Delivery, heldAttempts: Int, heldBy: InstanceID?, _ db: Database) throws -> Bool {
        try db.execute(cached: """
            UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at = ?, manual = ?, last_error = ?, updated_at = ?,
              lease_owner = NULL, lease_expires_at = NULL
            WHERE id = ? AND status = 'sending' AND attempt_count = ? AND lease_owner IS ?
            """, [.text(delivery.status.rawValue), .integer(delivery.attemptCount), .integer(delivery.nextAttemptAt?.microseconds),
                  .bool(delivery.manual), .text(try delivery.lastError.map(encode)), .integer(delivery.updatedAt.microseconds),
                  .text(delivery.id.rawValue), .integer(heldAttempts), .text(heldBy?.rawValue)])
        return db.changesCount == 1
    }

    private static func insert(_ attempt: DeliveryAttempt, _ db: Database) throws {
        try db.execute(
            cached: """
            INSERT OR REPLACE INTO delivery_attempts (delivery_id, number, trigger, started_at, duration_ms, request,
              response, error_class, error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.text(attempt.deliveryID.rawValue), .integer(attempt.number), .text(attempt.trigger.rawValue),
             .integer(attempt.startedAt.microseconds), .integer(attempt.durationMilliseconds), .text(attempt.requestText),
             .text(attempt.responseText), .text(attempt.errorClass), .text(attempt.errorMessage)])
    }

    /// Writes a change into its step (when the step takes it) and moves its run's version: the run
    /// is made due when the change settles the step, for the scheduler to advance it.
    static func record(_ change: StepChange, at now: Date, _ db: Database) throws {
        try write(change, db)
        if change.settles { try wake(change.runID, now, db) } else { try touch(change.runID, db) }
    }

    /// Writes a change into the step it is for, while the step is in the state the change is for
    /// (``StepChange/applies(to:)``); returns whether it was.
    @discardableResult
    static func write(_ change: StepChange, _ db: Database) throws -> Bool {
        let guardClause = "run_id = ? AND step_id = ? AND status = 'waiting' AND (? IS NULL OR delivery_id = ?)"
            + (change.answers ? " AND output IS NULL AND error IS NULL" : "")
        let key: [SQLArgument] = [.text(change.runID.rawValue), .text(change.stepID), .text(change.deliveryID?.rawValue),
                                  .text(change.deliveryID?.rawValue)]
        switch change.patch {
        case let .answered(output, attempts):
            try db.execute(cached: "UPDATE steps SET output = ?, error = NULL, attempts = COALESCE(?, attempts) WHERE \(guardClause)",
                           [.text(output.text), .integer(attempts)] + key)
        case let .failed(error, attempts):
            try db.execute(cached: "UPDATE steps SET error = ?, attempts = COALESCE(?, attempts) WHERE \(guardClause)",
                           [.text(try encode(error)), .integer(attempts)] + key)
        case let .awaiting(callback, attempts):
            try db.execute(cached: """
                UPDATE steps SET callback_connector = ?, correlation = ?, attempts = COALESCE(?, attempts) WHERE \(guardClause)
                """,
                           [.text(callback.connector), .text(callback.correlation), .integer(attempts)] + key)
        case let .attempts(count):
            try db.execute(cached: "UPDATE steps SET attempts = ? WHERE \(guardClause)", [.integer(count)] + key)
        case let .redirected(delivery):
            try db.execute(cached: """
                UPDATE steps SET delivery_id = ?, callback_connector = NULL, correlation = NULL WHERE \(guardClause)
                """, [.text(delivery.rawValue)] + key)
        }
        return db.changesCount == 1
    }

    public func releaseLeases(heldBy owner: InstanceID) async throws -> Int {
        try await commits.write { db in
            try db.cached(sql: """
                UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
                WHERE status = 'sending' AND lease_owner = ?
                """, arguments: [owner.rawValue])
            let deliveries = db.changesCount
            try db.cached(sql: "UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = ?",
                          arguments: [owner.rawValue])
            return deliveries
        }
    }

    public func releaseExpiredLeases(at now: Date) async throws -> Int {
        // With nothing expired (almost always), a read answers without taking the writer.
        let anyExpired = try await pool.read { db in
            try Int.fetchOne(db, sql: """
                SELECT 1 FROM deliveries INDEXED BY deliveries_leased
                WHERE status = 'sending' AND (lease_expires_at IS NULL OR lease_expires_at < ?) LIMIT 1
                """, arguments: [now.microseconds]) != nil
        }
        guard anyExpired else { return 0 }
        return try await commits.write { db in
            try db.cached(sql: """
                UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
                WHERE status = 'sending' AND (lease_expires_at IS NULL OR lease_expires_at < ?)
                """, arguments: [now.microseconds])
            return db.changesCount
        }
    }

    public func renewLeases(of owner: InstanceID, until: Date) async throws {
        try await commits.write { db in
            try db.cached(sql: "UPDATE deliveries SET lease_expires_at = ? WHERE status = 'sending' AND lease_owner = ?",
                          arguments: [until.microseconds, owner.rawValue])
        }
    }

    public func heartbeat(_ instance: InstanceID, startedAt: Date, at now: Date) async throws {
        try await commits.write { db in
            try db.cached(sql: """
                INSERT INTO instances (id, started_at, heartbeat_at) VALUES (?, ?, ?)
                ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
                """, arguments: [instance.rawValue, startedAt.microseconds, now.microseconds])
        }
    }

    public func instances(seenSince since: Date) async throws -> [InstanceRecord] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT id, started_at, heartbeat_at,
                  (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_leased
                   WHERE status = 'sending' AND lease_owner = instances.id) AS deliveries,
                  (SELECT COUNT(*) FROM runs INDEXED BY runs_leased WHERE lease_owner = instances.id) AS runs
                FROM instances WHERE heartbeat_at >= ? ORDER BY id
                """, arguments: [since.microseconds]).map { row in
                InstanceRecord(id: InstanceID(row["id"] as String), startedAt: Date(microseconds: row["started_at"]),
                               heartbeatAt: Date(microseconds: row["heartbeat_at"]), leasedRuns: row["runs"],
                               leasedDeliveries: row["deliveries"])
            }
        }
    }

    public func listDeliveries(_ query: DeliveryQuery) async throws -> [Delivery] {
        try await pool.read { db in
            var filter = SQLFilter()
            filter.add("run_id = ?", query.run?.rawValue)
            filter.add("connector = ?", query.connector)
            filter.add("status = ?", query.status?.rawValue)
            // The condition of the partial index deliveries_settled, written as it is so that SQLite uses it.
            if query.status == .failed || query.status == .dead { filter.add("status IN ('failed', 'dead')") }
            // Ids are time-ordered: a time filter is a range of the primary key.
            filter.add("id >= ?", query.since.map { DeliveryID.lowerBound(at: $0).rawValue })
            filter.add("id < ?", query.until.map { DeliveryID.lowerBound(at: $0).rawValue })
            filter.add("id < ?", query.before?.rawValue)
            return try Row.fetchAll(db, sql: "SELECT \(DeliveryColumn.list) FROM deliveries \(filter.whereClause) ORDER BY id DESC LIMIT ?",
                                    arguments: filter.arguments + [query.limit]).map(Self.delivery(from:))
        }
    }

    public func delivery(_ id: DeliveryID) async throws -> DeliveryRecord? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT \(DeliveryColumn.list) FROM deliveries WHERE id = ?", arguments: [id.rawValue]) else { return nil }
            let attempts = try Row.fetchAll(db, sql: "SELECT * FROM delivery_attempts WHERE delivery_id = ? ORDER BY number",
                                            arguments: [id.rawValue]).map(Self.attempt(from:))
            return DeliveryRecord(delivery: try Self.delivery(from: row), attempts: attempts)
        }
    }

    public func retryDelivery(_ id: DeliveryID, at now: Date, audit: AuditEntry?) async throws -> DeliveryRetryResult {
        try await commits.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT \(DeliveryColumn.list) FROM deliveries WHERE id = ?", arguments: [id.rawValue]) else {
                return .notFound
            }
            let delivery = try Self.delivery(from: row)
            guard delivery.status == .failed || delivery.status == .dead else { return .notRetryable(delivery.status) }
            try db.cached(sql: """
                UPDATE deliveries SET status = 'pending', next_attempt_at = ?, manual = 1, updated_at = ? WHERE id = ?
                """, arguments: [now.microseconds, now.microseconds, id.rawValue])
            let runStatus = try String.fetchOne(db, sql: "SELECT status FROM runs WHERE id = ?", arguments: [delivery.runID.rawValue])
            if runStatus == RunStatus.failed.rawValue {
                // Reopen the step and every enclosing step, and the run.
                var stepID: String? = delivery.stepID
                var first = true
                while let current = stepID {
                    try db.cached(sql: """
                        UPDATE steps SET status = ?, error = NULL, ended_at = NULL WHERE run_id = ? AND step_id = ?
                        """, arguments: [first ? "waiting" : "running", delivery.runID.rawValue, current])
                    first = false
                    stepID = try String.fetchOne(db, sql: "SELECT parent FROM steps WHERE run_id = ? AND step_id = ?",
                                                 arguments: [delivery.runID.rawValue, current])
                }
                try db.cached(sql: """
                    UPDATE runs SET status = 'running', error = NULL, wake_at = NULL, updated_at = ?, version = version + 1 WHERE id = ?
                    """,
                               arguments: [now.microseconds, delivery.runID.rawValue])
            }
            if let audit { try Self.insert(audit, db) }
            return .reopened(delivery.runID)
        }
    }

    /// Attempts are appended as they end, so the oldest by rowid are the oldest by time: pruning
    /// looks at the `limit` oldest rows and deletes those started before `cutoff`, without an
    /// index on the start time (one b-tree less to write per attempt).
    public func pruneAttempts(before cutoff: Date, limit: Int) async throws -> Int {
        try await commits.write { db in
            try db.cached(sql: """
                DELETE FROM delivery_attempts WHERE rowid IN
                  (SELECT rowid FROM (SELECT rowid, started_at FROM delivery_attempts ORDER BY rowid LIMIT ?) WHERE started_at < ?)
                """, arguments: [limit, cutoff.microseconds])
            return db.changesCount
        }
    }

    public func deliveryBacklog(at now: Date) async throws -> (due: Int, oldestDue: Date?) {
        try await pool.read { db in
            let row = try Row.fetchOne(db, sql: """
                SELECT COUNT(*) AS due, MIN(next_attempt_at) AS oldest FROM deliveries INDEXED BY deliveries_due
                WHERE status = 'pending' AND next_attempt_at <= ?
                """, arguments: [now.microseconds])
            return (row?["due"] ?? 0, (row?["oldest"] as Int64?).map(Date.init(microseconds:)))
        }
    }
}
