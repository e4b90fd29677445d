import CEL
import Foundation
import Logging

/// Advances runs: loads a run, lets the ``RunInterpreter`` take it as far as it can, and
/// commits the result as one checkpoint. The one place that decides what happens next.
public final class RunEngine: Sendable {
    public let store: any Store
    public let configuration: Configuration
    public let lists: ListIndex
    let clock: any WallClock
    let metrics: GatewayMetrics
    let logger: Logger
    /// This instance: the owner of the leases its claims take.
    public let instance: InstanceID
    /// Notified after every checkpoint.
    public let watcher = RunWatcher()
    /// The delivery worker's intake: checkpoints hand it their deliveries (``claimLocally(_:)``) or
    /// ring it when deliveries wait in the store.
    let deliveries = DeliveryQueue()
    /// Rung when a checkpoint made a step wait for a callback, which may already have arrived.
    let callbacksAwaited = Doorbell()

    public init(store: any Store, configuration: Configuration, lists: ListIndex, clock: any WallClock = SystemWallClock(),
                instance: InstanceID = .local(withProcess: false), metrics: GatewayMetrics, logger: Logger)
    {
        self.instance = instance
        self.store = store
        self.configuration = configuration
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
            guard var checkpoint = step(snapshot) else { return snapshot.run }
            let claimed = claimLocally(&checkpoint)
            do {
                try await store.save(checkpoint)
            } catch let error as StoreError where error.code == .conflict {
                deliveries.release(claimed)
                loaded = nil
                continue
            } catch {
                deliveries.release(claimed)
                throw error
            }
            committed(checkpoint, previous: snapshot.run.status)
            return checkpoint.run
        }
        throw StoreError.conflict("run \(id) kept changing while it was advanced")
    }

    /// The next checkpoint of a run, computed without I/O; nil when there is nothing to do.
    func step(_ snapshot: RunSnapshot) -> RunCheckpoint? {
        guard !snapshot.run.status.isFinished else { return nil }
        guard let workflow = configuration.workflow(snapshot.run.workflow) else {
            var run = snapshot.run
            run.status = .failed
            run.error = StepError(errorClass: "unknown_workflow",
                                  message: "workflow '\(run.workflow)' is not in the loaded configuration")
            run.updatedAt = clock.now()
            return RunCheckpoint(run: run, steps: [])
        }
        var interpreter = RunInterpreter(workflow: workflow, snapshot: snapshot, now: clock.now(), lists: lists.snapshot)
        interpreter.connectors = configuration.connectorInstances
        return interpreter.advance()
    }

    /// After a checkpoint committed: metrics, watchers, and the delivery worker when it made deliveries.
    func committed(_ checkpoint: RunCheckpoint, previous: RunStatus) {
        if let workflow = configuration.workflow(checkpoint.run.workflow) {
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
    }

    /// Claims for this process's delivery worker the deliveries of `checkpoint` that are due now, as
    /// many as it has room for: they are committed `sending` and handed over by ``committed(_:previous:)``,
    /// which spares each a claim transaction. Returns how many were claimed; when the checkpoint
    /// does not commit, give them back with `deliveries.release(_:)`.
    func claimLocally(_ checkpoint: inout RunCheckpoint) -> Int {
        guard !checkpoint.deliveries.isEmpty else { return 0 }
        let now = clock.now()
        let due = checkpoint.deliveries.indices.filter { index in
            let delivery = checkpoint.deliveries[index]
            return delivery.status == .pending && (delivery.nextAttemptAt ?? .distantFuture) <= now
        }
        let granted = deliveries.reserve(due.count)
        let lease = newLease()
        for index in due.prefix(granted) {
            checkpoint.deliveries[index].status = .sending
            checkpoint.deliveries[index].lease = lease
        }
        return granted
    }

    /// A lease held by this instance from now on.
    func newLease() -> Lease {
        Lease(owner: instance, expiresAt: clock.now().addingTimeInterval(Lease.duration))
    }

    /// ``claimLocally(_:)`` for the checkpoints of new runs.
    func claimLocally(_ checkpoints: inout [RunCheckpoint]) -> Int {
        checkpoints.indices.reduce(0) { claimed, index in claimed + claimLocally(&checkpoints[index]) }
    }

    /// Takes new runs as far as they can go before they are first committed, so that their
    /// progress (steps, decision, deliveries) is written in the same transaction that creates
    /// them: a run that needs nothing from outside is complete when its event is acknowledged.
    func startInline(_ runs: [RunRecord]) -> [RunCheckpoint] {
        runs.map { run in step(RunSnapshot(run: run, steps: [])) ?? RunCheckpoint(run: run, steps: []) }
    }

    /// After the checkpoints of new runs were committed: metrics, watchers and the delivery worker.
    func committedInline(_ checkpoints: [RunCheckpoint]) {
        for checkpoint in checkpoints {
            metrics.runTransition(workflow: checkpoint.run.workflow, status: .pending)
            committed(checkpoint, previous: .pending)
        }
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
