import CEL
import Crypto
import Foundation

/// A workflow: a trigger and the steps that run when it fires.
public struct Workflow: Sendable {
    public var id: String
    public var description: String?
    public var trigger: Trigger
    /// `trigger.if`: a CEL condition over `event` and `data`; an event starts a run only when it
    /// holds (``admits(_:lists:now:)``).
    public var triggerFilter: Expression?
    public var steps: [Step] {
        didSet { stepsByID = Self.index(steps) }
    }
    /// `search`: the fields its runs can be found by (``SearchField``).
    public var searchFields: [SearchField] = []
    /// The file the workflow was loaded from.
    public var file: String
    /// The file's text, as read.
    public var source: String = ""
    /// The version this content is (``WorkflowVersionRecord``), once recorded in the store.
    public var version: Int?
    /// The SHA-256 of ``source``, hex: what makes a content a version.
    public var sha256: String { Hex.encode(SHA256.hash(data: Data(source.utf8))) }
    /// Every step by id, nested steps included (kept with `steps`: it is read on every checkpoint).
    public private(set) var stepsByID: [String: Step]

    public init(id: String, description: String? = nil, trigger: Trigger, triggerFilter: Expression? = nil, steps: [Step],
                file: String) {
        self.id = id
        self.description = description
        self.trigger = trigger
        self.triggerFilter = triggerFilter
        self.steps = steps
        self.file = file
        stepsByID = Self.index(steps)
    }

    private static func index(_ steps: [Step]) -> [String: Step] {
        var index: [String: Step] = [:]
        func visit(_ steps: [Step]) {
            for step in steps {
                index[step.id] = step
                visit(step.children)
            }
        }
        visit(steps)
        return index
    }
}

extension Workflow {
    /// Whether an event starts a run: true without a `trigger.if`; otherwise its value, which
    /// must be a bool. A filter that fails to evaluate (a missing field) admits nothing, and the
    /// error says why.
    public func admits(_ event: JSON, lists: ListIndexSnapshot, now: Date) -> Result<Bool, StepError> {
        guard let filter = triggerFilter else { return .success(true) }
        let eventValue = CELValue(json: event)
        var data = CELValue.null
        if case let .map(map) = eventValue, let value = map[string: "data"] { data = value }
        let context = CELContext(now: CELTimestampBridge.timestamp(now), host: lists)
        do {
            let value = try filter.program.evaluate(["event": eventValue, "data": data,
                                                     "now": .timestamp(CELTimestampBridge.timestamp(now))], context: context)
            guard case let .bool(admitted) = value else {
                return .failure(StepError(errorClass: "expression", message: "trigger.if must be true or false, got \(value.celType)",
                                          expression: filter.source, line: filter.location.line, column: filter.location.column))
            }
            return .success(admitted)
        } catch {
            return .failure(StepError(errorClass: "expression", message: error.message, expression: filter.source,
                                      line: error.line, column: error.column))
        }
    }
}

/// What starts a workflow's runs.
public enum Trigger: Sendable {
    /// Each CloudEvent of this type.
    case event(type: String)
    /// `POST /v1/workflows/{id}/runs` with an input that matches the schema.
    case api(InputSchema)
    /// A run per tick, with the input `{scheduled_at}` (``ScheduleRunner``).
    case schedule(Schedule)
}

extension Trigger {
    /// As a sentence names it: "events", "the API", "a schedule".
    public var kindName: String {
        switch self {
        case .event: "events"
        case .api: "the API"
        case .schedule: "a schedule"
        }
    }
}

/// A step of a workflow. Step ids are unique within the workflow, nested steps included.
public struct Step: Sendable {
    public var id: String
    public var kind: Kind
    /// How long a wait may last before the step fails with the error class `timeout`.
    public var timeout: Duration?
    public var retry: RetrySettings?
    public var onError: OnError
    public var location: SourceLocation

