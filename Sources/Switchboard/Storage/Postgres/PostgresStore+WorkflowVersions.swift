import Foundation
import PostgresNIO

/// Workflow versions in ``PostgresStore``.
extension PostgresStore {
    public func recordWorkflowVersion(workflow: String, sha256: String, source: String, at now: Date) async throws
        -> WorkflowVersionRecord
    {
        // Two instances recording new contents of one workflow at once may both take the number
        // after the last; the second insert then conflicts on (workflow, version), does nothing,
        // and is made again with the next number.
        for _ in 0 ..< 10 {
            let found = try await transaction { [self] connection in
                try await connection.query("""
                    INSERT INTO workflow_versions (workflow, version, sha256, source, created_at)
                    SELECT \(workflow), COALESCE(MAX(version), 0) + 1, \(sha256), \(source), \(now.microseconds)
                    FROM workflow_versions WHERE workflow = \(workflow)
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
                return try await rows("""
                    SELECT \(unescaped: Self.versionColumns) FROM workflow_versions WHERE workflow = \(workflow) AND sha256 = \(sha256)
                    """, on: connection).first.map(Self.version(from:))
            }
            if let found { return found }
        }
        throw StoreError.conflict("workflow \(workflow): a new version could not be numbered")
    }

    public func workflowVersions(_ workflow: String?) async throws -> [WorkflowVersionRecord] {
        var filter = PostgresFilter()
        filter.add("workflow", workflow)
        return try await rows(filter.query("SELECT \(Self.versionColumns) FROM workflow_versions", order: "ORDER BY workflow, version",
                                           limit: 100_000)).map(Self.version(from:))
    }

    static let versionColumns = "workflow, version, sha256, source, created_at"

    static func version(from row: PostgresRow) throws -> WorkflowVersionRecord {
        let (workflow, version, sha256, source, createdAt) = try row.decode((String, Int32, String, String, Int64).self)
        return WorkflowVersionRecord(workflow: workflow, version: Int(version), sha256: sha256, source: source,
                                     createdAt: Date(microseconds: createdAt))
    }
}
