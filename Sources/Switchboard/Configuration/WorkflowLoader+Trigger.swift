import CEL
import Foundation

/// A workflow's trigger (an event, the API with its input schema, a schedule), its `trigger.if`
/// filter, and its `search` fields.
extension WorkflowLoader {
    mutating func loadTrigger(_ node: YAMLNode) -> Trigger? {
        collector.checkKeys(node, allowed: ["event", "api", "if", "schedule"], context: "trigger")
        if let schedule = node["schedule"] {
            if node["event"] != nil || node["api"] != nil {
                collector.error(node, "trigger has a schedule and another trigger; a workflow has one trigger")
                return nil
            }
            return loadSchedule(schedule).map { .schedule($0) }
        }
        let event = node["event"]
        let api = node["api"]
        switch (event, api) {
        case let (event?, nil):
            guard let type = event.scalar, !type.isEmpty else {
                collector.error(event, "trigger.event must be an event type such as inquiry.completed")
                return nil
            }
            return .event(type: type)
        case let (nil, api?):
            return .api(loadInputSchema(api))
        case (nil, nil):
            collector.error(node, "trigger needs 'event: TYPE', 'api: { input: {...} }' or 'schedule: { cron: ..., timezone: ... }'")
            return nil
        default:
            collector.error(node, "trigger has both 'event' and 'api'; a workflow has one trigger")
            return nil
        }
    }

    /// `schedule: { cron: "0 9 * * 1", timezone: America/New_York }` or `schedule: { every: 10m }`.
    mutating func loadSchedule(_ node: YAMLNode) -> Schedule? {
        collector.checkKeys(node, allowed: ["cron", "timezone", "every"], context: "trigger.schedule")
        switch (node["cron"], node["every"]) {
        case let (cron?, nil):
            var zone = TimeZone(identifier: "UTC")!
            if let zoneNode = node["timezone"] {
                guard let name = zoneNode.scalar, let found = TimeZone(identifier: name) else {
                    collector.error(zoneNode, "unknown time zone '\(zoneNode.scalar ?? "")'; write an IANA name such as Europe/Berlin")
                    return nil
                }
                zone = found
            }
            do {
                return .cron(try CronSchedule(cron.scalar ?? "", timeZone: zone))
            } catch {
                collector.error(cron, "schedule.cron: \(error.description)")
                return nil
            }
        case let (nil, every?):
            if let zone = node["timezone"] { collector.error(zone, "timezone goes with cron; every: counts from the Unix epoch") }
            guard let period = ConfigDuration.parse(every.scalar ?? ""), period >= .seconds(1) else {
                collector.error(every, "schedule.every must be a duration of at least 1s, such as 10m or 24h")
                return nil
            }
            return .every(period)
        default:
            collector.error(node, "trigger.schedule needs cron: \"EXPR\" (with an optional timezone) or every: DURATION, not both")
            return nil
        }
    }

    /// `trigger.if`: compiled, and seeing only what an event has (`event`, `data`, `now` and the lists).
    mutating func loadTriggerFilter(_ node: YAMLNode, trigger: Trigger?) -> Expression? {
        switch trigger {
        case .api?:
            collector.error(node, "trigger.if filters events; an API trigger checks its input with trigger.api.input")
            return nil
        case .schedule?:
            collector.error(node, "trigger.if filters events; a schedule has none (test the time in a step instead)")
            return nil
        default: break
        }
        let references = stepReferences.count
        guard let filter = compile(node, context: "trigger.if") else { return nil }
        stepReferences.removeSubrange(references...)
        let roots = Set(filter.program.referencedPaths.compactMap(\.first))
        let unknown = roots.subtracting(["event", "data", "now"]).sorted()
        if !unknown.isEmpty {
            collector.error(node, "trigger.if sees only event, data and now; it refers to " + unknown.joined(separator: ", "))
            return nil
        }
        return filter
    }

    mutating func loadInputSchema(_ node: YAMLNode) -> InputSchema {
        if node.scalar == "" || node.mapping?.isEmpty == true { return InputSchema(fields: []) }
        collector.checkKeys(node, allowed: ["input"], context: "trigger.api")
        var fields: [InputSchema.Field] = []
        guard let input = node["input"] else { return InputSchema(fields: []) }
        guard let entries = input.mapping else {
            collector.error(input, "trigger.api.input must map field names to { type, required, pattern, enum }")
            return InputSchema(fields: [])
        }
        for entry in entries {
            let spec = entry.value
            collector.checkKeys(spec, allowed: ["type", "required", "pattern", "enum", "description"],
                                context: "input field '\(entry.key)'")
            let typeName = spec["type"]?.scalar ?? "string"
            guard let type = InputSchema.FieldType(rawValue: typeName) else {
                collector.error(spec["type"] ?? spec, "unknown input type '\(typeName)'; expected one of: "
                    + InputSchema.FieldType.allCases.map(\.rawValue).joined(separator: ", "))
                continue
            }
            if let pattern = spec["pattern"]?.scalar, (try? NSRegularExpression(pattern: pattern)) == nil {
                collector.error(spec["pattern"]!, "pattern '\(pattern)' is not a valid regular expression")
            }
            var allowed: [JSON]?
            if let values = spec["enum"] {
                if let items = values.sequence { allowed = items.map(\.json) } else {
                    collector.error(values, "enum must be a list of allowed values")
                }
            }
            fields.append(InputSchema.Field(
                name: entry.key, type: type, required: spec["required"]?.json == .bool(true),
                pattern: spec["pattern"]?.scalar, allowed: allowed, description: spec["description"]?.scalar))
        }
        return InputSchema(fields: fields)
    }

    /// `search: [data.inquiry.id, ...]`: paths into the event's data or the API input.
    mutating func loadSearchFields(_ node: YAMLNode) -> [SearchField] {
        guard let items = node.sequence else {
            collector.error(node, "search must be a list of fields such as data.inquiry.id or input.business_name")
            return []
        }
        if items.count > RunSearch.maximumFields {
            collector.error(node, "search lists \(items.count) fields; at most \(RunSearch.maximumFields)")
        }
        var fields: [SearchField] = []
        for item in items {
            guard let text = item.scalar, let field = SearchField(text) else {
                collector.error(item, "search field '\(item.scalar ?? "")' must be a path under data or input, "
                    + "such as data.inquiry.id or input.business_name")
                continue
            }
            if fields.contains(field) { collector.error(item, "search field '\(field)' is listed twice") }
            fields.append(field)
        }
        return fields
    }
}
