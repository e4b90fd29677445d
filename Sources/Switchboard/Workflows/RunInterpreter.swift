import CEL
import Foundation

/// Advances one run as far as it can go now, deterministically and without I/O.
///
/// The interpreter walks the workflow's steps against the run's step records: a step that has
/// ended is never executed again (its recorded result is used), a condition that has been
/// evaluated keeps its recorded result, and a wait remembers when it started. Everything it
/// changes is returned as one ``RunCheckpoint`` that the caller commits in one transaction, so
/// a crash before the commit loses nothing that anybody has seen, and a crash after it never
/// repeats a finished step.
struct RunInterpreter {
    enum Flow: Equatable {
        case done
        case suspended
        case failed(StepError)
    }

    /// How connector steps are treated.
    enum ConnectorMode {
        /// They create a delivery, wait for its result, and complete or fail with it.
        case deliver
        /// They complete with the request they would send, and nothing is sent (`switchboard run`);
        /// a step with an assumed output (`--outputs`) completes with it as well.
        case dryRun(outputs: [String: JSON])
        /// They end as the step with the same id ended in a recorded run (its output or its
        /// error), and nothing is sent (a backtest); a step the recorded run never finished waits
        /// for ever, and the backtest reports it as unknown.
        case replay(recorded: [String: StepRecord])

        var delivers: Bool { if case .deliver = self { true } else { false } }
    }

    let workflow: Workflow
    let now: Date
    var connectorMode: ConnectorMode = .deliver
    /// The configured connectors; a connector step needs its instance.
    var connectors: [String: any Connector] = [:]
    /// The loaded workflows by id: what a `start_workflow` step may start.
    var workflows: [String: Workflow] = [:]
    private var newRuns: [RunRecord] = []
    private var newDeliveries: [Delivery] = []
    private var listChanges: [ListChange] = []
    private let lists: ListIndexSnapshot
    private(set) var run: RunRecord
    private var records: [String: StepRecord]
    private var changed: [String] = []
    private var nextSequence: Int
    private var context: RunContext
    /// The earliest time a suspended step wants to be looked at again.
    private var earliestWake: Date?

    init(workflow: Workflow, snapshot: RunSnapshot, now: Date, lists: ListIndexSnapshot) {
        self.workflow = workflow
        self.now = now
        self.lists = lists
        run = snapshot.run
        records = Dictionary(uniqueKeysWithValues: snapshot.steps.map { ($0.id, $0) })
        nextSequence = (snapshot.steps.map(\.sequence).max() ?? 0) + 1
        context = RunContext(run: snapshot.run, steps: snapshot.steps, now: now, lists: lists)
    }

    /// Runs until the workflow ends or every path waits; returns what to commit.
    mutating func advance() -> RunCheckpoint {
        guard !run.status.isFinished else { return RunCheckpoint(run: run, steps: []) }
        let flow = block(workflow.steps, parent: nil)
        switch flow {
        case .done:
            run.status = .completed
            run.wakeAt = nil
        case let .failed(error):
            run.status = .failed
            run.error = error
            run.wakeAt = nil
        case .suspended:
            run.status = .waiting
            run.wakeAt = earliestWake
        }
        run.updatedAt = now
        var seen = Set<String>()
        let steps = changed.filter { seen.insert($0).inserted }.compactMap { records[$0] }
        var checkpoint = RunCheckpoint(run: run, steps: steps, deliveries: newDeliveries)
        checkpoint.listChanges = listChanges
        checkpoint.newRuns = newRuns
        // A run whose parent waits for it answers the parent's step as it ends.
        if run.status.isFinished, let parent = run.trigger.parent, parent.wait {
            let patch: StepChange.Patch = if run.status == .completed {
                .answered(["run_id": .string(run.id.rawValue), "workflow": .string(run.workflow), "status": .string(run.status.rawValue),
                           "decision": run.decision.map { .string($0.rawValue) } ?? .null, "output": run.output ?? .object([:])],
                          attempts: nil)
            } else {
                .failed(StepError(errorClass: "child_failed",
                                  message: "run \(run.id.rawValue) of workflow '\(run.workflow)' \(run.status.rawValue)"
                                      + (run.error.map { ": [\($0.errorClass)] \($0.message)" } ?? "")), attempts: nil)
            }
            checkpoint.parentChange = StepChange(runID: parent.run, stepID: parent.step, deliveryID: nil, patch: patch)
        }
        return checkpoint
    }

