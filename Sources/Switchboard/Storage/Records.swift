import CEL
import Foundation

/// Where a run is in its life.
public enum RunStatus: String, Codable, Sendable, CaseIterable {
    case pending, running, waiting, completed, failed, cancelled

    public var isFinished: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// The outcome a workflow's actions set on a run.
public enum Decision: String, Codable, Sendable, CaseIterable {
    case approved, declined
    case needsReview = "needs_review"
}

/// Where a step is in its life.
public enum StepStatus: String, Codable, Sendable, CaseIterable {
    case running, waiting, completed, failed, cancelled
}

/// Why a step failed, in a form the API shows and `on_error` reads.
public struct StepError: Codable, Hashable, Sendable, Error {
    /// A stable class: `expression`, `timeout`, `not_supported`, `branch_failed`, ...
    public var errorClass: String
    public var message: String
    /// The CEL expression that failed, with its position, when a condition failed.
    public var expression: String?
    public var line: Int?
    public var column: Int?

    public init(errorClass: String, message: String, expression: String? = nil, line: Int? = nil, column: Int? = nil) {
        self.errorClass = errorClass
        self.message = message
        self.expression = expression
        self.line = line
        self.column = column
    }

    enum CodingKeys: String, CodingKey {
        case errorClass = "class", message, expression, line, column
    }
}

/// What started a run.
public struct RunTrigger: Codable, Hashable, Sendable {
    public var eventID: EventID?
    public var api: Bool
    /// The tick of a `schedule` trigger the run is for.
    public var scheduledAt: Date?
    /// The run whose `start_workflow` step started this one.
    public var parent: ParentRun?

    public init(eventID: EventID? = nil, api: Bool = false, scheduledAt: Date? = nil, parent: ParentRun? = nil) {
        self.eventID = eventID
        self.api = api
        self.scheduledAt = scheduledAt
        self.parent = parent
    }

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id", api, scheduledAt = "scheduled_at", parent
    }

    /// How many runs started this one in a chain: 0 for a run its own trigger started.
    public var depth: Int { parent?.depth ?? 0 }
}

/// The run and step that started a run (`start_workflow`).
public struct ParentRun: Codable, Hashable, Sendable {
    public var run: RunID
    public var step: String
    /// The child's depth: its parent's plus one.
    public var depth: Int
    /// Whether the parent's step waits for this run to end.
    public var wait: Bool

    public init(run: RunID, step: String, depth: Int, wait: Bool) {
        self.run = run
        self.step = step
        self.depth = depth
        self.wait = wait
    }

    enum CodingKeys: String, CodingKey {
        case run = "run_id", step, depth, wait
    }
}

/// A workflow run as the store keeps it.
public struct RunRecord: Sendable, Equatable {
    public var id: RunID
    public var workflow: String
    public var status: RunStatus
    public var decision: Decision?
    public var tags: [String]
    public var trigger: RunTrigger
    /// The CloudEvent that triggered the run, if any.
    public var event: JSON?
    /// `event`'s JSON text as stored in the events table (as it arrived), when the run refers to a
    /// stored event: a step that passes the event on whole (`body: = event`) sends these bytes.
    public var eventText: String?
    /// The API trigger's input, if any.
    public var input: JSON?
    public var error: StepError?
    public var createdAt: Date
    public var updatedAt: Date
    /// When a waiting run should next be looked at (a timer, a timeout).
    public var wakeAt: Date?
    /// Incremented by every checkpoint; a checkpoint made from an older version is refused, so
    /// two advances of one run can never overwrite each other.
    public var version: Int = 0
    /// What its `output` steps set (merged, later keys win); nil when none ran.
    public var output: JSON?
    /// The terms it can be found by (`data.inquiry.id=inq_123`), from its workflow's `search`
    /// fields (``Workflow/searchTerms(of:)``); written when the run is created.
    public var searchTerms: [String] = []
    /// The version of its workflow the run was started on (``WorkflowVersionRecord``), which
    /// interprets it until it ends; nil for a run started before versions were kept.
    public var workflowVersion: Int?

