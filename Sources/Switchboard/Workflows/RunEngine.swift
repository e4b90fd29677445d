import CEL
import Foundation
import Logging

/// Advances runs: loads a run, lets the ``RunInterpreter`` take it as far as it can, and
/// commits the result as one checkpoint. The one place that decides what happens next.
public final class RunEngine: Sendable {
    public let store: any Store
    /// The configuration, and the stored workflow versions runs are interpreted by.
    public let live: LiveConfiguration
    /// The configuration new runs start on.
    public var configuration: Configuration { live.current }
    public let lists: ListIndex
    let clock: any WallClock
    let metrics: GatewayMetrics
    let logger: Logger
    /// This instance: the owner of the leases its claims take.
    public let instance: InstanceID
    /// Notified after every checkpoint.
    public let watcher = RunWatcher()
    /// The delivery worker's intake: checkpoints hand it their deliveries (``commit(_:after:_:committed:)``)
    /// or ring it when deliveries wait in the store.
    let deliveries = DeliveryQueue()
    /// Rung when a checkpoint made a step wait for a callback, which may already have arrived.
    let callbacksAwaited = Doorbell()
    /// Rung when a checkpoint made runs due (a child run started, a waiting parent answered):
    /// the scheduler looks for due runs at once.
    let runsDue = Doorbell()

    public init(store: any Store, live: LiveConfiguration, lists: ListIndex, clock: any WallClock = SystemWallClock(),
                instance: InstanceID = .local(withProcess: false), metrics: GatewayMetrics, logger: Logger)
    {
        self.instance = instance
        self.store = store
        self.live = live
        self.lists = lists
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
    }

    /// Advances one run and commits its progress; returns the run as committed. When another
    /// advance of the same run committed first, it reloads and tries again.
    @discardableResult
    public func advance(_ id: RunID) async throws -> RunRecord? {
        var loaded: RunSnapshot?
        for _ in 0 ..< 5 {
            if loaded == nil { loaded = try await store.loadRun(id) }
            guard let snapshot = loaded else {
                logger.warning("run not found", metadata: ["run_id": "\(id)"])
                return nil
            }
            try await live.prepare(for: snapshot.run, store: store)
            guard let checkpoint = step(snapshot) else { return snapshot.run }
            do {
                let saved = try await commit([checkpoint], after: snapshot.run.status) { checkpoints in
                    try await store.save(checkpoints[0])
                    return checkpoints[0]
                } committed: { _ in true }
                return saved.run
            } catch let error as StoreError where error.code == .conflict {
                loaded = nil
            }
        }
        throw StoreError.conflict("run \(id) kept changing while it was advanced")
    }

