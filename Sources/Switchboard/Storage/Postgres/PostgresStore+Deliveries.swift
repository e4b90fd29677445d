import CEL
import Foundation
import PostgresNIO

/// The delivery outbox and log, leases and instances of ``PostgresStore``.
extension PostgresStore {
    public func claimDueDeliveries(at now: Date, limit: Int, lease: Lease) async throws -> [Delivery] {
        try await rows("""
            UPDATE deliveries SET status = 'sending', lease_owner = \(lease.owner.rawValue),
              lease_expires_at = \(lease.expiresAt.microseconds), updated_at = \(now.microseconds)
            WHERE id IN (SELECT id FROM deliveries WHERE status = 'pending' AND next_attempt_at <= \(now.microseconds)
                         ORDER BY next_attempt_at LIMIT \(limit) FOR UPDATE SKIP LOCKED)
            RETURNING \(unescaped: Self.deliveryColumns)
            """).map(Self.delivery(from:))
    }

    public func commitAttempt(_ commit: AttemptCommit, checkpoint: RunCheckpoint?) async throws -> AttemptCommitOutcome {
        do {
            return try await transaction { [self] connection -> AttemptCommitOutcome in
                if let checkpoint, try await !updateIfCurrent(checkpoint.run, on: connection) { return .conflict }
                let delivery = commit.delivery
                let held = try await rows("""
                    UPDATE deliveries SET status = \(delivery.status.rawValue), attempt_count = \(delivery.attemptCount),
                      next_attempt_at = \(delivery.nextAttemptAt?.microseconds), manual = \(delivery.manual),
                      last_error = \(try delivery.lastError.map(Self.encode)), updated_at = \(delivery.updatedAt.microseconds),
                      lease_owner = NULL, lease_expires_at = NULL
                    WHERE id = \(delivery.id.rawValue) AND status = 'sending' AND attempt_count = \(commit.heldAttempts)
                      AND lease_owner IS NOT DISTINCT FROM \(commit.heldBy?.rawValue)
                    RETURNING id
                    """, on: connection)
                guard !held.isEmpty else { throw Fenced() }
                if let attempt = commit.attempt {
                    try await connection.query("""
                        INSERT INTO delivery_attempts (delivery_id, number, trigger, started_at, duration_ms, request, response,
                          error_class, error_message)
                        VALUES (\(attempt.deliveryID.rawValue), \(attempt.number), \(attempt.trigger.rawValue),
                          \(attempt.startedAt.microseconds), \(attempt.durationMilliseconds), \(attempt.requestText),
                          \(attempt.responseText), \(attempt.errorClass), \(attempt.errorMessage))
                        ON CONFLICT (delivery_id, number) DO UPDATE SET trigger = excluded.trigger, started_at = excluded.started_at,
                          duration_ms = excluded.duration_ms, request = excluded.request, response = excluded.response,
                          error_class = excluded.error_class, error_message = excluded.error_message
                        """, logger: logger)
                }
                if let followUp = commit.followUp { try await insert(followUp, on: connection) }
                if let checkpoint {
                    try await write(steps: checkpoint.steps, deliveries: checkpoint.deliveries, run: checkpoint.run.id, on: connection)
                    try await writeEffects(of: checkpoint, on: connection)
                } else if let change = commit.step {
                    try await record(change, at: delivery.updatedAt, on: connection)
                }
                return .committed
            }
        } catch is Fenced {
            // Thrown to roll back what the transaction wrote before the fence was found to fail.
            return .fenced
        }
    }

    private struct Fenced: Error {}

    public func releaseLeases(heldBy owner: InstanceID) async throws -> Int {
        try await transaction { [self] connection in
            let released = try await rows("""
                UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
                WHERE status = 'sending' AND lease_owner = \(owner.rawValue) RETURNING id
                """, on: connection)
            try await connection.query("UPDATE runs SET lease_owner = NULL, lease_expires_at = NULL WHERE lease_owner = \(owner.rawValue)",
                                       logger: logger)
            return released.count
        }
    }

    public func releaseExpiredLeases(at now: Date) async throws -> Int {
        try await rows("""
            UPDATE deliveries SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL
            WHERE id IN (SELECT id FROM deliveries WHERE status = 'sending'
                           AND (lease_expires_at IS NULL OR lease_expires_at < \(now.microseconds))
                         FOR UPDATE SKIP LOCKED)
            RETURNING id
            """).count
    }

    public func renewLeases(of owner: InstanceID, until: Date) async throws {
        try await quick("""
            UPDATE deliveries SET lease_expires_at = \(until.microseconds) WHERE status = 'sending' AND lease_owner = \(owner.rawValue)
            """)
    }

    public func heartbeat(_ instance: InstanceID, startedAt: Date, at now: Date) async throws {
        try await quick("""
            INSERT INTO instances (id, started_at, heartbeat_at) VALUES (\(instance.rawValue), \(startedAt.microseconds), \(now.microseconds))
            ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
            """)
    }

