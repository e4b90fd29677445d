import CEL
import Foundation

/// The one place that remembers: events, runs and their steps, lists and API keys.
///
/// Implementation: ``SQLiteStore`` (embedded). `Tests/SwitchboardTests/Storage/StoreContractTests.swift`
/// is the contract every implementation passes. Every method that writes several rows writes them
/// in one transaction.
///
/// ```swift
/// let store = try SQLiteStore(path: ".switchboard/switchboard.sqlite")
/// try await store.migrate()
/// ```
public protocol Store: Sendable {
    /// Creates or upgrades the schema; safe to call on every start.
    func migrate() async throws
    /// Succeeds when the store answers.
    func ping() async throws

    /// Persists an event and the runs it triggers, each with the progress it already made (its
    /// steps and deliveries), in one transaction; or reports that the event was seen before.
    func ingest(_ event: EventRecord, runs: [RunCheckpoint]) async throws -> IngestOutcome
    /// Persists new runs (API triggers) with the progress they already made, in one transaction.
    func createRuns(_ runs: [RunCheckpoint]) async throws
    /// A run and its steps.
    func loadRun(_ id: RunID) async throws -> RunSnapshot?
    /// Runs matching a query, newest first.
    func listRuns(_ query: RunQuery) async throws -> [RunRecord]
    /// Commits a run's progress: the run row and every step record that changed. Throws
    /// ``StoreError/conflict(_:)`` when the run changed since the version the checkpoint was made from.
    func save(_ checkpoint: RunCheckpoint) async throws
    /// Runs that were pending or running when the process stopped.
    func unfinishedRuns() async throws -> [RunID]
    /// Waiting runs whose wake time has come.
    func dueRuns(at now: Date, limit: Int) async throws -> [RunID]
    /// Records an outside answer (a review decision) on a waiting step, once, and persists the
    /// deliveries that report it (a Slack message update) in the same transaction.
    func resolveWait(run: RunID, step: String, output: JSON, followUps: [Delivery]) async throws -> WaitResolution
    /// Persists deliveries that belong to no checkpoint (a detached notice).
    func enqueue(_ deliveries: [Delivery]) async throws

    /// Records a verified callback: refuses a message id seen before, applies it to the step that
    /// waits for its correlation id (reading it with `resolve`, in the same transaction), or keeps
    /// it, pending, until its `expiresAt`. `resolve` may be called more than once.
    func receiveCallback(_ callback: InboundCallback,
                         resolve: @escaping @Sendable (CallbackMatch) -> ConnectorOutcome) async throws -> CallbackReceipt
    /// Records a callback that changed nothing (a bad signature, an unreadable body), for the operator.
    func recordCallback(_ callback: InboundCallback) async throws
    /// Applies pending callbacks whose step now waits for them, and marks expired ones unmatched;
    /// returns the runs that callbacks changed.
    func matchPendingCallbacks(at now: Date, resolve: @escaping @Sendable (CallbackMatch) -> ConnectorOutcome) async throws -> [RunID]
    /// Recorded callbacks, newest first.
    func listCallbacks(connector: String?, status: CallbackStatus?, limit: Int) async throws -> [InboundCallback]

    /// Creates or replaces a list.
    func putList(_ list: ListRecord) async throws
    /// Adds items to an existing list; false when the list does not exist.
    func addListItems(_ name: String, items: [String]) async throws -> Bool
    /// Removes one item; false when the list or the item does not exist.
    func removeListItem(_ name: String, item: String) async throws -> Bool
    /// Deletes a list; false when it does not exist.
    func deleteList(_ name: String) async throws -> Bool
    func list(_ name: String) async throws -> ListRecord?
    func lists() async throws -> [ListRecord]
    /// A number that changes whenever any list changes.
    func listsRevision() async throws -> Int64

    /// Takes up to `limit` due deliveries (pending, next attempt due) and marks them sending.
    func claimDueDeliveries(at now: Date, limit: Int) async throws -> [Delivery]
    /// Records an attempt and its consequence in one transaction: the delivery's new state and,
    /// when the delivery is settled, its step's output or error and a wake-up for its run.
    func recordAttempt(_ result: AttemptResult, at now: Date) async throws
    /// The same, and when the attempt settled its step, advances the run in the same transaction
    /// with `advance` (given the run as it now is); returns the checkpoint it committed.
    /// `advance` may be called more than once (a store may run the write again, on the same run or
    /// a fresher one): only the returned checkpoint was committed.
    func recordAttempt(_ result: AttemptResult, at now: Date,
                       advance: @escaping @Sendable (RunSnapshot) -> RunCheckpoint?) async throws -> RunCheckpoint?
    /// Puts every delivery left `sending` by a stopped process back to `pending` (single instance).
    func releaseDeliveries() async throws -> Int
    func listDeliveries(_ query: DeliveryQuery) async throws -> [Delivery]
    func delivery(_ id: DeliveryID) async throws -> DeliveryRecord?
    /// Sends a failed or dead delivery again: reopens it, its step, the step's parents and a
    /// failed run, in one transaction.
    func retryDelivery(_ id: DeliveryID, at now: Date) async throws -> DeliveryRetryResult
    /// Deletes up to `limit` attempts that started before `cutoff`; returns how many.
    func pruneAttempts(before cutoff: Date, limit: Int) async throws -> Int
    /// How many deliveries are due now, and the oldest due time.
    func deliveryBacklog(at now: Date) async throws -> (due: Int, oldestDue: Date?)

    func createAPIKey(_ key: APIKeyRecord) async throws
    func apiKeys() async throws -> [APIKeyRecord]
    /// Revokes a key by name; false when no active key has that name.
    func revokeAPIKey(named name: String) async throws -> Bool
    func apiKey(hash: String) async throws -> APIKeyRecord?
}

extension Store {
    /// Persists an event and runs that have not started.
    public func ingest(_ event: EventRecord, runs: [RunRecord]) async throws -> IngestOutcome {
        try await ingest(event, runs: runs.map { RunCheckpoint(run: $0, steps: []) })
    }

    /// Records an outside answer on a waiting step, once.
    public func resolveWait(run: RunID, step: String, output: JSON) async throws -> WaitResolution {
        try await resolveWait(run: run, step: step, output: output, followUps: [])
    }

    /// Persists runs that have not started.
    public func createRuns(_ runs: [RunRecord]) async throws {
        try await createRuns(runs.map { RunCheckpoint(run: $0, steps: []) })
    }
}

/// A storage failure, with what was being done. Values never appear in `description`.
public struct StoreError: Error, CustomStringConvertible {
    public enum Code: Sendable { case duplicate, notFound, corrupt, unsupportedURL, conflict }
    public let code: Code
    public let detail: String

    public static func duplicate(_ detail: String) -> StoreError { StoreError(code: .duplicate, detail: detail) }
    public static func corrupt(_ detail: String) -> StoreError { StoreError(code: .corrupt, detail: detail) }
    public static func unsupportedURL(_ detail: String) -> StoreError { StoreError(code: .unsupportedURL, detail: detail) }
    public static func conflict(_ detail: String) -> StoreError { StoreError(code: .conflict, detail: detail) }

    public var description: String { detail }
}
