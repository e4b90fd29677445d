import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Runs due work: new runs handed over by ingest, and runs it claims from the store under a lease
/// (``Store/claimRuns(at:limit:lease:)``): runs woken by a timer or an outside answer, and runs
/// left unfinished by an instance that stopped.
///
/// At most `concurrency` runs advance at once. On graceful shutdown it stops taking work, lets
/// the runs in progress reach their checkpoint, and returns.
public final class RunScheduler: Service {
    let engine: RunEngine
    let queue = WorkQueue()
    let concurrency: Int
    let pollInterval: Duration
    let logger: Logger
    /// Rung when another instance hints that it left work: claim now rather than at the next poll.
    /// Rung when runs may be due: the engine's (``RunEngine/runsDue``), rung by its checkpoints
    /// and by other instances' hints.
    var doorbell: Doorbell { engine.runsDue }

    public init(engine: RunEngine, concurrency: Int = 32, pollInterval: Duration = .milliseconds(200), logger: Logger) {
        self.engine = engine
        self.concurrency = concurrency
        self.pollInterval = pollInterval
        self.logger = logger
    }

    /// Queues a run to advance.
    public func submit(_ id: RunID) {
        queue.push(id)
    }

    public func run() async throws {
        let recovered = try await claim()
        if recovered > 0 { logger.info("resuming runs", metadata: ["count": "\(recovered)"]) }
        try await engine.lists.refresh(from: engine.store, force: true)

        await withDiscardingTaskGroup { group in
            group.addTask { [queue] in
                // Stop taking work when shutdown begins; running advances finish their checkpoint.
                try? await gracefulShutdown()
                queue.close()
            }
            group.addTask { [self] in await pollLoop() }
            for _ in 0 ..< concurrency {
                group.addTask { [self] in await workerLoop() }
            }
        }
        logger.info("run scheduler stopped")
    }

    /// Claims the runs that need advancing and no live lease holds (due timers, answers from
    /// outside, runs left unfinished by a stopped instance), and queues them; returns how many.
    private func claim() async throws -> Int {
        let claimed = try await engine.store.claimRuns(at: engine.clock.now(), limit: 1000, lease: engine.newLease())
        for id in claimed { submit(id) }
        return claimed.count
    }

    private func workerLoop() async {
        while let id = await queue.next() {
            do {
                try await engine.advance(id)
            } catch {
                logger.error("advancing run failed", metadata: ["run_id": "\(id)", "error": "\(error)"])
            }
            queue.finished(id)
        }
    }

    private func pollLoop() async {
        while !queue.isClosed && !Task.isCancelled {
            await doorbell.wait(upTo: pollInterval)
            do {
                _ = try await claim()
                try await engine.lists.refresh(from: engine.store)
            } catch {
                logger.warning("polling for due runs failed", metadata: ["error": "\(error)"])
            }
        }
    }
}

/// A queue of runs to advance: each run at most once in the queue and once in progress; a run
/// submitted while in progress is advanced again after.
final class WorkQueue: Sendable {
    private struct State {
        var items: [RunID] = []
        var head = 0
        var queued: Set<RunID> = []
        var inProgress: Set<RunID> = []
        var again: Set<RunID> = []
        var waiters: [CheckedContinuation<RunID?, Never>] = []
        var closed = false
    }

    private let state = Mutex(State())

    var isClosed: Bool { state.withLock { $0.closed } }

    func push(_ id: RunID) {
        let waiter: CheckedContinuation<RunID?, Never>? = state.withLock { state in
            if state.closed { return nil }
            if state.inProgress.contains(id) {
                state.again.insert(id)
                return nil
            }
            guard state.queued.insert(id).inserted else { return nil }
            if !state.waiters.isEmpty {
                state.queued.remove(id)
                state.inProgress.insert(id)
                return state.waiters.removeFirst()
            }
            state.items.append(id)
            return nil
        }
        waiter?.resume(returning: id)
    }

    func next() async -> RunID? {
        await withCheckedContinuation { continuation in
            let ready: RunID?? = state.withLock { state in
                if state.head < state.items.count {
                    let id = state.items[state.head]
                    state.head += 1
                    if state.head > 1024 && state.head * 2 > state.items.count {
                        state.items.removeFirst(state.head)
                        state.head = 0
                    }
                    state.queued.remove(id)
                    state.inProgress.insert(id)
                    return .some(id)
                }
                if state.closed { return .some(nil) }
                state.waiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func finished(_ id: RunID) {
        let again = state.withLock { state in
            state.inProgress.remove(id)
            return state.again.remove(id) != nil
        }
        if again { push(id) }
    }

    func close() {
        let waiters = state.withLock { state in
            state.closed = true
            let waiters = state.waiters
            state.waiters = []
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: nil) }
    }
}
