import Foundation
import GRDB

/// Console sessions in ``SQLiteStore``.
extension SQLiteStore {
    public func createSession(_ session: ConsoleSession, audit: AuditEntry?) async throws {
        try await commits.write { db in
            try db.cached(sql: """
                INSERT INTO console_sessions (id, key_hash, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
                """, arguments: [session.id, session.keyHash, session.csrfToken, session.createdAt.microseconds,
                                 session.expiresAt.microseconds])
            // Sessions that ended or expired a day ago are of no use any more.
            try db.cached(sql: "DELETE FROM console_sessions WHERE expires_at < ?",
                          arguments: [session.createdAt.addingTimeInterval(-86_400).microseconds])
            if let audit { try Self.insert(audit, db) }
        }
    }

    public func session(_ id: String) async throws -> ConsoleSession? {
        try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: """
                SELECT id, key_hash, csrf_token, created_at, expires_at, ended_at FROM console_sessions WHERE id = ?
                """, arguments: [id]) else { return nil }
            return ConsoleSession(id: row[0], keyHash: row[1], csrfToken: row[2], createdAt: Date(microseconds: row[3]),
                                  expiresAt: Date(microseconds: row[4]), endedAt: (row[5] as Int64?).map(Date.init(microseconds:)))
        }
    }

    public func endSession(_ id: String, at now: Date) async throws -> Bool {
        try await commits.write { db in
            try db.cached(sql: "UPDATE console_sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL",
                          arguments: [now.microseconds, id])
            return db.changesCount == 1
        }
    }
}
