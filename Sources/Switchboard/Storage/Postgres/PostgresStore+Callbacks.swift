import CEL
import Foundation
import PostgresNIO

/// Inbound callbacks of ``PostgresStore``: replay protection (a unique key on the connector and
/// message id of every callback that was taken), matching, and the early-callback buffer.
extension PostgresStore {
    public func receiveCallback(_ callback: InboundCallback,
                                change: @escaping @Sendable (CallbackMatch) -> CallbackChange?) async throws -> CallbackReceipt
    {
        do {
            return try await transaction { [self] connection -> CallbackReceipt in
                var callback = callback
                if let messageID = callback.messageID, try await !rows("""
                    SELECT 1 FROM callbacks WHERE connector = \(callback.connector) AND message_id = \(messageID)
                      AND status IN ('matched', 'pending', 'unmatched')
                    """, on: connection).isEmpty
                {
                    throw Replayed()
                }
                if let correlation = callback.correlation,
                   let match = try await waitingStep(callback.connector, correlation, payload: callback.payload ?? .null, on: connection)
                {
                    try await write(change(match), callback.receivedAt, on: connection)
                    callback.status = .matched
                    callback.runID = match.runID
                    callback.stepID = match.stepID
                    callback.expiresAt = nil
                    try await insert(callback, on: connection)
                    return .matched(match.runID)
                }
                callback.status = .pending
                try await insert(callback, on: connection)
                return .pending
            }
        } catch let error as PSQLError where error.isUniqueViolation {
            // The same message taken by another instance at the same moment.
            try await recordReplay(callback)
            return .replayed
        } catch is Replayed {
            try await recordReplay(callback)
            return .replayed
        }
    }

    private struct Replayed: Error {}

    private func recordReplay(_ callback: InboundCallback) async throws {
        var replay = callback
        replay.status = .replayed
        replay.error = "message id \(callback.messageID ?? "") was received before"
        replay.payload = nil
        try await recordCallback(replay)
    }

    public func recordCallback(_ callback: InboundCallback) async throws {
        try await transaction { [self] connection in try await insert(callback, on: connection) }
    }

    public func matchPendingCallbacks(at now: Date,
                                      change: @escaping @Sendable (CallbackMatch) -> CallbackChange?) async throws -> [RunID]
    {
        // The inbox sweeps every second: with nothing pending, one read answers.
        guard try await !rows("SELECT 1 FROM callbacks WHERE status = 'pending' LIMIT 1").isEmpty else { return [] }
        return try await transaction { [self] connection in
            let pending = try await rows("""
                SELECT * FROM callbacks WHERE status = 'pending' ORDER BY received_at LIMIT 500 FOR UPDATE SKIP LOCKED
                """, on: connection).map(Self.callback(from:))
            var runs: [RunID] = []
            for callback in pending {
                if let correlation = callback.correlation,
                   let match = try await waitingStep(callback.connector, correlation, payload: callback.payload ?? .null, on: connection)
                {
                    try await write(change(match), now, on: connection)
                    try await connection.query("""
                        UPDATE callbacks SET status = 'matched', run_id = \(match.runID.rawValue), step_id = \(match.stepID),
                          expires_at = NULL WHERE id = \(callback.id.rawValue)
                        """, logger: logger)
                    runs.append(match.runID)
                } else if let expiry = callback.expiresAt, expiry <= now {
                    try await connection.query("""
                        UPDATE callbacks SET status = 'unmatched', error = 'no step recorded its correlation id in time'
                        WHERE id = \(callback.id.rawValue)
                        """, logger: logger)
                }
            }
            return runs
        }
    }

    public func listCallbacks(connector: String?, status: CallbackStatus?, limit: Int) async throws -> [InboundCallback] {
        var filter = PostgresFilter()
        filter.add("connector", connector)
        filter.add("status", status?.rawValue)
        return try await rows(filter.query("SELECT * FROM callbacks", order: "ORDER BY id DESC", limit: limit)).map(Self.callback(from:))
    }

    /// The step that waits for a connector's callback with this correlation id, if any, locked.
    private func waitingStep(_ connector: String, _ correlation: String, payload: JSON,
                             on connection: PostgresConnection) async throws -> CallbackMatch? {
        guard let row = try await rows("""
            SELECT steps.run_id, steps.step_id, runs.workflow, runs.workflow_version FROM steps JOIN runs ON runs.id = steps.run_id
            WHERE steps.callback_connector = \(connector) AND steps.correlation = \(correlation) AND steps.status = 'waiting'
              AND steps.output IS NULL AND steps.error IS NULL
            LIMIT 1 FOR UPDATE OF steps
            """, on: connection).first else { return nil }
        let (run, step, workflow, version) = try row.decode((String, String, String, Int32?).self)
        return CallbackMatch(runID: RunID(run), workflow: workflow, workflowVersion: version.map(Int.init), stepID: step,
                             awaited: CallbackKey(connector: connector, correlation: correlation), payload: payload)
    }

    /// Writes what the engine made of a callback into its waiting step (see ``SQLiteStore``).
    private func write(_ change: CallbackChange?, _ now: Date, on connection: PostgresConnection) async throws {
        guard let change else { return }
        try await record(change.step, at: now, on: connection)
        if let followUp = change.followUp { try await insert(followUp, on: connection) }
    }

    func insert(_ callback: InboundCallback, on connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO callbacks (id, connector, status, message_id, correlation, payload, error, run_id, step_id, received_at,
              expires_at)
            VALUES (\(callback.id.rawValue), \(callback.connector), \(callback.status.rawValue), \(callback.messageID),
              \(callback.correlation), \(callback.payload?.text), \(callback.error), \(callback.runID?.rawValue), \(callback.stepID),
              \(callback.receivedAt.microseconds), \(callback.expiresAt?.microseconds))
            """, logger: logger)
    }

    static func callback(from row: PostgresRow) throws -> InboundCallback {
        let r = row.makeRandomAccess()
        return InboundCallback(
            id: CallbackID(try r["id"].decode(String.self)), connector: try r["connector"].decode(String.self),
            status: CallbackStatus(rawValue: try r["status"].decode(String.self)) ?? .invalid,
            messageID: try r["message_id"].decode(String?.self), correlation: try r["correlation"].decode(String?.self),
            payload: try json(try r["payload"].decode(String?.self)), error: try r["error"].decode(String?.self),
            runID: try r["run_id"].decode(String?.self).map(RunID.init), stepID: try r["step_id"].decode(String?.self),
            receivedAt: Date(microseconds: try r["received_at"].decode(Int64.self)),
            expiresAt: try r["expires_at"].decode(Int64?.self).map(Date.init(microseconds:)))
    }
}