    private mutating func block(_ steps: [Step], parent: String?) -> Flow {
        for step in steps {
            switch execute(step, parent: parent) {
            case .done: continue
            case .suspended: return .suspended
            case let .failed(error):
                switch step.onError {
                case .fail: return .failed(error)
                case .continue: continue
                case let .steps(handlers):
                    let handled = block(handlers, parent: step.id)
                    if handled != .done { return handled }
                }
            }
        }
        return .done
    }

    private mutating func record(_ step: StepRecord) {
        records[step.id] = step
        changed.append(step.id)
        context.update(step)
    }

    private mutating func start(_ step: Step, parent: String?) -> StepRecord {
        if let existing = records[step.id] { return existing }
        let fresh = StepRecord(id: step.id, parent: parent, sequence: nextSequence, status: .running, startedAt: now)
        nextSequence += 1
        record(fresh)
        return fresh
    }

    private mutating func finish(_ step: inout StepRecord, _ flow: Flow, output: JSON? = nil) -> Flow {
        switch flow {
        case .done:
            step.status = .completed
            if let output { step.output = output }
            step.endedAt = now
        case let .failed(error):
            step.status = .failed
            step.error = error
            step.endedAt = now
        case .suspended:
            return flow
        }
        record(step)
        return flow
    }

    private mutating func suspend(_ step: inout StepRecord, until wake: Date?, force: Bool = false) -> Flow {
        if force || step.status != .waiting || step.wakeAt != wake {
            step.status = .waiting
            step.wakeAt = wake
            record(step)
        }
        if let wake { earliestWake = min(earliestWake ?? wake, wake) }
        return .suspended
    }

    private mutating func execute(_ step: Step, parent: String?) -> Flow {
        if let existing = records[step.id] {
            switch existing.status {
            case .completed: return .done
            case .failed: return .failed(existing.error ?? StepError(errorClass: "unknown", message: "step failed"))
            case .cancelled: return .failed(StepError(errorClass: "cancelled", message: "step was cancelled"))
            case .running, .waiting: break
            }
        }
        var current = start(step, parent: parent)
        switch step.kind {
        case let .condition(expression, then, otherwise):
            let matched: Bool
            if case let .bool(recorded)? = current.output?["result"] {
                matched = recorded
            } else {
                do {
                    matched = try condition(expression)
                } catch {
                    return finish(&current, .failed(error))
                }
                current.output = ["result": .bool(matched)]
                record(current)
            }
            return finish(&current, block(matched ? then : otherwise, parent: step.id))

        case let .switch(routes):
            let chosen: Int
            if case let .number(recorded)? = current.output?["route"] {
                chosen = Int(recorded)
            } else {
                var found = -1
                for (index, route) in routes.enumerated() {
                    guard let expression = route.condition else { found = index; break }
                    do {
                        if try condition(expression) { found = index; break }
                    } catch {
                        return finish(&current, .failed(error))
                    }
                }
                chosen = found
                current.output = ["route": .number(Double(found))]
                record(current)
            }
            let flow = chosen >= 0 && chosen < routes.count ? block(routes[chosen].steps, parent: step.id) : .done
            return finish(&current, flow)

        case let .action(action):
            if let decision = action.decision {
                run.decision = decision
                return finish(&current, .done, output: ["decision": .string(decision.rawValue)])
            }
            if case let .tag(template) = action {
                do {
                    let value = try template.evaluate(in: context)
                    guard case let .string(tag) = value, !tag.isEmpty else {
                        return finish(&current, .failed(StepError(errorClass: "invalid_value",
                                                                 message: "tag must be a non-empty string, got \(value.text)")))
                    }
                    if !run.tags.contains(tag) { run.tags.append(tag) }
                    return finish(&current, .done, output: ["tag": .string(tag)])
                } catch {
                    return finish(&current, .failed(error))
                }
            }
            if case let .changeList(operation, list, template) = action {
                return changeList(operation, list: list, template, step: step, &current)
            }
            return finish(&current, .done)

        case let .startWorkflow(spec):
            return startWorkflow(spec, step: step, &current)

        case let .output(fields):
            var values: [String: JSON] = [:]
            do {
                for (key, template) in fields { values[key] = try template.evaluate(in: context) }
            } catch {
                return finish(&current, .failed(error))
            }
            var merged: [String: JSON] = [:]
            if case let .object(existing)? = run.output { merged = existing }
            merged.merge(values) { _, new in new }
            run.output = .object(merged)
            return finish(&current, .done, output: .object(values))

        case let .parallel(branches):
            var anySuspended = false
            var failures: [String] = []
            for branch in branches {
                // A branch is a block of one step, so that its on_error applies as anywhere else.
                switch block([branch], parent: step.id) {
                case .done: break
                case .suspended: anySuspended = true
                case .failed: failures.append(branch.id)
                }
            }
            if anySuspended { return suspend(&current, until: nil) }
            if !failures.isEmpty {
                return finish(&current, .failed(StepError(
                    errorClass: "branch_failed",
                    message: "parallel branch\(failures.count > 1 ? "es" : "") \(failures.joined(separator: ", ")) failed")))
            }
            return finish(&current, .done)

        case let .wait(spec):
            return wait(step, spec, &current)

        case let .connector(connectorID, operation, with):
            return connectorStep(step, connectorID, operation, with, &current)
        }
    }

