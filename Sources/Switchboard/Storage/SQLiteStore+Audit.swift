import CEL
import Foundation
import GRDB

/// The audit log of ``SQLiteStore``: appended in the transaction of the change it records.
extension SQLiteStore {
    static func insert(_ entry: AuditEntry, _ db: Database) throws {
        try db.cached(sql: """
            INSERT INTO audit_log (id, at, actor_kind, actor_name, action, target, outcome, request_id, source_ip, details)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [entry.id.rawValue, entry.at.microseconds, entry.actorKind.rawValue, entry.actorName, entry.action,
                             entry.target, entry.outcome, entry.requestID, entry.sourceIP, entry.details?.text])
    }

    public func recordAudit(_ entry: AuditEntry) async throws {
        try await commits.write { db in try Self.insert(entry, db) }
    }

    public func auditLog(_ query: AuditQuery) async throws -> [AuditEntry] {
        var clauses: [String] = []
        var arguments = StatementArguments()
        if let action = query.action { clauses.append("action = ?"); arguments += [action] }
        if let actor = query.actor { clauses.append("actor_name = ?"); arguments += [actor] }
        if let since = query.since { clauses.append("at >= ?"); arguments += [since.microseconds] }
        if let until = query.until { clauses.append("at < ?"); arguments += [until.microseconds] }
        if let before = query.before { clauses.append("id < ?"); arguments += [before.rawValue] }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try await pool.read { [arguments] db in
            try Row.fetchAll(db, sql: "SELECT * FROM audit_log \(filter) ORDER BY id DESC LIMIT \(query.limit)",
                             arguments: arguments).map { row in
                var entry = AuditEntry(at: Date(microseconds: row["at"]), actor: AuditEntry.ActorKind(rawValue: row["actor_kind"]) ?? .system,
                                       name: row["actor_name"], action: row["action"], target: row["target"], outcome: row["outcome"],
                                       requestID: row["request_id"], sourceIP: row["source_ip"],
                                       details: (row["details"] as String?).flatMap { try? JSON.parse($0) })
                entry.id = AuditID(row["id"] as String)
                return entry
            }
        }
    }
}
