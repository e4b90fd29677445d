import CEL
import Foundation
import GRDB

/// Inbound callbacks of ``SQLiteStore``: replay protection, matching, and the early-callback buffer.
extension SQLiteStore {
    public func receiveCallback(_ callback: InboundCallback,
                                change: @escaping @Sendable (CallbackMatch) -> CallbackChange?) async throws -> CallbackReceipt
    {
        try await commits.write { db in
            var callback = callback
            if let messageID = callback.messageID, try Int.fetchOne(db, sql: """
                SELECT 1 FROM callbacks WHERE connector = ? AND message_id = ? AND status IN ('matched', 'pending', 'unmatched')
                """, arguments: [callback.connector, messageID]) != nil
            {
                callback.status = .replayed
                callback.error = "message id \(messageID) was received before"
                callback.payload = nil
                try Self.insert(callback, db)
                return .replayed
            }
            if let correlation = callback.correlation,
               let match = try Self.waitingStep(callback.connector, correlation, payload: callback.payload ?? .null, db)
            {
                try Self.write(change(match), callback.receivedAt, db)
                callback.status = .matched
                callback.runID = match.runID
                callback.stepID = match.stepID
                callback.expiresAt = nil
                try Self.insert(callback, db)
                return .matched(match.runID)
            }
            callback.status = .pending
            try Self.insert(callback, db)
            return .pending
        }
    }

    public func recordCallback(_ callback: InboundCallback) async throws {
        try await commits.write { db in try Self.insert(callback, db) }
    }

    public func matchPendingCallbacks(at now: Date,
                                      change: @escaping @Sendable (CallbackMatch) -> CallbackChange?) async throws -> [RunID]
    {
        // The inbox sweeps every second: with nothing pending, a read answers without taking the writer.
        let anyPending = try await pool.read { db in
            try Int.fetchOne(db, sql: "SELECT 1 FROM callbacks WHERE status = 'pending' LIMIT 1") != nil
        }
        guard anyPending else { return [] }
        return try await commits.write { db in
            let pending = try Row.fetchAll(db, sql: "SELECT * FROM callbacks WHERE status = 'pending' ORDER BY received_at LIMIT 500")
                .map(Self.callback(from:))
            var runs: [RunID] = []
            for callback in pending {
                if let correlation = callback.correlation,
                   let match = try Self.waitingStep(callback.connector, correlation, payload: callback.payload ?? .null, db)
                {
                    try Self.write(change(match), now, db)
                    try db.cached(sql: "UPDATE callbacks SET status = 'matched', run_id = ?, step_id = ?, expires_at = NULL WHERE id = ?",
                                  arguments: [match.runID.rawValue, match.stepID, callback.id.rawValue])
                    runs.append(match.runID)
                } else if let expiry = callback.expiresAt, expiry <= now {
                    try db.cached(sql: """
                        UPDATE callbacks SET status = 'unmatched', error = 'no step recorded its correlation id in time' WHERE id = ?
                        """, arguments: [callback.id.rawValue])
                }
            }
            return runs
        }
    }

    public func listCallbacks(connector: String?, status: CallbackStatus?, limit: Int) async throws -> [InboundCallback] {
        try await pool.read { db in
            var filter = SQLFilter()
            filter.add("connector = ?", connector)
            filter.add("status = ?", status?.rawValue)
            return try Row.fetchAll(db, sql: "SELECT * FROM callbacks \(filter.whereClause) ORDER BY id DESC LIMIT ?",
                                    arguments: filter.arguments + [limit]).map(Self.callback(from:))
        }
    }

    /// The step that waits for a connector's callback with this correlation id, if any.
    private static func waitingStep(_ connector: String, _ correlation: String, payload: JSON,
                                    _ db: Database) throws -> CallbackMatch? {
        guard let row = try Row.fetchOne(try db.cachedStatement(sql: """
            SELECT steps.run_id, steps.step_id, runs.workflow, runs.workflow_version FROM steps JOIN runs ON runs.id = steps.run_id
            WHERE steps.callback_connector = ? AND steps.correlation = ? AND steps.status = 'waiting'
              AND steps.output IS NULL AND steps.error IS NULL
            LIMIT 1
            """), arguments: [connector, correlation]) else { return nil }
        return CallbackMatch(runID: RunID(row["run_id"] as String), workflow: row["workflow"],
                             workflowVersion: row["workflow_version"], stepID: row["step_id"],
                             awaited: CallbackKey(connector: connector, correlation: correlation), payload: payload)
    }

    /// Writes what the engine made of a callback into its waiting step: the step's change, a
    /// follow-up delivery, and the run's version moved (made due when the change settles the step).
    private static func write(_ change: CallbackChange?, _ now: Date, _ db: Database) throws {
        guard let change else { return }
        try record(change.step, at: now, db)
        if let followUp = change.followUp { try insert(followUp, db) }
    }

    static func insert(_ callback: InboundCallback, _ db: Database) throws {
        try db.cached(sql: """
            INSERT INTO callbacks (id, connector, status, message_id, correlation, payload, error, run_id, step_id, received_at,
              expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [callback.id.rawValue, callback.connector, callback.status.rawValue, callback.messageID,
                             callback.correlation, callback.payload?.text, callback.error, callback.runID?.rawValue,
                             callback.stepID, callback.receivedAt.microseconds, callback.expiresAt?.microseconds])
    }

    static func callback(from row: Row) throws -> InboundCallback {
        InboundCallback(
            id: CallbackID(row["id"] as String), connector: row["connector"],
            status: CallbackStatus(rawValue: row["status"]) ?? .invalid, messageID: row["message_id"],
            correlation: row["correlation"], payload: try json(row["payload"]), error: row["error"],
            runID: (row["run_id"] as String?).map(RunID.init), stepID: row["step_id"],
            receivedAt: Date(microseconds: row["received_at"]),
            expiresAt: (row["expires_at"] as Int64?).map(Date.init(microseconds:)))
    }
}
