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
    /// A run and its steps. With `allowStale`, a store may answer with a copy it keeps that a
    /// later write has changed: a checkpoint made from it is then refused by its version check,
    /// and the caller loads the run again without.
    func loadRun(_ id: RunID, allowStale: Bool) async throws -> RunSnapshot?
    /// Several runs with their steps, in the order asked, those that exist (a page of the console).
    func loadRuns(_ ids: [RunID]) async throws -> [RunSnapshot]
    /// Runs matching a query, newest first (or oldest first, ``RunQuery/oldestFirst``).
    func listRuns(_ query: RunQuery) async throws -> [RunRecord]
    /// How many runs of `workflow` created at or after `since` have finished, by decision (nil: none).
    func finishedRunCounts(workflow: String, since: Date) async throws -> [Decision?: Int]
    /// Commits a run's progress: the run row and every step record that changed. Throws
    /// ``StoreError/conflict(_:)`` when the run changed since the version the checkpoint was made from.
    func save(_ checkpoint: RunCheckpoint) async throws
    /// Takes up to `limit` runs that need advancing and that no live lease holds — waiting runs whose
    /// wake time has come (oldest first), then runs left pending or running — under `lease`. A
    /// checkpoint of the run ends the lease, and so does an answer from outside that makes it due.
    func claimRuns(at now: Date, limit: Int, lease: Lease) async throws -> [RunID]
    /// Writes an outside answer (a review's decision, ``StepChange/decision(_:run:step:)``) into
    /// the step it is for, if the step still takes it (``StepChange/applies(to:)``), makes the run
    /// due, and persists the deliveries that report it (a Slack message update) and `audit`, in one
    /// transaction.
    func answer(_ change: StepChange, followUps: [Delivery], audit: AuditEntry?) async throws -> WaitResolution
    /// Persists deliveries that belong to no checkpoint (a detached notice).
    func enqueue(_ deliveries: [Delivery]) async throws

    /// Records a verified callback: refuses a message id seen before, or writes into the step that
    /// waits for its correlation id what `change` (the engine's rule, pure) makes of it, with the
    /// run's version moved, or keeps it, pending, until its `expiresAt`; in one transaction.
    func receiveCallback(_ callback: InboundCallback,
                         change: @escaping @Sendable (CallbackMatch) -> CallbackChange?) async throws -> CallbackReceipt
    /// Records a callback that changed nothing (a bad signature, an unreadable body), for the operator.
    func recordCallback(_ callback: InboundCallback) async throws
    /// Applies pending callbacks whose step now waits for them, and marks expired ones unmatched;
    /// returns the runs that callbacks changed.
    func matchPendingCallbacks(at now: Date, change: @escaping @Sendable (CallbackMatch) -> CallbackChange?) async throws -> [RunID]
    /// Recorded callbacks, newest first.
    func listCallbacks(connector: String?, status: CallbackStatus?, limit: Int) async throws -> [InboundCallback]

    // Every write an operator makes takes the audit entry that records it, written in the same
    // transaction when the write changes something (``AuditEntry``).

    /// Creates or replaces a list.
    func putList(_ list: ListRecord, audit: AuditEntry?) async throws
    /// Adds items to an existing list; false when the list does not exist.
    func addListItems(_ name: String, items: [String], audit: AuditEntry?) async throws -> Bool
    /// Removes one item; false when the list or the item does not exist.
    func removeListItem(_ name: String, item: String, audit: AuditEntry?) async throws -> Bool
    /// Deletes a list; false when it does not exist.
    func deleteList(_ name: String, audit: AuditEntry?) async throws -> Bool
    func list(_ name: String) async throws -> ListRecord?
    func lists() async throws -> [ListRecord]
    /// A number that changes whenever any list changes.
    func listsRevision() async throws -> Int64

    /// Takes up to `limit` due deliveries (pending, next attempt due, oldest first) and marks them
    /// `sending` under `lease`.
    func claimDueDeliveries(at now: Date, limit: Int, lease: Lease) async throws -> [Delivery]
    /// Persists what an attempt did, as the engine computed it (``AttemptResult/transition(of:at:)``),
    /// in one transaction: the delivery's new state, the attempt's log record, a follow-up delivery,
    /// and either `checkpoint` (the run advanced with the step's change in it) or, without one, the
    /// step's change alone with the run's version moved and, when the change settles the step, the
    /// run made due so that the scheduler advances it.
    ///
    /// Writes nothing and answers ``AttemptCommitOutcome/conflict`` when the checkpoint's run is no
    /// longer at the checkpoint's version, and ``AttemptCommitOutcome/fenced`` when the delivery is
    /// no longer `sending` with ``AttemptCommit/heldAttempts`` attempts.
    func commitAttempt(_ commit: AttemptCommit, checkpoint: RunCheckpoint?) async throws -> AttemptCommitOutcome
    /// Puts every delivery `owner` holds back to `pending` and lets go of the runs it holds: what an
    /// instance restarted with the same id held before it stopped. Returns how many deliveries.
    func releaseLeases(heldBy owner: InstanceID) async throws -> Int
    /// Puts every delivery whose lease expired before `now` back to `pending`, whoever held it: the
    /// work of an instance that stopped renewing. Returns how many.
    func releaseExpiredLeases(at now: Date) async throws -> Int
    /// Extends every lease `owner` holds on a delivery to `until`. (Advancing a run takes one
    /// checkpoint, far less than a lease's life: run leases are not renewed, and one whose advance
    /// committed nothing lapses, so that the run is claimed again.)
    func renewLeases(of owner: InstanceID, until: Date) async throws
    /// Records that `instance`, started at `startedAt`, is alive at `now`.
    func heartbeat(_ instance: InstanceID, startedAt: Date, at now: Date) async throws
    /// The instances whose last heartbeat is at or after `since`, with the leases each holds.
    func instances(seenSince since: Date) async throws -> [InstanceRecord]
    func listDeliveries(_ query: DeliveryQuery) async throws -> [Delivery]
    func delivery(_ id: DeliveryID) async throws -> DeliveryRecord?
    /// Sends a failed or dead delivery again: reopens it, its step, the step's parents and a
    /// failed run, in one transaction.
    func retryDelivery(_ id: DeliveryID, at now: Date, audit: AuditEntry?) async throws -> DeliveryRetryResult
    /// Deletes up to `limit` attempts that started before `cutoff`; returns how many.
    func pruneAttempts(before cutoff: Date, limit: Int) async throws -> Int
    /// How many deliveries are due now, and the oldest due time.
    func deliveryBacklog(at now: Date) async throws -> (due: Int, oldestDue: Date?)

    func createAPIKey(_ key: APIKeyRecord, audit: AuditEntry?) async throws
    func apiKeys() async throws -> [APIKeyRecord]
    /// Revokes a key by name; false when no active key has that name.
    func revokeAPIKey(named name: String, audit: AuditEntry?) async throws -> Bool
    func apiKey(hash: String) async throws -> APIKeyRecord?

    /// The version of `workflow` whose file has this content (its `sha256`): the one recorded
    /// before, or a new one numbered after the last, with `source`. Instances that record the same
    /// content at once get the same version.
    func recordWorkflowVersion(workflow: String, sha256: String, source: String, at now: Date) async throws -> WorkflowVersionRecord
    /// The versions of `workflow`, or of every workflow when nil, oldest first.
    func workflowVersions(_ workflow: String?) async throws -> [WorkflowVersionRecord]

    /// Opens a console session, with `audit` (the sign-in) in the same transaction.
    func createSession(_ session: ConsoleSession, audit: AuditEntry?) async throws
    /// A console session by its id, ended or not.
    func session(_ id: String) async throws -> ConsoleSession?
    /// Ends a console session (signing out); false when there is no open one with that id.
    func endSession(_ id: String, at now: Date) async throws -> Bool

    /// Records an entry that goes with no other write: an attempt that was refused (a failed
    /// sign-in), or a change made outside the store (a configuration reloaded).
    func recordAudit(_ entry: AuditEntry) async throws
    /// Audit entries, newest first.
    func auditLog(_ query: AuditQuery) async throws -> [AuditEntry]

    /// The counters this store shares between instances (``SharedLimits``); nil, the default, for
    /// a store one instance uses alone.
    var sharedLimits: (any SharedLimits)? { get }

    /// Calls `hint` whenever an instance may have left work that others could take (a hint
    /// carrying no data; polling stays the backstop), until the calling task is cancelled. A store
    /// one instance uses alone returns at once.
    func watchForWork(_ hint: @escaping @Sendable () -> Void) async
}

