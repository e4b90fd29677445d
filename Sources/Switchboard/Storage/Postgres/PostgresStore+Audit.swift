import CEL
import Foundation
import PostgresNIO

/// The audit log of ``PostgresStore``: appended in the transaction of the change it records.
extension PostgresStore {
    func insert(_ entry: AuditEntry, on connection: PostgresConnection) async throws {
        try await connection.query("""
            INSERT INTO audit_log (id, at, actor_kind, actor_name, action, target, outcome, request_id, source_ip, details)
            VALUES (\(entry.id.rawValue), \(entry.at.microseconds), \(entry.actorKind.rawValue), \(entry.actorName), \(entry.action),
                    \(entry.target), \(entry.outcome), \(entry.requestID), \(entry.sourceIP), \(entry.details?.text))
            """, logger: logger)
    }

    public func recordAudit(_ entry: AuditEntry) async throws {
        try await transaction { [self] connection in try await insert(entry, on: connection) }
    }

    public func auditLog(_ query: AuditQuery) async throws -> [AuditEntry] {
        var filter = PostgresFilter()
        filter.add("action", query.action)
        filter.add("actor_name", query.actor)
        filter.add("at", query.since?.microseconds, op: ">=")
        filter.add("at", query.until?.microseconds, op: "<")
        filter.add("id", query.before?.rawValue, op: "<")
        let columns = "id, at, actor_kind, actor_name, action, target, outcome, request_id, source_ip, details"
        return try await rows(filter.query("SELECT \(columns) FROM audit_log", order: "ORDER BY id DESC", limit: query.limit)).map { row in
            let (id, at, kind, name, action, target, outcome, requestID, sourceIP, details) =
                try row.decode((String, Int64, String, String, String, String, String, String?, String?, String?).self)
            var entry = AuditEntry(at: Date(microseconds: at), actor: AuditEntry.ActorKind(rawValue: kind) ?? .system, name: name,
                                   action: action, target: target, outcome: outcome, requestID: requestID, sourceIP: sourceIP,
                                   details: details.flatMap { try? JSON.parse($0) })
            entry.id = AuditID(id)
            return entry
        }
    }
}
