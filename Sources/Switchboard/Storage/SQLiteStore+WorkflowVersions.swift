import Foundation
import GRDB

/// Workflow versions in ``SQLiteStore``.
extension SQLiteStore {
    public func recordWorkflowVersion(workflow: String, sha256: String, source: String, at now: Date) async throws
        -> WorkflowVersionRecord
    {
        try await commits.write { db in
            // One writer at a time: the number after the last is free.
            try db.cached(sql: """
                INSERT INTO workflow_versions (workflow, version, sha256, source, created_at)
                SELECT ?, COALESCE(MAX(version), 0) + 1, ?, ?, ? FROM workflow_versions WHERE workflow = ?
                ON CONFLICT (workflow, sha256) DO NOTHING
                """, arguments: [workflow, sha256, source, now.microseconds, workflow])
        }
        return try await pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT \(Self.versionColumns) FROM workflow_versions WHERE workflow = ? AND sha256 = ?",
                                             arguments: [workflow, sha256]) else {
                throw StoreError.corrupt("workflow version of \(workflow) not found after it was recorded")
            }
            return Self.version(from: row)
        }
    }

    public func workflowVersions(_ workflow: String?) async throws -> [WorkflowVersionRecord] {
        try await pool.read { db in
            let rows = if let workflow {
                try Row.fetchAll(db, sql: "SELECT \(Self.versionColumns) FROM workflow_versions WHERE workflow = ? ORDER BY version",
                                 arguments: [workflow])
            } else {
                try Row.fetchAll(db, sql: "SELECT \(Self.versionColumns) FROM workflow_versions ORDER BY workflow, version")
            }
            return rows.map(Self.version(from:))
        }
    }

    static let versionColumns = "workflow, version, sha256, source, created_at"

    static func version(from row: Row) -> WorkflowVersionRecord {
        WorkflowVersionRecord(workflow: row[0], version: row[1], sha256: row[2], source: row[3], createdAt: Date(microseconds: row[4]))
    }
}