    public indirect enum Kind: Sendable {
        /// `if` / `then` / `else`.
        case condition(Expression, then: [Step], else: [Step])
        /// Ordered routes; the first whose condition holds runs; a route without one is `else`.
        case `switch`([SwitchRoute])
        case action(BuiltinAction)
        /// A connector operation with its inputs.
        case connector(connector: String, operation: String, with: [String: ValueTemplate])
        /// Steps that run concurrently; the step ends when all have ended.
        case parallel([Step])
        case wait(WaitSpec)
        /// `output: {key: value}`: fields of the run's output.
        case output([String: ValueTemplate])
        /// `start_workflow: ID`: a child run of another workflow (or this one).
        case startWorkflow(StartWorkflow)
    }

    /// The steps nested directly in this one (branches, routes, parallel branches, error handlers).
    public var children: [Step] {
        var nested: [Step]
        switch kind {
        case let .condition(_, then, otherwise): nested = then + otherwise
        case let .switch(routes): nested = routes.flatMap(\.steps)
        case let .parallel(branches): nested = branches
        case .action, .connector, .wait, .output, .startWorkflow: nested = []
        }
        if case let .steps(handlers) = onError { nested += handlers }
        return nested
    }

    /// The name of the step's kind as the YAML spells it.
    public var kindName: String {
        switch kind {
        case .condition: "if"
        case .switch: "switch"
        case .action: "action"
        case .connector: "connector"
        case .parallel: "parallel"
        case .wait: "wait"
        case .output: "output"
        case .startWorkflow: "start_workflow"
        }
    }
}

/// A `start_workflow` step: which workflow, with what input, when, and whether to wait for it.
public struct StartWorkflow: Sendable {
    public var workflow: String
    /// The child's input; `{}` when absent.
    public var input: ValueTemplate?
    /// Start the child this long after the step runs (`after: 365d`)...
    public var after: Duration?
    /// ...or at this time (`at:`, a CEL timestamp or RFC 3339 string).
    public var at: Expression?
    /// Whether the step waits for the child to end and takes its result as its output.
    public var wait: Bool

    /// The deepest a chain of runs started by runs may go (the root run is depth 0).
    public static let depthLimit = 16
}

/// One route of a `switch`.
public struct SwitchRoute: Sendable {
    /// nil for the `else` route.
    public var condition: Expression?
    public var steps: [Step]
}

/// The actions the engine performs itself.
public enum BuiltinAction: Sendable {
    case approve, decline, markForReview
    case tag(ValueTemplate)
    /// `add_to_list` / `remove_from_list` with `with: {list: NAME, items: [...]}`.
    case changeList(ListChange.Operation, list: String, items: ValueTemplate)

    var decision: Decision? {
        switch self {
        case .approve: .approved
        case .decline: .declined
        case .markForReview: .needsReview
        case .tag, .changeList: nil
        }
    }
}

/// What a `wait` step waits for.
public enum WaitSpec: Sendable {
    case duration(Duration)
    /// A reviewer's decision (`POST /v1/runs/{id}/review` or a Slack button).
    case review
    /// A connector's verified callback carrying the correlation value.
    case callback(connector: String, correlation: Expression)
}

/// What happens when a step fails.
public enum OnError: Sendable {
    /// The failure propagates: the enclosing step fails, and at the top the run fails.
    case fail
    /// The step is recorded as failed and the run goes on with the next step.
    case `continue`
    /// These steps run in place of the failed step, then the run goes on after it.
    case steps([Step])
}

/// Retry settings for a step's outbound calls (used by the delivery engine).
public struct RetrySettings: Sendable, Equatable, Codable {
    public var maxAttempts: Int?
    public var initialInterval: Duration?
    public var backoff: Double?
    public var maxInterval: Duration?
    public var maxAge: Duration?
}

/// A place in a configuration file.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public var description: String { "\(file):\(line):\(column)" }
}

/// A compiled CEL expression with where it was written.
public struct Expression: Sendable {
    public var source: String
    public var program: CELProgram
    public var location: SourceLocation
}
