import CEL
import Foundation

/// How resources look in the API (docs/api.md).
extension RunRecord {
    func json(steps: [StepRecord]? = nil) -> JSON {
        var trigger: [String: JSON] = [:]
        if let eventID = self.trigger.eventID { trigger["event_id"] = .string(eventID.rawValue) }
        if self.trigger.api { trigger["api"] = true }
        if let scheduledAt = self.trigger.scheduledAt { trigger["scheduled_at"] = .string(scheduledAt.rfc3339) }
        if let parent = self.trigger.parent {
            trigger["parent"] = ["run_id": .string(parent.run.rawValue), "step": .string(parent.step), "depth": .number(Double(parent.depth))]
        }
        var object: [String: JSON] = [
            "id": .string(id.rawValue), "workflow": .string(workflow), "status": .string(status.rawValue),
            "decision": decision.map { .string($0.rawValue) } ?? .null, "tags": .array(tags.map(JSON.string)),
            "trigger": .object(trigger), "created_at": .string(createdAt.rfc3339), "updated_at": .string(updatedAt.rfc3339),
            "error": error?.json ?? .null,
        ]
        if let wakeAt, status == .waiting { object["wake_at"] = .string(wakeAt.rfc3339) }
        if let input { object["input"] = input }
        if let workflowVersion { object["workflow_version"] = .string("v\(workflowVersion)") }
        object["output"] = output ?? .object([:])
        if let steps { object["steps"] = .array(steps.map(\.json)) }
        // A child run started for later has no steps until its start.
        if let steps, steps.isEmpty, status == .waiting, let wakeAt { object["starts_at"] = .string(wakeAt.rfc3339) }
        return .object(object)
    }
}

extension RunRecord {
    /// The schema of ``json(steps:)``.
    static let schema = APISchema.object([
        "id": .string, "workflow": .string, "status": .oneOf(RunStatus.allCases.map(\.rawValue)),
        "decision": APISchema.oneOf(Decision.allCases.map(\.rawValue)).orNull, "tags": .array(.string),
        "trigger": .object([:], optional: ["event_id": .string, "api": .boolean]),
        "created_at": .time, "updated_at": .time, "error": APISchema.ref("StepError").orNull,
    ], optional: [
        "wake_at": APISchema.time.described("When a waiting run wakes by itself."),
        "input": APISchema.any.described("The input of an API-triggered run."),
        "workflow_version": APISchema.string(pattern: "^v[0-9]+$").described("The version of its workflow the run is interpreted by."),
        "starts_at": APISchema.time.described("When a run a start_workflow step started for later begins."),
        "output": APISchema.anyObject.described("What its output steps set; {} when none ran."),
        "steps": APISchema.array(.ref("Step")).described("Every step that has started, in start order (one run only)."),
    ])
}

extension StepRecord {
    /// The schema of ``json``.
    static let schema = APISchema.object([
        "id": .string, "parent": APISchema.string.orNull, "status": .oneOf(StepStatus.allCases.map(\.rawValue)),
        "attempts": .integer(minimum: 0), "output": .any, "error": APISchema.ref("StepError").orNull,
        "started_at": .time, "ended_at": APISchema.time.orNull,
    ], optional: [
        "delivery_id": .string,
        "awaiting": APISchema.object(["connector": .string, "correlation": .string]).described("The callback a waiting step expects."),
        "wake_at": .time,
    ])

    var json: JSON {
        var object: [String: JSON] = [
            "id": .string(id), "parent": parent.map(JSON.string) ?? .null, "status": .string(status.rawValue),
            "attempts": .number(Double(attempts)), "output": output ?? .null, "error": error?.json ?? .null,
            "started_at": .string(startedAt.rfc3339), "ended_at": endedAt.map { .string($0.rfc3339) } ?? .null,
        ]
        if let deliveryID { object["delivery_id"] = .string(deliveryID.rawValue) }
        // What a waiting step expects, so that an operator can find its callback in GET /v1/callbacks.
        if let awaitedCallback, status == .waiting {
            object["awaiting"] = ["connector": .string(awaitedCallback.connector), "correlation": .string(awaitedCallback.correlation)]
        }
        if let wakeAt, status == .waiting { object["wake_at"] = .string(wakeAt.rfc3339) }
        return .object(object)
    }
}

extension StepError {
    var json: JSON {
        var object: [String: JSON] = ["class": .string(errorClass), "message": .string(message)]
        if let expression { object["expression"] = .string(expression) }
        if let line { object["line"] = .number(Double(line)) }
        if let column { object["column"] = .number(Double(column)) }
        return .object(object)
    }
}

extension StepError {
    /// The schema of ``json``.
    static let schema = APISchema.object(["class": .string, "message": .string],
                                         optional: ["expression": .string, "line": .integer, "column": .integer])
}

extension ListRecord {
    /// The schema of ``json``.
    static let schema = APISchema.object(["name": .string, "kind": .oneOf(ListKind.allCases.map(\.rawValue)), "items": .array(.string)])

    var json: JSON {
        ["name": .string(name), "kind": .string(kind.rawValue), "items": .array(items.map(JSON.string))]
    }
}

extension Workflow {
    /// The schema of ``json``.
    static let schema = APISchema.object([
        "id": .string, "description": APISchema.string.orNull,
        "trigger": APISchema.object([:], optional: ["event": .string, "if": .string, "api": .anyObject, "schedule": .anyObject]),
        "steps": .array(.object(["id": .string, "kind": .string, "parent": APISchema.string.orNull])),
        "file": .string, "version": APISchema.string(pattern: "^v[0-9]+$").orNull.described("The version new runs start on."),
    ])

    var json: JSON {
        var trigger: JSON
        switch self.trigger {
        case let .event(type):
            trigger = ["event": .string(type)]
            if let filter = triggerFilter { trigger = ["event": .string(type), "if": .string(filter.source)] }
        case let .api(schema):
            var fields: [String: JSON] = [:]
            for field in schema.fields {
                var spec: [String: JSON] = ["type": .string(field.type.rawValue), "required": .bool(field.required)]
                if let pattern = field.pattern { spec["pattern"] = .string(pattern) }
                if let allowed = field.allowed { spec["enum"] = .array(allowed) }
                fields[field.name] = .object(spec)
            }
            trigger = ["api": ["input": .object(fields)]]
        case let .schedule(schedule):
            switch schedule {
            case let .every(period): trigger = ["schedule": ["every": .string(ConfigDuration.format(period))]]
            case let .cron(cron):
                trigger = ["schedule": ["cron": .string(cron.expression), "timezone": .string(cron.timeZone.identifier)]]
            }
        }
        func steps(_ list: [Step], parent: String?) -> [JSON] {
            list.flatMap { step -> [JSON] in
                [["id": .string(step.id), "kind": .string(step.kindName), "parent": parent.map(JSON.string) ?? .null]]
                    + steps(step.children, parent: step.id)
            }
        }
        return ["id": .string(id), "description": description.map(JSON.string) ?? .null, "trigger": trigger,
                "steps": .array(steps(self.steps, parent: nil)), "file": .string(file),
                "version": version.map { .string("v\($0)") } ?? .null]
    }
}
