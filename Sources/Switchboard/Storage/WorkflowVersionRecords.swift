import Foundation

/// A version of a workflow: one distinct content of its file, kept with its source so that a run
/// started on it is interpreted by it until it ends, whatever the file says later.
public struct WorkflowVersionRecord: Sendable, Equatable {
    public var workflow: String
    /// 1, 2, ... per workflow id, in the order the contents were first seen.
    public var version: Int
    /// The SHA-256 of the file's bytes, hex.
    public var sha256: String
    /// The file's text.
    public var source: String
    public var createdAt: Date

    public init(workflow: String, version: Int, sha256: String, source: String, createdAt: Date) {
        self.workflow = workflow
        self.version = version
        self.sha256 = sha256
        self.source = source
        self.createdAt = createdAt
    }

    /// As the API writes it: `v2`.
    public var label: String { "v\(version)" }
}
