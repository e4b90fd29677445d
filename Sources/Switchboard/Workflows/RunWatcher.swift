import Foundation
import Synchronization

/// Lets callers await a run reaching a state, notified by the engine after each checkpoint
/// (used by tests, and by anything that wants to answer when a run ends).
public final class RunWatcher: Sendable {
    private struct Waiter {
        let predicate: @Sendable (RunRecord) -> Bool
        let continuation: AsyncStream<RunRecord>.Continuation
    }

    private let waiters = Mutex<[RunID: [UUID: Waiter]]>([:])

    public init() {}

    /// Called by the engine after it commits a run's checkpoint.
    func notify(_ run: RunRecord) {
        let ready: [AsyncStream<RunRecord>.Continuation] = waiters.withLock { waiters in
            guard let forRun = waiters[run.id] else { return [] }
            var ready: [AsyncStream<RunRecord>.Continuation] = []
            for (token, waiter) in forRun where waiter.predicate(run) {
                ready.append(waiter.continuation)
                waiters[run.id]?[token] = nil
            }
            if waiters[run.id]?.isEmpty == true { waiters[run.id] = nil }
            return ready
        }
        for continuation in ready {
            continuation.yield(run)
            continuation.finish()
        }
    }

    /// Waits until the run satisfies `predicate`, or the timeout passes (nil).
    ///
    /// The waiter is registered before `current` reads the run's present state, so a checkpoint
    /// committed in between is never missed: either `current` sees it or the waiter is notified.
    public func wait(for id: RunID, timeout: Duration, until predicate: @escaping @Sendable (RunRecord) -> Bool,
                     current: @Sendable () async throws -> RunRecord?) async -> RunRecord? {
        let token = UUID()
        let (stream, continuation) = AsyncStream<RunRecord>.makeStream()
        waiters.withLock { $0[id, default: [:]][token] = Waiter(predicate: predicate, continuation: continuation) }
        defer {
            let pending = waiters.withLock { waiters -> Waiter? in
                let removed = waiters[id]?.removeValue(forKey: token)
                if waiters[id]?.isEmpty == true { waiters[id] = nil }
                return removed
            }
            pending?.continuation.finish()
        }
        if let run = try? await current(), predicate(run) { return run }
        return await withTaskGroup(of: RunRecord?.self) { group in
            group.addTask {
                for await run in stream { return run }
                return nil
            }
            group.addTask {
                try? await Sleep.for(timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
    }
}
