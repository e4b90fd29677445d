import NIOCore
import NIOPosix

/// Sleeps on a NIO event loop's timer instead of the concurrency runtime's.
///
/// `Task.sleep(for:)` waits on libdispatch's timers. On Swift 6.3.1 for Linux, libdispatch's
/// `CLOCK_BOOTTIME` timerfd (the clock of `ContinuousClock`) was seen to fire, use up its one-shot
/// epoll registration and never be armed again: from then on every `Task.sleep(for:)` in the
/// process waits for ever (docs/testing.md, "When a run hangs"). The gateway's own waits — the
/// delivery worker's ticker, the scheduler's poll, rate-limit turns, timeouts — and the tests'
/// polls sleep here, on the same timers the HTTP stack uses, so that such a loss cannot stop them. Throws `CancellationError` when the task is
/// cancelled, like `Task.sleep`.
public enum Sleep {
    public static func `for`(_ duration: Duration) async throws {
        try Task.checkCancellation()
        let nanoseconds = max(0, Int64(duration.components.seconds) * 1_000_000_000
            + duration.components.attoseconds / 1_000_000_000)
        let scheduled = MultiThreadedEventLoopGroup.singleton.any().scheduleTask(in: .nanoseconds(nanoseconds)) {}
        try await withTaskCancellationHandler {
            do {
                try await scheduled.futureResult.get()
            } catch {
                throw CancellationError()
            }
        } onCancel: {
            scheduled.cancel()
        }
    }
}
