import Foundation
import Synchronization

/// Lets callers await a run reaching a state, notified by the engine after each checkpoint
/// (used by tests, and by anything that wants to answer when a run ends).
public final class RunWatcher: Sendable {
    private struct Waiter {
        let predicate: @Sendable (RunRecord) -> Bool
        let continuation: CheckedContinuation<RunRecord?, Never>
    }

    private let waiters = Mutex<[RunID: [UUID: Waiter]]>([:])

    public init() {}

    /// Called by the engine after it commits a run's checkpoint.
    func notify(_ run: RunRecord) {
        let ready: [CheckedContinuation<RunRecord?, Never>] = waiters.withLock { waiters in
            guard let forRun = waiters[run.id] else { return [] }
            var ready: [CheckedContinuation<RunRecord?, Never>] = []
            for (token, waiter) in forRun where waiter.predicate(run) {
                ready.append(waiter.continuation)
                waiters[run.id]?[token] = nil
            }
            if waiters[run.id]?.isEmpty == true { waiters[run.id] = nil }
            return ready
        }
        for continuation in ready { continuation.resume(returning: run) }
    }

    /// Waits until a checkpoint of the run satisfies `predicate`, or the timeout passes (nil).
    /// The caller checks the current state first: only checkpoints after this call are seen.
    public func wait(for id: RunID, timeout: Duration, until predicate: @escaping @Sendable (RunRecord) -> Bool) async -> RunRecord? {
        let token = UUID()
        return await withTaskGroup(of: RunRecord?.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { continuation in
                    waiters.withLock { $0[id, default: [:]][token] = Waiter(predicate: predicate, continuation: continuation) }
                }
            }
            group.addTask { [self] in
                try? await Task.sleep(for: timeout)
                let pending = waiters.withLock { $0[id]?.removeValue(forKey: token) }
                pending?.continuation.resume(returning: nil)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if first != nil {
                // The timer task is sleeping; cancelling it ends the sleep early.
                let pending = waiters.withLock { $0[id]?.removeValue(forKey: token) }
                pending?.continuation.resume(returning: nil)
            }
            return first
        }
    }
}
