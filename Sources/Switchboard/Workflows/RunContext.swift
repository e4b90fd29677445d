import CEL
import Foundation
import Synchronization

/// What a run's expressions and templates see: `event`, `data`, `input`, `steps`, `run`, `now`.
struct RunContext: Sendable {
    /// `steps` as CEL, each step converted when an expression first needs it: a run that
    /// evaluates nothing after its steps end (forwarding an event) converts no step output.
    private var stepValues: StepValues
    private var stepJSON: [String: JSON]
    let celContext: CELContext
    private let run: RunRecord
    private let now: Date
    /// `event`, `data`, `input`, `run` and `now`, as CEL values made the first time an expression
    /// needs them: a run whose templates only pass them on (`body: = event`) converts nothing.
    private let roots: Roots

    init(run: RunRecord, steps: [StepRecord], now: Date, lists: ListIndexSnapshot) {
        self.run = run
        self.now = now
        roots = Roots(run: run, now: now)
        stepValues = StepValues(converted: CELMap(), pending: [:])
        stepJSON = [:]
        celContext = CELContext(now: CELTimestampBridge.timestamp(run.createdAt), host: lists)
        for step in steps { update(step) }
    }

    /// The value of an expression that is only a root name (`event`, `data`, `input`), taken
    /// as it is; nil for any other expression.
    func rootValue(_ source: String) -> JSON? {
        switch source {
        case "event": roots.event
        case "data": roots.event["data"] ?? .null
        case "input": roots.input
        default: nil
        }
    }

    /// The JSON text of an expression that is only the root `event`, as the event arrived; nil for
    /// any other expression, or when the text is not known.
    func rootText(_ source: String) -> String? {
        source == "event" ? roots.eventText : nil
    }

    /// `event` and `input`, and the variables but `steps` once converted. Shared by the copies of
    /// a context (the interpreter copies it), which all have the same run and `now`.
    private final class Roots: Sendable {
        let event: JSON
        let eventText: String?
        let input: JSON
        private let run: (id: String, workflow: String, startedAt: Date)
        private let now: Date
        private let converted = Mutex<[String: CELValue]?>(nil)

        init(run: RunRecord, now: Date) {
            event = run.event ?? .null
            eventText = run.event == nil ? nil : run.eventText
            input = run.input ?? .null
            self.run = (run.id.rawValue, run.workflow, run.createdAt)
            self.now = now
        }

        var variables: [String: CELValue] {
            converted.withLock { converted in
                if let converted { return converted }
                // The event is converted once; `data` is its entry, not a second conversion.
                let eventValue = CELValue(json: event)
                var dataValue = CELValue.null
                if case let .map(map) = eventValue, let value = map[string: "data"] { dataValue = value }
                var runValue = CELMap()
                runValue[.string("id")] = .string(run.id)
                runValue[.string("workflow")] = .string(run.workflow)
                runValue[.string("started_at")] = .timestamp(CELTimestampBridge.timestamp(run.startedAt))
                let variables: [String: CELValue] = [
                    "event": eventValue, "data": dataValue, "input": CELValue(json: input), "run": .map(runValue),
                    "now": .timestamp(CELTimestampBridge.timestamp(now)),
                ]
                converted = variables
                return variables
            }
        }
    }

    /// Makes a step's latest status, output and error visible as `steps.<id>`.
    mutating func update(_ step: StepRecord) {
        let json: JSON = ["status": .string(step.status.rawValue), "output": step.output ?? .null,
                          "error": step.error.map { ["class": .string($0.errorClass), "message": .string($0.message)] } ?? .null]
        stepJSON[step.id] = json
        // Copy on write: copies of a context share one box until one of them records a step.
        if isKnownUniquelyReferenced(&stepValues) {
            stepValues.add(step.id, json)
        } else {
            stepValues = stepValues.adding(step.id, json)
        }
    }

    /// The `steps` map: steps converted so far and those not yet, so that each conversion is done
    /// once per context state, not once per evaluation.
    private final class StepValues: Sendable {
        private let state: Mutex<(converted: CELMap, pending: [String: JSON])>

        init(converted: CELMap, pending: [String: JSON]) {
            state = Mutex((converted, pending))
        }

        /// Records a step in this box (its context holds the only reference).
        func add(_ id: String, _ json: JSON) {
            state.withLock { $0.pending[id] = json }
        }

        /// A new box with this one's steps and the recorded one (the context was copied).
        func adding(_ id: String, _ json: JSON) -> StepValues {
            let (converted, pending) = state.withLock { ($0.converted, $0.pending) }
            var next = pending
            next[id] = json
            return StepValues(converted: converted, pending: next)
        }

        var value: CELValue {
            state.withLock { state in
                for (id, json) in state.pending { state.converted[.string(id)] = CELValue(json: json) }
                state.pending = [:]
                return .map(state.converted)
            }
        }
    }

    /// Evaluates an expression; a CEL error becomes a step error with the expression and position.
    func evaluate(_ expression: Expression) throws(StepError) -> CELValue {
        do {
            var variables = roots.variables
            variables["steps"] = stepValues.value
            return try expression.program.evaluate(variables, context: celContext)
        } catch {
            throw StepError(errorClass: "expression", message: error.message, expression: expression.source,
                            line: error.line, column: error.column)
        }
    }

    /// The context as Foundation objects, for Mustache templates.
    var mustacheObject: [String: Any] {
        let event = roots.event
        let base: [String: JSON] = [
            "event": event, "data": event["data"] ?? .null, "input": roots.input, "now": .string(now.rfc3339),
            "run": ["id": .string(run.id.rawValue), "workflow": .string(run.workflow), "started_at": .string(run.createdAt.rfc3339)],
        ]
        var object = base.mapValues(\.foundationObject)
        object["steps"] = stepJSON.mapValues(\.foundationObject)
        return object
    }
}
