import CEL
import Foundation

/// What a changed workflow would have decided on the cases it already decided: the recorded runs
/// of a workflow replayed, in memory, through a candidate definition, each with the answers its
/// original run received (connector results, reviews, callbacks). Nothing is sent and nothing is
/// written. A run that reaches a connector step or a wait its original never finished is reported
/// as unknown, not guessed.
public enum Backtest {
    /// How one recorded run replays.
    public enum Outcome: Sendable, Equatable {
        /// It ends with this decision (nil: none).
        case decided(Decision?, failed: StepError?)
        /// The candidate's `trigger.if` keeps its event out: no run would start.
        case notStarted
        /// It reaches a step whose answer the original never received.
        case unknown(step: String)
    }

    /// A cell of the decision matrix: how many runs went from one decision to another, with examples.
    public struct Cell: Sendable, Equatable {
        public var from: Decision?
        public var to: Decision?
        public var count: Int
        /// Up to five run ids.
        public var runs: [RunID]
    }

    public struct Report: Sendable {
        public var workflow: String
        public var replayed = 0
        public var changed = 0
        public var unchanged = 0
        /// The changed cells only.
        public var matrix: [Cell] = []
        /// Runs that would now fail (their original did not).
        public var failed: [(run: RunID, error: StepError)] = []
        /// Runs that reach a step their original never finished.
        public var unknown: [(run: RunID, step: String)] = []
        /// Runs the candidate's `trigger.if` would not start.
        public var notStarted: [RunID] = []

        /// As `POST /v1/workflows/{id}/backtest` answers it.
        public var json: JSON {
            ["workflow": .string(workflow), "replayed": .number(Double(replayed)), "changed": .number(Double(changed)),
             "unchanged": .number(Double(unchanged)),
             "matrix": .array(matrix.map { cell in
                 ["from": cell.from.map { .string($0.rawValue) } ?? .null, "to": cell.to.map { .string($0.rawValue) } ?? .null,
                  "count": .number(Double(cell.count)), "runs": .array(cell.runs.map { .string($0.rawValue) })]
             }),
             "failed": .array(failed.map { ["run_id": .string($0.run.rawValue), "error": $0.error.json] }),
             "unknown": .array(unknown.map { ["run_id": .string($0.run.rawValue), "step": .string($0.step)] }),
             "not_started": .array(notStarted.map { .string($0.rawValue) })]
        }
    }

    /// The finished runs of `workflow` started at or after `since`, newest first, at most `limit`,
    /// with their steps: what a backtest replays.
    public static func recordedRuns(of workflow: String, since: Date, limit: Int, store: any Store) async throws -> [RunSnapshot] {
        var snapshots: [RunSnapshot] = []
        var before: RunID?
        while snapshots.count < limit {
            let page = try await store.listRuns(RunQuery(workflow: workflow, before: before, limit: 500))
            for run in page where run.createdAt >= since && run.status.isFinished && snapshots.count < limit {
                if let snapshot = try await store.loadRun(run.id) { snapshots.append(snapshot) }
            }
            guard page.count == 500, let last = page.last, last.createdAt >= since else { break }
            before = last.id
        }
        return snapshots
    }

    /// Reads a candidate definition (a workflow file's text) with `configuration`'s connectors, reads
    /// the recorded runs of its workflow id and replays them; the problems when the text is not a
    /// valid workflow.
    public static func run(source: String, file: String, configuration: Configuration, store: any Store, since: Date,
                           limit: Int) async throws -> Result<Report, ConfigurationError> {
        let candidate: Workflow
        switch configuration.workflow(source: source, file: file) {
        case let .success(workflow): candidate = workflow
        case let .failure(error): return .failure(error)
        }
        let runs = try await recordedRuns(of: candidate.id, since: since, limit: limit, store: store)
        let lists = ListIndexSnapshot(lists: try await store.lists())
        return .success(run(candidate, on: runs, lists: lists, connectors: configuration.connectorInstances))
    }