    /// `start_workflow`: a child run, created in this checkpoint (now, or waiting for its start
    /// time); with `wait: true` the step waits until the child's end answers it.
    private mutating func startWorkflow(_ spec: StartWorkflow, step: Step, _ current: inout StepRecord) -> Flow {
        if let error = current.error { return finish(&current, .failed(error)) }
        if current.output != nil { return finish(&current, .done) }
        if current.status == .waiting { return suspend(&current, until: nil) }  // the child has not ended yet
        if case let .replay(recorded) = connectorMode {
            guard let original = recorded[step.id], original.endedAt != nil else { return suspend(&current, until: nil) }
            if let error = original.error, original.status == .failed { return finish(&current, .failed(error)) }
            return finish(&current, .done, output: original.output ?? .null)
        }
        guard let child = workflows[spec.workflow] else {
            return finish(&current, .failed(StepError(errorClass: "unknown_workflow", message: "there is no workflow '\(spec.workflow)'")))
        }
        let depth = run.trigger.depth + 1
        guard depth <= StartWorkflow.depthLimit else {
            return finish(&current, .failed(StepError(
                errorClass: "depth_limit",
                message: "starting '\(spec.workflow)' would be run number \(depth + 1) of a chain of runs that start runs; the limit is \(StartWorkflow.depthLimit + 1)")))
        }
        let input: JSON
        var startsAt = now
        do throws(StepError) {
            input = try spec.input?.evaluate(in: context) ?? .object([:])
            if let after = spec.after { startsAt = now.addingTimeInterval(after.timeInterval) }
            if let at = spec.at {
                let value = try context.evaluate(at)
                switch value {
                case let .timestamp(timestamp): startsAt = CELTimestampBridge.date(timestamp)
                case let .string(text) where Date(rfc3339: text) != nil: startsAt = Date(rfc3339: text)!
                default:
                    throw StepError(errorClass: "invalid_value", message: "at: must be a timestamp, got \(value.json.text)",
                                    expression: at.source, line: at.location.line, column: at.location.column)
                }
            }
        } catch {
            return finish(&current, .failed(error))
        }
        if case let .api(schema) = child.trigger {
            let violations = schema.validate(input)
            if !violations.isEmpty {
                return finish(&current, .failed(StepError(
                    errorClass: "invalid_input",
                    message: "the input of '\(spec.workflow)' is invalid: " + violations.map { "\($0.path) \($0.message)" }.joined(separator: "; "))))
            }
        }
        guard connectorMode.delivers else {
            return finish(&current, .done, output: ["dry_run": true, "workflow": .string(spec.workflow), "input": input,
                                                    "starts_at": .string(startsAt.rfc3339)])
        }
        let later = startsAt > now
        var childRun = RunRecord(
            id: .generate(at: now), workflow: child.id, status: later ? .waiting : .pending,
            trigger: RunTrigger(parent: ParentRun(run: run.id, step: step.id, depth: depth, wait: spec.wait)), input: input,
            createdAt: now, wakeAt: later ? startsAt : nil, workflowVersion: child.version)
        childRun.searchTerms = child.searchTerms(of: childRun)
        newRuns.append(childRun)
        guard spec.wait else { return finish(&current, .done, output: ["run_id": .string(childRun.id.rawValue)]) }
        return suspend(&current, until: nil)
    }