    public init(id: RunID, workflow: String, status: RunStatus = .pending, decision: Decision? = nil, tags: [String] = [],
                trigger: RunTrigger, event: JSON? = nil, eventText: String? = nil, input: JSON? = nil,
                error: StepError? = nil, createdAt: Date, updatedAt: Date? = nil, wakeAt: Date? = nil, version: Int = 0,
                workflowVersion: Int? = nil, output: JSON? = nil)
    {
        self.version = version
        self.workflowVersion = workflowVersion
        self.output = output
        self.eventText = eventText
        self.id = id
        self.workflow = workflow
        self.status = status
        self.decision = decision
        self.tags = tags
        self.trigger = trigger
        self.event = event
        self.input = input
        self.error = error
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
        self.wakeAt = wakeAt
    }
}

/// One step's execution within a run.
public struct StepRecord: Sendable, Equatable {
    public var id: String
    public var parent: String?
    /// Start order within the run.
    public var sequence: Int
    public var status: StepStatus
    public var attempts: Int
    public var output: JSON?
    public var error: StepError?
    public var startedAt: Date
    public var endedAt: Date?
    public var wakeAt: Date?
    /// The outbound call a connector step is waiting for.
    public var deliveryID: DeliveryID?
    /// The callback a waiting step expects: a connector's callback carrying this correlation id.
    public var awaitedCallback: CallbackKey?

    public init(id: String, parent: String?, sequence: Int, status: StepStatus, attempts: Int = 1, output: JSON? = nil,
                error: StepError? = nil, startedAt: Date, endedAt: Date? = nil, wakeAt: Date? = nil, deliveryID: DeliveryID? = nil,
                awaitedCallback: CallbackKey? = nil)
    {
        self.deliveryID = deliveryID
        self.awaitedCallback = awaitedCallback
        self.id = id
        self.parent = parent
        self.sequence = sequence
        self.status = status
        self.attempts = attempts
        self.output = output
        self.error = error
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.wakeAt = wakeAt
    }
}

/// A run with every step that has started.
public struct RunSnapshot: Sendable, Equatable {
    public var run: RunRecord
    public var steps: [StepRecord]
}

/// A received event, kept for deduplication and audit.
public struct EventRecord: Sendable {
    public var id: EventID
    /// The CloudEvent `id`, or the `Idempotency-Key` header when one was sent.
    public var dedupeKey: String
    public var type: String
    public var source: String
    public var payload: JSON
    /// The payload's text as received, when known; stored instead of encoding `payload` again.
    public var payloadText: String? = nil
    public var receivedAt: Date
    /// The runs the event started, answered again to a duplicate.
    public var runs: [RunReference]
    /// The signed request that carried the event (`POST /v1/sources/{id}`), status `accepted`:
    /// written in the same transaction, or, when a receipt with its connector and message id was
    /// written before, nothing but a `replayed` record (``IngestOutcome/replayed``).
    public var receipt: InboundCallback? = nil

    public init(id: EventID, dedupeKey: String, type: String, source: String, payload: JSON, payloadText: String? = nil,
                receivedAt: Date, runs: [RunReference])
    {
        self.id = id
        self.dedupeKey = dedupeKey
        self.type = type
        self.source = source
        self.payload = payload
        self.payloadText = payloadText
        self.receivedAt = receivedAt
        self.runs = runs
    }
}

/// A run's id and workflow, as ingest answers them.
public struct RunReference: Codable, Hashable, Sendable {
    public var id: RunID
    public var workflow: String

    public init(id: RunID, workflow: String) {
        self.id = id
        self.workflow = workflow
    }

    /// `{"id", "workflow"}`, as ingest answers it and the events table keeps it.
    func write(into object: inout JSONObjectWriter) {
        object.member("id", id.rawValue)
        object.member("workflow", workflow)
    }
}

/// What the store did with an event.
public enum IngestOutcome: Sendable {
    case accepted
    /// The event was seen before; this is the original.
    case duplicate(EventRecord)
    /// The event's ``EventRecord/receipt`` was received before: a replayed signed request. Nothing
    /// was ingested.
    case replayed
}

