import CEL
import Foundation

/// What a run's expressions and templates see: `event`, `data`, `input`, `steps`, `run`, `now`.
struct RunContext: Sendable {
    private(set) var variables: [String: CELValue]
    private var stepValues: CELMap
    private var stepJSON: [String: JSON]
    let celContext: CELContext
    private let run: RunRecord
    private let now: Date

    init(run: RunRecord, steps: [StepRecord], now: Date, lists: ListIndexSnapshot) {
        let event = run.event ?? .null
        let input = run.input ?? .null
        self.run = run
        self.now = now
        var runValue = CELMap()
        runValue[.string("id")] = .string(run.id.rawValue)
        runValue[.string("workflow")] = .string(run.workflow)
        runValue[.string("started_at")] = .timestamp(CELTimestampBridge.timestamp(run.createdAt))
        // The event is converted once; `data` is its entry, not a second conversion.
        let eventValue = CELValue(json: event)
        var dataValue = CELValue.null
        if case let .map(map) = eventValue, let value = map[string: "data"] { dataValue = value }
        variables = [
            "event": eventValue, "data": dataValue, "input": CELValue(json: input),
            "run": .map(runValue), "now": .timestamp(CELTimestampBridge.timestamp(now)),
        ]
        stepValues = CELMap()
        stepJSON = [:]
        celContext = CELContext(now: CELTimestampBridge.timestamp(run.createdAt), host: lists)
        for step in steps { update(step) }
    }

    /// Makes a step's latest status, output and error visible as `steps.<id>`.
    mutating func update(_ step: StepRecord) {
        let json: JSON = ["status": .string(step.status.rawValue), "output": step.output ?? .null,
                          "error": step.error.map { ["class": .string($0.errorClass), "message": .string($0.message)] } ?? .null]
        stepJSON[step.id] = json
        stepValues[.string(step.id)] = CELValue(json: json)
        variables["steps"] = .map(stepValues)
    }

    /// Evaluates an expression; a CEL error becomes a step error with the expression and position.
    func evaluate(_ expression: Expression) throws(StepError) -> CELValue {
        do {
            return try expression.program.evaluate(variables, context: celContext)
        } catch {
            throw StepError(errorClass: "expression", message: error.message, expression: expression.source,
                            line: error.line, column: error.column)
        }
    }

    /// The context as Foundation objects, for Mustache templates.
    var mustacheObject: [String: Any] {
        let event = run.event ?? .null
        let base: [String: JSON] = [
            "event": event, "data": event["data"] ?? .null, "input": run.input ?? .null, "now": .string(now.rfc3339),
            "run": ["id": .string(run.id.rawValue), "workflow": .string(run.workflow), "started_at": .string(run.createdAt.rfc3339)],
        ]
        var object = base.mapValues(\.foundationObject)
        object["steps"] = stepJSON.mapValues(\.foundationObject)
        return object
    }
}