    /// Replays `runs` through `candidate` and compares their decisions.
    public static func run(_ candidate: Workflow, on runs: [RunSnapshot], lists: ListIndexSnapshot,
                           connectors: [String: any Connector]) -> Report {
        var report = Report(workflow: candidate.id)
        var cells: [String: Cell] = [:]
        var order: [String] = []
        for original in runs {
            report.replayed += 1
            switch replay(candidate, original, lists: lists, connectors: connectors) {
            case .notStarted:
                report.notStarted.append(original.run.id)
            case let .unknown(step):
                report.unknown.append((original.run.id, step))
            case let .decided(decision, failure):
                if let failure, original.run.status != .failed {
                    report.failed.append((original.run.id, failure))
                    continue
                }
                guard decision != original.run.decision else {
                    report.unchanged += 1
                    continue
                }
                report.changed += 1
                let key = "\(original.run.decision?.rawValue ?? "null")→\(decision?.rawValue ?? "null")"
                if cells[key] == nil {
                    cells[key] = Cell(from: original.run.decision, to: decision, count: 0, runs: [])
                    order.append(key)
                }
                cells[key]!.count += 1
                if cells[key]!.runs.count < 5 { cells[key]!.runs.append(original.run.id) }
            }
        }
        report.matrix = order.map { cells[$0]! }.sorted { $0.count > $1.count }
        return report
    }

    /// One recorded run through the candidate: the same trigger, at the same time, with the
    /// answers the original received.
    public static func replay(_ candidate: Workflow, _ original: RunSnapshot, lists: ListIndexSnapshot,
                              connectors: [String: any Connector]) -> Outcome {
        let start = original.run.createdAt
        if case .event = candidate.trigger, let event = original.run.event {
            switch candidate.admits(event, lists: lists, now: start) {
            case .success(true): break
            case .success(false), .failure: return .notStarted
            }
        }
        let recorded = Dictionary(original.steps.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        let kinds = candidate.stepsByID
        var snapshot = RunSnapshot(
            run: RunRecord(id: original.run.id, workflow: candidate.id, trigger: original.run.trigger, event: original.run.event,
                           eventText: original.run.eventText, input: original.run.input, createdAt: start),
            steps: [])
        var now = start
        for _ in 0 ..< 1000 {
            var interpreter = RunInterpreter(workflow: candidate, snapshot: snapshot, now: now, lists: lists)
            interpreter.connectorMode = .replay(recorded: recorded)
            interpreter.connectors = connectors
            let checkpoint = interpreter.advance()
            snapshot = snapshot.applying(checkpoint)
            if snapshot.run.status.isFinished {
                return .decided(snapshot.run.decision, failed: snapshot.run.status == .failed ? snapshot.run.error : nil)
            }
            // Waits for an answer get the one the original received; a connector step waits only
            // when the original never finished it.
            var answered = false
            for step in snapshot.steps where step.status == .waiting && step.output == nil && step.error == nil {
                switch kinds[step.id]?.kind {
                case .wait(.duration)?:
                    continue
                case .wait?:
                    guard let answer = recorded[step.id], answer.output != nil || answer.error != nil else {
                        return .unknown(step: step.id)
                    }
                    let patch: StepChange.Patch = if let error = answer.error, answer.output == nil {
                        .failed(error, attempts: nil)
                    } else {
                        .answered(answer.output ?? .null, attempts: nil)
                    }
                    if StepChange(runID: snapshot.run.id, stepID: step.id, deliveryID: nil, patch: patch).apply(to: &snapshot) != nil {
                        answered = true
                    }
                case .connector?:
                    return .unknown(step: step.id)
                default:
                    continue  // a step that waits for the steps inside it
                }
            }
            if answered { continue }
            guard let wake = snapshot.run.wakeAt, wake > now else {
                return .unknown(step: snapshot.steps.last { $0.status == .waiting }?.id ?? "?")
            }
            now = wake
        }
        return .unknown(step: snapshot.steps.last?.id ?? "?")
    }
}