/// What ``Store/commitAttempt(_:checkpoint:)`` did.
public enum AttemptCommitOutcome: Sendable, Equatable {
    case committed
    /// The checkpoint's run changed since the checkpoint was made from it; nothing was written.
    case conflict
    /// The delivery is no longer held as the commit says; nothing was written.
    case fenced
}

extension Store {
    public func answer(_ change: StepChange, followUps: [Delivery]) async throws -> WaitResolution {
        try await answer(change, followUps: followUps, audit: nil)
    }
    public func putList(_ list: ListRecord) async throws { try await putList(list, audit: nil) }
    public func addListItems(_ name: String, items: [String]) async throws -> Bool {
        try await addListItems(name, items: items, audit: nil)
    }
    public func removeListItem(_ name: String, item: String) async throws -> Bool {
        try await removeListItem(name, item: item, audit: nil)
    }
    public func deleteList(_ name: String) async throws -> Bool { try await deleteList(name, audit: nil) }
    public func retryDelivery(_ id: DeliveryID, at now: Date) async throws -> DeliveryRetryResult {
        try await retryDelivery(id, at: now, audit: nil)
    }
    public func createAPIKey(_ key: APIKeyRecord) async throws { try await createAPIKey(key, audit: nil) }
    public func revokeAPIKey(named name: String) async throws -> Bool { try await revokeAPIKey(named: name, audit: nil) }

