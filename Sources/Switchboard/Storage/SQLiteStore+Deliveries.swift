import CEL
import Foundation
import GRDB

/// The delivery outbox and log of ``SQLiteStore``.
extension SQLiteStore {
    public func claimDueDeliveries(at now: Date, limit: Int) async throws -> [Delivery] {
        try await commits.write { db in
            try Row.fetchAll(db, sql: """
                UPDATE deliveries SET status = 'sending', updated_at = ?
                WHERE id IN (SELECT id FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending' AND next_attempt_at <= ?
                             ORDER BY next_attempt_at LIMIT ?)
                RETURNING \(DeliveryColumn.list)
                """, arguments: [now.microseconds, now.microseconds, limit]).map(Self.delivery(from:))
        }
    }

    public func recordAttempt(_ result: AttemptResult, at now: Date) async throws {
        _ = try await commits.write { [recentEvents, recentRuns] db in
            try Self.record(result, now, advance: nil, events: recentEvents, runs: recentRuns, db)
        }
    }

    public func recordAttempt(_ result: AttemptResult, at now: Date,
                              advance: @escaping @Sendable (RunSnapshot) -> RunCheckpoint?) async throws -> RunCheckpoint?
    {
        let settled = try await commits.write { [recentEvents, recentRuns] db in
            try Self.record(result, now, advance: advance, events: recentEvents, runs: recentRuns, db)
        }
        guard let settled else { return nil }
        recentRuns.remember(Self.stored(settled.checkpoint, over: settled.base))
        return settled.checkpoint
    }

    /// A checkpoint committed while recording a result, and the run it was made from.
    struct Settled: Sendable {
        var checkpoint: RunCheckpoint
        var base: RunSnapshot
    }

    /// What a successful delivery writes into the step that waits for it.
    struct StepAnswer {
        var delivery: Delivery
        var output: JSON
        var attempts: Int

        func matches(_ step: StepRecord) -> Bool {
            step.id == delivery.stepID && step.deliveryID == delivery.id && step.status == .waiting
        }

        func write(_ db: Database) throws {
            try db.execute(cached: """
                UPDATE steps SET output = ?, error = NULL, attempts = ? WHERE run_id = ? AND step_id = ? AND delivery_id = ?
                  AND status = 'waiting'
                """, [.text(output.text), .integer(attempts), .text(delivery.runID.rawValue), .text(delivery.stepID),
                      .text(delivery.id.rawValue)])
        }
    }

