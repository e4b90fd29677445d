import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Starts the runs of `schedule` triggers: one run per tick, and for ticks missed while no
/// instance ran, one catch-up run for the last of them, not one per tick. A workflow's first tick
/// is the first after the gateway started (or after a reload added it). Every instance of a
/// cluster looks; each tick's run is started once (``Gateway/startScheduled(_:tick:)``).
public final class ScheduleRunner: Service {
    let gateway: Gateway
    /// When this runner started looking: a new workflow's first tick comes after it.
    let startedAt: Date
    private let state = Mutex(State())

    private struct State {
        /// The last tick started (by any instance) per workflow, once known.
        var lastTick: [String: Date] = [:]
        /// When each schedule was first seen: its ticks start after that.
        var firstSeen: [String: Date] = [:]
    }

    public init(gateway: Gateway, startedAt: Date? = nil) {
        self.gateway = gateway
        self.startedAt = startedAt ?? gateway.clock.now()
    }

    /// Starts the run each schedule owes at `now`; returns the runs this call started.
    @discardableResult
    public func check(at now: Date) async throws -> [RunReference] {
        var started: [RunReference] = []
        for workflow in gateway.configuration.workflows {
            guard case let .schedule(schedule) = workflow.trigger else { continue }
            let known = state.withLock { state -> (last: Date?, seen: Date) in
                let seen = state.firstSeen[workflow.id] ?? (state.firstSeen.isEmpty ? startedAt : now)
                state.firstSeen[workflow.id] = seen
                return (state.lastTick[workflow.id], seen)
            }
            var last = known.last
            if last == nil { last = try await lastRecordedTick(of: workflow.id) }
            guard let tick = schedule.lastTick(after: last ?? known.seen, through: now) else {
                if let last { state.withLock { $0.lastTick[workflow.id] = last } }
                continue
            }
            let answer = try await gateway.startScheduled(workflow, tick: tick)
            state.withLock { $0.lastTick[workflow.id] = tick }
            if !answer.duplicate {
                started += answer.runs
                gateway.logger.info("scheduled run started", metadata: [
                    "workflow": "\(workflow.id)", "scheduled_at": "\(tick.rfc3339)", "run_id": "\(answer.runs.first?.id.rawValue ?? "")",
                ])
            }
        }
        return started
    }

    /// The tick of the newest scheduled run of a workflow, as the store holds it.
    private func lastRecordedTick(of workflow: String) async throws -> Date? {
        try await gateway.store.listRuns(RunQuery(workflow: workflow, limit: 20)).lazy.compactMap(\.trigger.scheduledAt).first
    }

    /// When the next check is due: the earliest next tick, looked at least once a second (a
    /// reload may add a schedule).
    func nextCheck(after now: Date) -> Date {
        var next = now.addingTimeInterval(1)
        for workflow in gateway.configuration.workflows {
            if case let .schedule(schedule) = workflow.trigger, let tick = schedule.next(after: now), tick < next { next = tick }
        }
        return next
    }

    public func run() async throws {
        guard gateway.configuration.workflows.contains(where: { if case .schedule = $0.trigger { true } else { false } })
            || gateway.loader != nil
        else { return }
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = gateway.clock.now()
            do {
                try await check(at: now)
            } catch {
                gateway.logger.warning("starting scheduled runs failed", metadata: ["error": "\(error)"])
            }
            let wait = max(0.01, nextCheck(after: gateway.clock.now()).timeIntervalSince(gateway.clock.now()))
            try? await cancelWhenGracefulShutdown { try await Sleep.for(.milliseconds(Int64(wait * 1000) + 5)) }
        }
    }
}
