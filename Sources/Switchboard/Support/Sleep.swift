import NIOCore
import NIOPosix

/// Sleeps on a NIO event loop's timer instead of the concurrency runtime's.
///
/// `Task.sleep(for:)` waits on libdispatch's timers. In session 4 the test suite hung now and then
/// (about 1 run in 30) with every thread idle, and both times libdispatch's `CLOCK_BOOTTIME`
/// timerfd (the clock of `ContinuousClock`) had fired, its one-shot epoll registration had been
/// used up, and it was never armed again: from then on every `Task.sleep(for:)` in the process
/// waits for ever. The gateway's own waits — the delivery worker's ticker, the scheduler's poll,
/// rate-limit turns, timeouts — and the tests' polls sleep here, on the same timers the HTTP
/// stack uses, so that such a loss cannot stop them. Throws `CancellationError` when the task is
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