    public func instances(seenSince since: Date) async throws -> [InstanceRecord] {
        try await rows("""
            SELECT id, started_at, heartbeat_at,
              (SELECT COUNT(*) FROM runs WHERE lease_owner = instances.id),
              (SELECT COUNT(*) FROM deliveries WHERE status = 'sending' AND lease_owner = instances.id)
            FROM instances WHERE heartbeat_at >= \(since.microseconds) ORDER BY id
            """).map { row in
            let (id, started, beat, runs, deliveries) = try row.decode((String, Int64, Int64, Int64, Int64).self)
            return InstanceRecord(id: InstanceID(id), startedAt: Date(microseconds: started), heartbeatAt: Date(microseconds: beat),
                                  leasedRuns: Int(runs), leasedDeliveries: Int(deliveries))
        }
    }

    public func listDeliveries(_ query: DeliveryQuery) async throws -> [Delivery] {
        var filter = PostgresFilter()
        filter.add("run_id", query.run?.rawValue)
        filter.add("connector", query.connector)
        filter.add("status", query.status?.rawValue)
        // The condition of the partial index deliveries_settled, written as it is so that the planner uses it.
        if query.status == .failed || query.status == .dead { filter.add("status IN ('failed', 'dead')") }
        // Ids are time-ordered: a time filter is a range of the primary key.
        filter.add("id", query.since.map { DeliveryID.lowerBound(at: $0).rawValue }, op: ">=")
        filter.add("id", query.until.map { DeliveryID.lowerBound(at: $0).rawValue }, op: "<")
        filter.add("id", query.before?.rawValue, op: "<")
        return try await rows(filter.query("SELECT \(Self.deliveryColumns) FROM deliveries", order: "ORDER BY id DESC",
                                           limit: query.limit)).map(Self.delivery(from:))
    }

    public func delivery(_ id: DeliveryID) async throws -> DeliveryRecord? {
        guard let row = try await rows("SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE id = \(id.rawValue)").first
        else { return nil }
        let attempts = try await rows("SELECT * FROM delivery_attempts WHERE delivery_id = \(id.rawValue) ORDER BY number")
            .map(Self.attempt(from:))
        return DeliveryRecord(delivery: try Self.delivery(from: row), attempts: attempts)
    }

    public func retryDelivery(_ id: DeliveryID, at now: Date, audit: AuditEntry?) async throws -> DeliveryRetryResult {
        try await transaction { [self] connection in
            guard let row = try await rows("""
                SELECT \(unescaped: Self.deliveryColumns) FROM deliveries WHERE id = \(id.rawValue) FOR UPDATE
                """, on: connection).first else { return .notFound }
            let delivery = try Self.delivery(from: row)
            guard delivery.status == .failed || delivery.status == .dead else { return .notRetryable(delivery.status) }
            try await connection.query("""
                UPDATE deliveries SET status = 'pending', next_attempt_at = \(now.microseconds), manual = TRUE,
                  updated_at = \(now.microseconds) WHERE id = \(id.rawValue)
                """, logger: logger)
            let run = delivery.runID.rawValue
            let status = try await rows("SELECT status FROM runs WHERE id = \(run) FOR UPDATE", on: connection).first?
                .decode(String.self)
            if status == RunStatus.failed.rawValue {
                // Reopen the step and every enclosing step, and the run.
                var stepID: String? = delivery.stepID
                var first = true
                while let current = stepID {
                    let parent = try await rows("""
                        UPDATE steps SET status = \(first ? "waiting" : "running"), error = NULL, ended_at = NULL
                        WHERE run_id = \(run) AND step_id = \(current) RETURNING parent
                        """, on: connection).first?.decode(String?.self)
                    first = false
                    stepID = parent ?? nil
                }
                try await connection.query("""
                    UPDATE runs SET status = 'running', error = NULL, wake_at = NULL, updated_at = \(now.microseconds),
                      version = version + 1 WHERE id = \(run)
                    """, logger: logger)
            }
            if let audit { try await insert(audit, on: connection) }
            return .reopened(delivery.runID)
        }
    }

    /// Attempts are numbered as they are written (`seq`), so the oldest by `seq` are the oldest by time.
    public func pruneAttempts(before cutoff: Date, limit: Int) async throws -> Int {
        try await rows("""
            DELETE FROM delivery_attempts WHERE seq IN
              (SELECT seq FROM (SELECT seq, started_at FROM delivery_attempts ORDER BY seq LIMIT \(limit)) AS oldest
               WHERE started_at < \(cutoff.microseconds))
            RETURNING seq
            """).count
    }

    public func deliveryBacklog(at now: Date) async throws -> (due: Int, oldestDue: Date?) {
        let row = try await rows("""
            SELECT COUNT(*), MIN(next_attempt_at) FROM deliveries WHERE status = 'pending' AND next_attempt_at <= \(now.microseconds)
            """).first
        guard let (due, oldest) = try row?.decode((Int64, Int64?).self) else { return (0, nil) }
        return (Int(due), oldest.map(Date.init(microseconds:)))
    }
}