/// A filter and page over runs, newest first.
public struct RunQuery: Sendable {
    public var workflow: String?
    public var status: RunStatus?
    public var decision: Decision?
    /// Only the runs of this event.
    public var eventID: EventID?
    /// Only runs stored with this search term (``RunRecord/searchTerms``: `data.inquiry.id=inq_123`).
    public var searchTerm: String?
    /// Only runs created at or after this time.
    public var since: Date?
    /// Only runs created before this time.
    public var until: Date?
    /// Only runs older than this id (the previous page's last id, newest first).
    public var before: RunID?
    /// Only runs newer than this id (the previous page's last id, with ``oldestFirst``).
    public var after: RunID?
    /// Oldest first (the review queue) instead of newest first.
    public var oldestFirst = false
    public var limit: Int

    public init(workflow: String? = nil, status: RunStatus? = nil, decision: Decision? = nil, before: RunID? = nil, limit: Int = 50) {
        self.workflow = workflow
        self.status = status
        self.decision = decision
        self.before = before
        self.limit = limit
    }
}

/// A run's progress to commit at once: the run row and the steps that changed.
public struct RunCheckpoint: Sendable {
    public var run: RunRecord
    public var steps: [StepRecord]
    /// Items its `add_to_list` and `remove_from_list` steps add and remove, written with it.
    public var listChanges: [ListChange] = []
    /// Runs its `start_workflow` steps started, inserted with it.
    public var newRuns: [RunRecord] = []
    /// When it ends a run whose parent waits for it: the parent step's answer, written with it.
    public var parentChange: StepChange?
    /// Outbound calls created by this progress, persisted in the same transaction before any is sent.
    public var deliveries: [Delivery] = []

    public init(run: RunRecord, steps: [StepRecord], deliveries: [Delivery] = []) {
        self.run = run
        self.steps = steps
        self.deliveries = deliveries
    }
}

/// The result of resolving a waiting step from outside (a review decision, a callback).
public enum WaitResolution: Sendable, Equatable {
    case resolved
    case runNotFound
    case stepNotWaiting
}

/// The kinds of list, which decide how `inList` matches.
public enum ListKind: String, Codable, Sendable, CaseIterable {
    /// Exact addresses and CIDR ranges, IPv4 and IPv6.
    case ip
    /// Addresses or whole domains, case-insensitive.
    case email
    /// Exact strings.
    case string
}

/// A named list of items that conditions test with `inList`.
public struct ListRecord: Sendable, Equatable {
    public var name: String
    public var kind: ListKind
    public var items: [String]
    public var revision: Int64

    public init(name: String, kind: ListKind, items: [String], revision: Int64 = 0) {
        self.name = name
        self.kind = kind
        self.items = items
        self.revision = revision
    }
}

/// An API key; only the SHA-256 of the secret is stored.
public struct APIKeyRecord: Sendable, Equatable {
    public var name: String
    public var hash: String
    public var scopes: [String]
    public var createdAt: Date
    public var revokedAt: Date?
    /// When the key stops working (`keys create --expires`); nil for never.
    public var expiresAt: Date?

    public init(name: String, hash: String, scopes: [String], createdAt: Date, revokedAt: Date? = nil, expiresAt: Date? = nil) {
        self.name = name
        self.hash = hash
        self.scopes = scopes
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.expiresAt = expiresAt
    }

    /// Whether the key authenticates a request at `now`: not revoked, not expired.
    public func isValid(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// Items a run adds to or removes from a list (`add_to_list`, `remove_from_list`), written in the
/// transaction of the checkpoint that made them, with an audit entry naming the run.
public struct ListChange: Sendable, Equatable {
    public enum Operation: String, Sendable { case add, remove }

    public var list: String
    public var operation: Operation
    public var items: [String]
    /// The run whose step made the change.
    public var run: RunID
    public var step: String
    /// When the step made it.
    public var at: Date

    public init(list: String, operation: Operation, items: [String], run: RunID, step: String, at: Date) {
        self.list = list
        self.operation = operation
        self.items = items
        self.run = run
        self.step = step
        self.at = at
    }

    /// The audit entry written with it.
    public var audit: AuditEntry {
        AuditEntry(at: at, actor: .system, name: "run:\(run.rawValue)",
                   action: operation == .add ? "list.items_added" : "list.items_removed", target: "list:\(list)",
                   details: ["items": .array(items.map(JSON.string)), "step": .string(step)])
    }
}