    /// `add_to_list` / `remove_from_list`: the items, checked against the list's kind, become a
    /// ``ListChange`` that the checkpoint carries into the store.
    private mutating func changeList(_ operation: ListChange.Operation, list: String, _ template: ValueTemplate, step: Step,
                                     _ current: inout StepRecord) -> Flow {
        guard let kind = lists.kind(of: list) else {
            return finish(&current, .failed(StepError(errorClass: "list_not_found", message: "there is no list '\(list)'")))
        }
        let value: JSON
        do { value = try template.evaluate(in: context) } catch { return finish(&current, .failed(error)) }
        let values: [JSON] = if case let .array(array) = value { array } else { [value] }
        var items: [String] = []
        for value in values {
            guard case let .string(item) = value else {
                return finish(&current, .failed(StepError(errorClass: "invalid_item", message: "list items are strings, got \(value.text)")))
            }
            if let problem = ListIndexSnapshot.problem(with: item, kind: kind) {
                return finish(&current, .failed(StepError(errorClass: "invalid_item",
                                                          message: "list '\(list)' (\(kind.rawValue)) refuses \(problem)")))
            }
            items.append(item)
        }
        if !items.isEmpty {
            listChanges.append(ListChange(list: list, operation: operation, items: items, run: run.id, step: step.id, at: now))
        }
        return finish(&current, .done, output: ["list": .string(list), operation == .add ? "added" : "removed": .array(items.map(JSON.string))])
    }

