import CEL
import Foundation

/// Runs a workflow in memory against an event or input, with no store and no external call:
/// what `switchboard run` prints. Timers are skipped over; a wait for a review or a callback
/// ends the dry run.
public enum DryRun {
    public struct InvalidTrigger: Error {
        public let message: String
    }

    public struct Result: Sendable {
        public var run: RunRecord
        public var steps: [StepRecord]
        let workflow: Workflow

        /// The run as the API would show it.
        public var json: JSON { run.json(steps: steps) }

        /// One line per step in start order, indented under its parent, then the outcome.
        public var trace: String {
            let kinds = workflow.stepsByID
            let parents = Dictionary(uniqueKeysWithValues: steps.map { ($0.id, $0.parent) })
            func depth(_ id: String) -> Int {
                var level = 0
                var current = parents[id] ?? nil
                while let parent = current { level += 1; current = parents[parent] ?? nil }
                return level
            }
            var lines: [String] = []
            for step in steps {
                let mark = switch step.status {
                case .completed: "✔"
                case .failed: "✘"
                case .waiting: "…"
                case .running: "▸"
                case .cancelled: "-"
                }
                var line = String(repeating: "  ", count: depth(step.id)) + "\(mark) \(step.id) (\(kinds[step.id]?.kindName ?? "?"))"
                if let output = step.output, output != .null {
                    if case var .object(o) = output, o["dry_run"] == .bool(true), let request = o.removeValue(forKey: "request") {
                        o["dry_run"] = nil
                        line += " would send: \(request.text)" + (o.isEmpty ? "" : " → assumed \(JSON.object(o).text)")
                    } else {
                        line += " → \(output.text)"
                    }
                }
                if let error = step.error { line += " error [\(error.errorClass)]: \(error.message)" }
                lines.append(line)
            }
            lines.append("status: \(run.status.rawValue)")
            lines.append("decision: \(run.decision?.rawValue ?? "none")")
            if !run.tags.isEmpty { lines.append("tags: \(run.tags.joined(separator: ", "))") }
            if let error = run.error { lines.append("error: [\(error.errorClass)] \(error.message)") }
            return lines.joined(separator: "\n")
        }
    }

    public static func execute(_ workflow: Workflow, event: JSON?, input: JSON?, lists: ListIndexSnapshot,
                               connectors: [String: any Connector] = [:], outputs: [String: JSON] = [:],
                               now start: Date = Date()) throws -> Result
    {
        switch workflow.trigger {
        case let .event(type):
            guard let event else { throw InvalidTrigger(message: "workflow '\(workflow.id)' is triggered by events: use --event FILE") }
            switch CloudEvent.validate(event) {
            case let .failure(invalid):
                throw InvalidTrigger(message: "the event is not a valid CloudEvent: "
                    + invalid.errors.map { "\($0.path): \($0.message)" }.joined(separator: "; "))
            case let .success(valid) where valid.type != type:
                throw InvalidTrigger(message: "the event's type is '\(valid.type)' but workflow '\(workflow.id)' is triggered by '\(type)'")
            case .success: break
            }
            switch workflow.admits(event, lists: lists, now: start) {
            case .success(true): break
            case .success(false):
                throw InvalidTrigger(message: "trigger.if (\(workflow.triggerFilter?.source ?? "")) is false for this event: no run would start")
            case let .failure(error):
                throw InvalidTrigger(message: "trigger.if failed (\(error.message)): no run would start")
            }
        case let .api(schema):
            guard let input else { throw InvalidTrigger(message: "workflow '\(workflow.id)' is triggered by the API: use --input FILE") }
            let violations = schema.validate(input)
            if !violations.isEmpty {
                throw InvalidTrigger(message: "the input is invalid: " + violations.map { "\($0.path) \($0.message)" }.joined(separator: "; "))
            }
        case .schedule:
            guard event == nil else { throw InvalidTrigger(message: "workflow '\(workflow.id)' runs on a schedule: give no event") }
        }
        var trigger = RunTrigger(api: input != nil)
        var input = input
        if case .schedule = workflow.trigger {
            // A tick now, unless the input names one.
            trigger = RunTrigger(scheduledAt: start)
            input = input ?? ["scheduled_at": .string(start.rfc3339)]
        }
        var snapshot = RunSnapshot(
            run: RunRecord(id: .generate(at: start), workflow: workflow.id, trigger: trigger,
                           event: event, input: input, createdAt: start),
            steps: [])
        var now = start
        for _ in 0 ..< 10_000 {
            var interpreter = RunInterpreter(workflow: workflow, snapshot: snapshot, now: now, lists: lists)
            interpreter.connectorMode = .dryRun(outputs: outputs)
            interpreter.connectors = connectors
            let checkpoint = interpreter.advance()
            snapshot = snapshot.applying(checkpoint)
            // Skip over timers; a wait for a review or a callback ends the dry run.
            let kinds = workflow.stepsByID
            let waitsForAnswer = snapshot.steps.contains { step in
                guard step.status == .waiting, case let .wait(spec)? = kinds[step.id]?.kind else { return false }
                if case .duration = spec { return false }
                return true
            }
            guard checkpoint.run.status == .waiting, !waitsForAnswer, let wake = checkpoint.run.wakeAt, wake > now else { break }
            now = wake
        }
        return Result(run: snapshot.run, steps: snapshot.steps, workflow: workflow)
    }
}

extension RunSnapshot {
    /// The run as it is once `checkpoint` is applied in memory (a dry run, a backtest): the
    /// checkpoint's run, and its steps over the ones before.
    func applying(_ checkpoint: RunCheckpoint) -> RunSnapshot {
        var byID = Dictionary(uniqueKeysWithValues: steps.map { ($0.id, $0) })
        for step in checkpoint.steps { byID[step.id] = step }
        return RunSnapshot(run: checkpoint.run, steps: byID.values.sorted { $0.sequence < $1.sequence })
    }
}

/// The lists a workflow's expressions name in `inList('name', ...)`, for warnings.
public enum ListReferences {
    public static func find(in workflow: Workflow) -> [(String, SourceLocation)] {
        var found: [(String, SourceLocation)] = []
        let pattern = try! NSRegularExpression(pattern: #"inList\(\s*['"]([^'"]+)['"]"#)
        func scan(_ expression: Expression) {
            let source = expression.source
            for match in pattern.matches(in: source, range: NSRange(source.startIndex ..< source.endIndex, in: source)) {
                if let range = Range(match.range(at: 1), in: source) { found.append((String(source[range]), expression.location)) }
            }
        }
        func visit(_ steps: [Step]) {
            for step in steps {
                switch step.kind {
                case let .condition(expression, _, _): scan(expression)
                case let .switch(routes): routes.compactMap(\.condition).forEach(scan)
                default: break
                }
                visit(step.children)
            }
        }
        visit(workflow.steps)
        return found
    }
}
