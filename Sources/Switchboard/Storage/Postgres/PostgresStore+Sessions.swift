import Foundation
import PostgresNIO

/// Console sessions in ``PostgresStore``.
extension PostgresStore {
    public func createSession(_ session: ConsoleSession, audit: AuditEntry?) async throws {
        try await transaction { [self] connection in
            try await connection.query("""
                INSERT INTO console_sessions (id, key_hash, csrf_token, created_at, expires_at)
                VALUES (\(session.id), \(session.keyHash), \(session.csrfToken), \(session.createdAt.microseconds),
                        \(session.expiresAt.microseconds))
                """, logger: logger)
            try await connection.query("DELETE FROM console_sessions WHERE expires_at < \(session.createdAt.addingTimeInterval(-86_400).microseconds)",
                                       logger: logger)
            if let audit { try await insert(audit, on: connection) }
        }
    }

    public func session(_ id: String) async throws -> ConsoleSession? {
        guard let row = try await rows("""
            SELECT id, key_hash, csrf_token, created_at, expires_at, ended_at FROM console_sessions WHERE id = \(id)
            """).first else { return nil }
        let (sessionID, keyHash, csrf, created, expires, ended) = try row.decode((String, String, String, Int64, Int64, Int64?).self)
        return ConsoleSession(id: sessionID, keyHash: keyHash, csrfToken: csrf, createdAt: Date(microseconds: created),
                              expiresAt: Date(microseconds: expires), endedAt: ended.map(Date.init(microseconds:)))
    }

    public func endSession(_ id: String, at now: Date) async throws -> Bool {
        try await !rows("""
            UPDATE console_sessions SET ended_at = \(now.microseconds) WHERE id = \(id) AND ended_at IS NULL RETURNING id
            """).isEmpty
    }
}