    /// The next checkpoint of a run, computed without I/O; nil when there is nothing to do.
    func step(_ snapshot: RunSnapshot) -> RunCheckpoint? {
        guard !snapshot.run.status.isFinished else { return nil }
        // A child run started for later (`start_workflow ... after:`) has not begun.
        if snapshot.steps.isEmpty, snapshot.run.status == .waiting, let start = snapshot.run.wakeAt, start > clock.now() { return nil }
        let workflow: Workflow
        switch live.workflow(for: snapshot.run) {
        case let .success(found): workflow = found
        case let .failure(unavailable):
            var run = snapshot.run
            run.status = .failed
            run.error = StepError(errorClass: "unknown_workflow", message: unavailable.description)
            run.updatedAt = clock.now()
            return RunCheckpoint(run: run, steps: [])
        }
        var interpreter = RunInterpreter(workflow: workflow, snapshot: snapshot, now: clock.now(), lists: lists.snapshot)
        let configuration = configuration
        interpreter.connectors = configuration.connectorInstances
        interpreter.workflows = Dictionary(configuration.workflows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return interpreter.advance()
    }

    /// After a checkpoint committed: metrics, watchers, and the delivery worker when it made deliveries.
    func committed(_ checkpoint: RunCheckpoint, previous: RunStatus) {
        if let workflow = try? live.workflow(for: checkpoint.run).get() {
            record(checkpoint, previous: previous, workflow: workflow)
        } else if checkpoint.run.status != previous {
            metrics.runTransition(workflow: checkpoint.run.workflow, status: checkpoint.run.status)
        }
        watcher.notify(checkpoint.run)
        if !checkpoint.deliveries.isEmpty {
            let claimed = checkpoint.deliveries.filter { $0.status == .sending }
            deliveries.hand(claimed)
            if claimed.count < checkpoint.deliveries.count { deliveries.ring() }
        }
        if checkpoint.steps.contains(where: { $0.awaitedCallback != nil && $0.status == .waiting }) { callbacksAwaited.ring() }
        if checkpoint.parentChange != nil || checkpoint.newRuns.contains(where: { $0.status == .pending }) { runsDue.ring() }
    }

    /// Commits `checkpoints` through `write` and hands their due deliveries to this instance's
    /// delivery worker: the one place of the in-memory hand-over. Deliveries due now, as many as
    /// the worker has room for, are written already `sending` under this instance's lease (which
    /// spares each a claim transaction) and handed over once `committed` says the write committed;
    /// otherwise, or when `write` throws, their room is given back. Then metrics and watchers.
    /// `previous`: the runs' status before (nil for new runs).
    func commit<Result>(_ checkpoints: [RunCheckpoint], after previous: RunStatus?,
                        _ write: ([RunCheckpoint]) async throws -> Result,
                        committed wasCommitted: (Result) -> Bool) async throws -> Result
    {
        var checkpoints = checkpoints
        let now = clock.now()
        let lease = newLease()
        var wanted = 0
        for checkpoint in checkpoints {
            wanted += checkpoint.deliveries.count { $0.status == .pending && ($0.nextAttemptAt ?? .distantFuture) <= now }
        }
        let granted = wanted == 0 ? 0 : deliveries.reserve(wanted)
        var left = granted
        for c in checkpoints.indices where left > 0 {
            for d in checkpoints[c].deliveries.indices where left > 0 {
                let delivery = checkpoints[c].deliveries[d]
                guard delivery.status == .pending, (delivery.nextAttemptAt ?? .distantFuture) <= now else { continue }
                checkpoints[c].deliveries[d].status = .sending
                checkpoints[c].deliveries[d].lease = lease
                left -= 1
            }
        }
        let result: Result
        do {
            result = try await write(checkpoints)
        } catch {
            deliveries.release(granted)
            throw error
        }
        guard wasCommitted(result) else {
            deliveries.release(granted)
            return result
        }
        for checkpoint in checkpoints {
            if previous == nil { metrics.runTransition(workflow: checkpoint.run.workflow, status: .pending) }
            committed(checkpoint, previous: previous ?? .pending)
        }
        return result
    }

    /// A lease held by this instance from now on.
    func newLease() -> Lease {
        Lease(owner: instance, expiresAt: clock.now().addingTimeInterval(Lease.duration))
    }

    /// Takes new runs as far as they can go before they are first committed, so that their
    /// progress (steps, decision, deliveries) is written in the same transaction that creates
    /// them: a run that needs nothing from outside is complete when its event is acknowledged.
    func startInline(_ runs: [RunRecord]) -> [RunCheckpoint] {
        runs.map { run in step(RunSnapshot(run: run, steps: [])) ?? RunCheckpoint(run: run, steps: []) }
    }

    private func record(_ checkpoint: RunCheckpoint, previous: RunStatus, workflow: Workflow) {
        let run = checkpoint.run
        if run.status != previous { metrics.runTransition(workflow: run.workflow, status: run.status) }
        let kinds = workflow.stepsByID
        for step in checkpoint.steps where step.endedAt != nil {
            metrics.stepEnded(workflow: run.workflow, kind: kinds[step.id]?.kindName ?? "unknown", status: step.status,
                              duration: step.endedAt!.timeIntervalSince(step.startedAt))
        }
        if run.status.isFinished {
            logger.debug("run finished", metadata: [
                "run_id": "\(run.id)", "workflow": "\(run.workflow)", "status": "\(run.status.rawValue)",
                "decision": "\(run.decision?.rawValue ?? "none")",
            ])
        }
    }
}
