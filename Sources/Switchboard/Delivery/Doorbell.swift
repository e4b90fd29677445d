import Synchronization

/// Wakes a waiting loop early: `ring()` ends the current or next `wait(upTo:)`.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func ring() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Returns when rung or after `timeout`, whichever is first.
    func wait(upTo timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state in
                        if state.rung {
                            state.rung = false
                            return true
                        }
                        state.waiter = continuation
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
            group.addTask { try? await Sleep.for(timeout) }
            await group.next()
            group.cancelAll()
            // Whichever finished first, free the other.
            ring()
            await group.next()
            state.withLock { $0.rung = false }
        }
    }
}
