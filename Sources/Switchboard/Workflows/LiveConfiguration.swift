import CEL
import Foundation
import Synchronization

/// The configuration the gateway runs with, and every stored version of its workflows that a run
/// may still be interpreted by.
///
/// A run records the version of its workflow it started on (``RunRecord/workflowVersion``) and is
/// interpreted by that version until it ends, whatever the workflow's file says by then: the
/// version's source is kept in the store (``Store/recordWorkflowVersion(workflow:sha256:source:at:)``)
/// and read again, with the current connectors, the first time a run needs it.
public final class LiveConfiguration: Sendable {
    private struct State {
        var current: Configuration
        /// Stored versions by workflow id and number.
        var stored: [String: [Int: WorkflowVersionRecord]] = [:]
        /// Versions already read from their source.
        var parsed: [String: [Int: Result<Workflow, WorkflowUnavailable>]] = [:]
    }

    private let state: Mutex<State>

    public init(_ configuration: Configuration) {
        state = Mutex(State(current: configuration))
    }

    /// The configuration new events, API triggers and deliveries use.
    public var current: Configuration { state.withLock { $0.current } }

    /// Records the current workflows' contents as versions in the store (new contents get the
    /// next number), marks each workflow with its version, and learns every stored version.
    public func recordVersions(in store: any Store, at now: Date) async throws {
        try await install(current, store: store, at: now)
    }

    /// Puts `configuration` in place of the current one, its workflows' versions recorded first.
    /// Versions read before are read again (with the new connectors) when next needed.
    public func install(_ configuration: Configuration, store: any Store, at now: Date) async throws {
        var configuration = configuration
        for index in configuration.workflows.indices {
            let workflow = configuration.workflows[index]
            let record = try await store.recordWorkflowVersion(workflow: workflow.id, sha256: workflow.sha256,
                                                               source: workflow.source, at: now)
            configuration.workflows[index].version = record.version
        }
        let stored = try await store.workflowVersions(nil)
        state.withLock { state in
            state.current = configuration
            state.parsed = [:]
            for record in stored { state.stored[record.workflow, default: [:]][record.version] = record }
        }
    }

    /// Makes sure the version `run` names is known, reading the store when it is not (a version
    /// another instance recorded after this one started).
    public func prepare(for run: RunRecord, store: any Store) async throws {
        guard let version = run.workflowVersion else { return }
        let known = state.withLock { $0.stored[run.workflow]?[version] != nil }
        if known { return }
        let stored = try await store.workflowVersions(run.workflow)
        state.withLock { state in
            for record in stored { state.stored[record.workflow, default: [:]][record.version] = record }
        }
    }

    /// The workflow `run` is interpreted by: the version it started on, or the current one when it
    /// names none (a run started before versions were kept).
    public func workflow(for run: RunRecord) -> Result<Workflow, WorkflowUnavailable> {
        workflow(run.workflow, version: run.workflowVersion)
    }

    /// A version of a workflow (the current one for nil).
    public func workflow(_ id: String, version: Int?) -> Result<Workflow, WorkflowUnavailable> {
        state.withLock { state in
            let current = state.current.workflow(id)
            guard let version else {
                return current.map { .success($0) } ?? .failure(.unknown(id, version: nil))
            }
            if let current, current.version == version { return .success(current) }
            if let parsed = state.parsed[id]?[version] { return parsed }
            guard let record = state.stored[id]?[version] else {
                return .failure(.unknown(id, version: version))
            }
            let result = state.current.workflow(source: record.source, file: "\(id)@\(record.label)")
                .mapError { WorkflowUnavailable.invalid(id, version: version, $0) }
                .map { workflow -> Workflow in
                    var workflow = workflow
                    workflow.version = version
                    return workflow
                }
            state.parsed[id, default: [:]][version] = result
            return result
        }
    }

    /// Every stored version of a workflow, oldest first.
    public func versions(of workflow: String) -> [WorkflowVersionRecord] {
        state.withLock { ($0.stored[workflow] ?? [:]).values.sorted { $0.version < $1.version } }
    }
}

/// Why a run's workflow cannot be had.
public enum WorkflowUnavailable: Error, Sendable, CustomStringConvertible {
    /// Neither loaded nor stored.
    case unknown(String, version: Int?)
    /// Stored, but its source no longer reads with the current configuration.
    case invalid(String, version: Int, ConfigurationError)

    public var description: String {
        switch self {
        case let .unknown(id, nil): "workflow '\(id)' is not in the loaded configuration"
        case let .unknown(id, version?): "workflow '\(id)' v\(version) is neither loaded nor stored"
        case let .invalid(id, version, error): "workflow '\(id)' v\(version) no longer reads with this configuration: \(error)"
        }
    }
}