    public func watchForWork(_ hint: @escaping @Sendable () -> Void) async {}

    /// The run and its steps as the store holds them now.
    public func loadRun(_ id: RunID) async throws -> RunSnapshot? {
        try await loadRun(id, allowStale: false)
    }

    /// Persists an event and runs that have not started.
    public func ingest(_ event: EventRecord, runs: [RunRecord]) async throws -> IngestOutcome {
        try await ingest(event, runs: runs.map { RunCheckpoint(run: $0, steps: []) })
    }

    /// Writes an outside answer into the step it is for, if the step still takes it.
    public func answer(_ change: StepChange) async throws -> WaitResolution {
        try await answer(change, followUps: [])
    }

    /// Persists runs that have not started.
    public func createRuns(_ runs: [RunRecord]) async throws {
        try await createRuns(runs.map { RunCheckpoint(run: $0, steps: []) })
    }
}

/// A storage failure, with what was being done. Values never appear in `description`.
public struct StoreError: Error, CustomStringConvertible {
    public enum Code: Sendable { case duplicate, notFound, corrupt, unsupportedURL, conflict, fenced, unavailable }
    public let code: Code
    public let detail: String

    public static func duplicate(_ detail: String) -> StoreError { StoreError(code: .duplicate, detail: detail) }
    public static func corrupt(_ detail: String) -> StoreError { StoreError(code: .corrupt, detail: detail) }
    public static func unsupportedURL(_ detail: String) -> StoreError { StoreError(code: .unsupportedURL, detail: detail) }
    public static func conflict(_ detail: String) -> StoreError { StoreError(code: .conflict, detail: detail) }
    /// The database cannot be reached now; the same request may succeed later.
    public static func unavailable(_ detail: String) -> StoreError { StoreError(code: .unavailable, detail: detail) }
    /// A result from a holder that no longer holds what it worked on.
    public static func fenced(_ detail: String) -> StoreError { StoreError(code: .fenced, detail: detail) }

    public var description: String { detail }
}