    private mutating func connectorStep(_ step: Step, _ connectorID: String, _ operation: String,
                                        _ with: [String: ValueTemplate], _ current: inout StepRecord) -> Flow
    {
        if case let .replay(recorded) = connectorMode {
            guard let original = recorded[step.id], original.endedAt != nil else { return suspend(&current, until: nil) }
            if let error = original.error, original.status == .failed { return finish(&current, .failed(error)) }
            return finish(&current, .done, output: original.output ?? .null)
        }
        // A delivery already exists: its result, written into the step from outside, decides.
        if current.deliveryID != nil {
            if let error = current.error { return finish(&current, .failed(error)) }
            if current.output != nil { return finish(&current, .done) }
            if current.awaitedCallback != nil {
                // The request was accepted; the answer comes as a callback, within the step's timeout.
                let limit = step.timeout ?? connectors[connectorID]?.callbackTimeout ?? .seconds(3600)
                let deadline = current.startedAt.addingTimeInterval(limit.timeInterval)
                if now >= deadline {
                    return finish(&current, .failed(StepError(
                        errorClass: "timeout", message: "no callback from '\(connectorID)' within \(ConfigDuration.format(limit))")))
                }
                // The polling fallback: the step's wake time is when to ask next.
                guard let connector = connectors[connectorID], let interval = connector.pollInterval,
                      let key = current.awaitedCallback else {
                    return suspend(&current, until: deadline)
                }
                let nextPoll = current.wakeAt ?? now.addingTimeInterval(interval.timeInterval)
                if now >= nextPoll, connectorMode.delivers,
                   let poll = connector.pollRequest(operation: operation, correlation: key.correlation)
                {
                    let delivery = Delivery(id: .generate(at: now), runID: run.id, stepID: step.id, connector: connectorID,
                                            operation: operation, request: poll, retry: step.retry, nextAttemptAt: now,
                                            createdAt: now)
                    newDeliveries.append(delivery)
                    current.deliveryID = delivery.id
                    return suspend(&current, until: min(deadline, now.addingTimeInterval(interval.timeInterval)), force: true)
                }
                return suspend(&current, until: min(deadline, nextPoll))
            }
            return suspend(&current, until: nil)
        }
        guard let connector = connectors[connectorID] else {
            return finish(&current, .failed(StepError(
                errorClass: "not_supported",
                message: "connector '\(connectorID)' is of a kind this build cannot run")))
        }
        var inputs: [String: JSON] = [:]
        var received: [String: String] = [:]
        let request: OutboundRequest
        do {
            for (key, template) in with {
                inputs[key] = try template.evaluate(in: context)
                received[key] = template.receivedText(in: context)
            }
            let snapshot = context
            let view = RunContextView(runID: run.id, stepID: step.id, receivedInputs: received) { template throws(StepError) in
                try template.evaluate(in: snapshot)
            } received: { template in
                template.receivedText(in: snapshot)
            }
            request = try connector.request(operation: operation, input: .object(inputs), run: view)
        } catch {
            return finish(&current, .failed(error))
        }
        if case let .dryRun(assumed) = connectorMode {
            let output: [String: JSON] = if case let .object(fields)? = assumed[step.id] { fields } else { [:] }
            return finish(&current, .done, output: .object(output.merging([
                "dry_run": true,
                "request": ["connector": .string(connectorID), "operation": .string(operation),
                            "method": .string(request.method), "url": .string(request.url),
                            "headers": .object(Dictionary(request.headers.map { ($0[0], JSON.string($0[1])) }, uniquingKeysWith: { $1 })),
                            "body": request.body.map(JSON.string) ?? .null],
            ]) { given, _ in given }))
        }
        let delivery = Delivery(id: .generate(at: now), runID: run.id, stepID: step.id, connector: connectorID,
                                operation: operation, request: request, retry: step.retry, nextAttemptAt: now, createdAt: now)
        newDeliveries.append(delivery)
        current.deliveryID = delivery.id
        current.status = .waiting
        record(current)
        return .suspended
    }

    private mutating func wait(_ step: Step, _ spec: WaitSpec, _ current: inout StepRecord) -> Flow {
        switch spec {
        case let .duration(duration):
            let wake = current.wakeAt ?? current.startedAt.addingTimeInterval(duration.timeInterval)
            if now >= wake { return finish(&current, .done, output: ["waited": .string(ConfigDuration.format(duration))]) }
            return suspend(&current, until: wake)
        case .review, .callback:
            if let output = current.output, output != .null {
                return finish(&current, .done)
            }
            if let error = current.error { return finish(&current, .failed(error)) }
            if case let .callback(connector, correlation) = spec, current.awaitedCallback == nil {
                do {
                    let value = try context.evaluate(correlation)
                    guard case let .string(key) = value, !key.isEmpty else {
                        return finish(&current, .failed(StepError(
                            errorClass: "invalid_value", message: "correlation must be a non-empty string, got \(value.json.text)",
                            expression: correlation.source)))
                    }
                    current.awaitedCallback = CallbackKey(connector: connector, correlation: key)
                    record(current)
                } catch {
                    return finish(&current, .failed(error))
                }
            }
            let deadline = step.timeout.map { current.startedAt.addingTimeInterval($0.timeInterval) }
            if let deadline, now >= deadline {
                return finish(&current, .failed(StepError(
                    errorClass: "timeout", message: "no answer within \(ConfigDuration.format(step.timeout!))")))
            }
            return suspend(&current, until: deadline)
        }
    }

    private func condition(_ expression: Expression) throws(StepError) -> Bool {
        let value = try context.evaluate(expression)
        guard case let .bool(result) = value else {
            throw StepError(errorClass: "expression",
                            message: "condition must be a bool, got \(value.celType.name)",
                            expression: expression.source, line: 1, column: 1)
        }
        return result
    }
}