    private static func record(_ result: AttemptResult, _ now: Date,
                               advance: (@Sendable (RunSnapshot) -> RunCheckpoint?)?, events: RecentEvents, runs: RecentRuns,
                               _ db: Database) throws -> Settled?
    {
        do {
            let delivery: Delivery
            if let claimed = result.claimed, claimed.id == result.deliveryID {
                delivery = claimed
            } else {
                guard let row = try Row.fetchOne(
                    try db.cachedStatement(sql: "SELECT \(DeliveryColumn.listWithoutRequest) FROM deliveries WHERE id = ?"),
                    arguments: [result.deliveryID.rawValue]) else {
                    return nil
                }
                delivery = try deliveryWithoutRequest(from: row)
            }
            if let attempt = result.attempt {
                try db.execute(
                    cached: """
                    INSERT OR REPLACE INTO delivery_attempts (delivery_id, number, trigger, started_at, duration_ms, request,
                      response, error_class, error_message) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                    [.text(attempt.deliveryID.rawValue), .integer(attempt.number), .text(attempt.trigger.rawValue),
                     .integer(attempt.startedAt.microseconds), .integer(attempt.durationMilliseconds), .text(attempt.requestText),
                     .text(attempt.responseText), .text(attempt.errorClass), .text(attempt.errorMessage)])
            }
            let attempts = delivery.attemptCount + (result.attempt == nil ? 0 : 1)
            switch result.outcome {
            case let .succeeded(output):
                try succeed(delivery, attempts: attempts, now, db)
                if delivery.detached { return nil }
                return try settle(delivery.runID, StepAnswer(delivery: delivery, output: output, attempts: max(attempts, 1)), now,
                                  advance, events, runs, db)
            case let .awaiting(correlation):
                try succeed(delivery, attempts: attempts, now, db)
                if delivery.detached { return nil }
                try db.cached(sql: """
                    UPDATE steps SET callback_connector = ?, correlation = ?, attempts = ? WHERE run_id = ? AND step_id = ?
                      AND delivery_id = ? AND status = 'waiting'
                    """, arguments: [delivery.connector, correlation, max(attempts, 1), delivery.runID.rawValue, delivery.stepID,
                                     delivery.id.rawValue])
                return try settle(delivery.runID, nil, now, advance, events, runs, db)
            case let .followUp(request):
                try succeed(delivery, attempts: attempts, now, db)
                try followUp(delivery, request, now, db)
            case let .retry(at):
                try db.cached(sql: """
                    UPDATE deliveries SET status = 'pending', attempt_count = ?, next_attempt_at = ?, manual = 0,
                      last_error = ?, updated_at = ? WHERE id = ?
                    """, arguments: [attempts, at.microseconds, try result.attempt.flatMap(attemptError).map(encode),
                                     now.microseconds, delivery.id.rawValue])
                try db.cached(sql: "UPDATE steps SET attempts = ? WHERE run_id = ? AND step_id = ? AND delivery_id = ?",
                               arguments: [attempts, delivery.runID.rawValue, delivery.stepID, delivery.id.rawValue])
                if !delivery.detached { try touch(delivery.runID, db) }
            case let .gaveUp(status, error):
                try db.cached(sql: """
                    UPDATE deliveries SET status = ?, attempt_count = ?, next_attempt_at = NULL, manual = 0, last_error = ?,
                      updated_at = ? WHERE id = ?
                    """, arguments: [status.rawValue, attempts, try encode(error), now.microseconds, delivery.id.rawValue])
                if delivery.detached { return nil }
                try db.cached(sql: """
                    UPDATE steps SET error = ?, attempts = ? WHERE run_id = ? AND step_id = ? AND delivery_id = ? AND status = 'waiting'
                    """, arguments: [try encode(error), max(attempts, 1), delivery.runID.rawValue, delivery.stepID,
                                     delivery.id.rawValue])
                return try settle(delivery.runID, nil, now, advance, events, runs, db)
            case let .postponed(until):
                try db.cached(sql: "UPDATE deliveries SET status = 'pending', next_attempt_at = ?, updated_at = ? WHERE id = ?",
                               arguments: [until.microseconds, now.microseconds, delivery.id.rawValue])
            }
            return nil
        }
    }

    private static func succeed(_ delivery: Delivery, attempts: Int, _ now: Date, _ db: Database) throws {
        try db.execute(cached: """
            UPDATE deliveries SET status = 'succeeded', attempt_count = ?, next_attempt_at = NULL, manual = 0,
              last_error = NULL, updated_at = ? WHERE id = ?
            """, [.integer(attempts), .integer(now.microseconds), .text(delivery.id.rawValue)])
    }

    /// The next request of a step: a new delivery, which the step now waits for instead.
    static func followUp(_ delivery: Delivery, _ request: OutboundRequest, _ now: Date, _ db: Database) throws {
        let next = Delivery(id: .generate(at: now), runID: delivery.runID, stepID: delivery.stepID, connector: delivery.connector,
                            operation: delivery.operation, request: request, retry: delivery.retry, nextAttemptAt: now,
                            detached: delivery.detached, createdAt: now)
        try insert(next, db)
        if delivery.detached { return }
        try db.cached(sql: """
            UPDATE steps SET delivery_id = ?, callback_connector = NULL, correlation = NULL WHERE run_id = ? AND step_id = ?
              AND status = 'waiting'
            """, arguments: [next.id.rawValue, delivery.runID.rawValue, delivery.stepID])
        // A checkpoint computed before this must not write the old delivery back.
        try touch(delivery.runID, db)
    }

    /// After a step's delivery settled: advance the run here, in this transaction, when the caller
    /// can; otherwise mark it due so that the scheduler advances it.
    ///
    /// A successful delivery's `answer` is written into its step here too. When the run is in
    /// ``RecentRuns``, the checkpoint is made from that copy and commits only if the copy is at the
    /// version the store has: the checkpoint's own versioned UPDATE of the run checks it, so
    /// nothing is read, when the answer's UPDATE can be left out (the checkpoint rewrites the step
    /// to the same row anyway); otherwise one read of the version comes first.
    private static func settle(_ run: RunID, _ answer: StepAnswer?, _ now: Date,
                               _ advance: (@Sendable (RunSnapshot) -> RunCheckpoint?)?, _ events: RecentEvents,
                               _ runs: RecentRuns, _ db: Database) throws -> Settled?
    {
        guard let advance else {
            try answer?.write(db)
            try wake(run, now, db)
            return nil
        }
        if let answer, var base = runs.latest(run), let index = base.steps.firstIndex(where: answer.matches) {
            let before = base.steps[index]
            base.steps[index].output = answer.output
            base.steps[index].error = nil
            base.steps[index].attempts = answer.attempts
            if let checkpoint = advance(base) {
                // The upsert of `apply` keeps a row's output and error where the checkpoint has none,
                // so the answer's own UPDATE is needed unless the upsert alone gives the same row.
                let sameRow = checkpoint.steps.first { $0.id == before.id }.map { rewritten in
                    (rewritten.output != nil || before.output == answer.output) && (rewritten.error != nil || before.error == nil)
                } ?? false
                // The checkpoint's UPDATE of the run matches only at the copy's version, which every
                // other write moves: then the copy was the store's run. A stale copy writes nothing
                // there, and the run is read below. The answer's own UPDATE, when needed, goes first,
                // so the version is read before it.
                if try sameRow || isCurrent(base.run, db) {
                    if !sameRow { try answer.write(db) }
                    if try applyIfCurrent(checkpoint, existingSteps: base.steps, db) {
                        runs.found(current: true)
                        #if DEBUG
                            let expected = stored(checkpoint, over: base)
                            if let actual = try snapshot(run, db, events: events), actual != expected {
                                assertionFailure("RecentRuns: the run in memory differs from the store's\n\(expected)\n\(actual)")
                            }
                        #endif
                        return Settled(checkpoint: checkpoint, base: base)
                    }
                }
            } else if try isCurrent(base.run, db) {
                runs.found(current: true)
                try answer.write(db)
                try wake(run, now, db)
                return nil
            }
            runs.found(current: false)
        }
        try answer?.write(db)
        if let base = try snapshot(run, db, events: events), let checkpoint = advance(base) {
            try apply(checkpoint, db)
            return Settled(checkpoint: checkpoint, base: base)
        }
        try wake(run, now, db)
        return nil
    }

    /// Whether the store has `run` at its version.
    private static func isCurrent(_ run: RunRecord, _ db: Database) throws -> Bool {
        try Int.fetchOne(try db.cachedStatement(sql: "SELECT version FROM runs WHERE id = ?"), arguments: [run.id.rawValue])
            == run.version
    }

    private static func attemptError(_ attempt: DeliveryAttempt) -> StepError? {
        attempt.errorClass.map { StepError(errorClass: $0, message: attempt.errorMessage ?? $0) }
    }

    public func releaseDeliveries() async throws -> Int {
        try await commits.write { db in
            try db.cached(sql: "UPDATE deliveries SET status = 'pending' WHERE status = 'sending'")
            return db.changesCount
        }
    }

    public func listDeliveries(_ query: DeliveryQuery) async throws -> [Delivery] {
        try await pool.read { db in
            var filter = SQLFilter()
            filter.add("run_id = ?", query.run?.rawValue)
            filter.add("connector = ?", query.connector)
            filter.add("status = ?", query.status?.rawValue)
            filter.add("created_at >= ?", query.since?.microseconds)
            filter.add("created_at < ?", query.until?.microseconds)
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

    public func retryDelivery(_ id: DeliveryID, at now: Date) async throws -> DeliveryRetryResult {
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
