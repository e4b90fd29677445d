import CEL
import Foundation
import Synchronization

/// Limits how many requests to one connector are in flight at once.
final class ConcurrencyLimiter: Sendable {
    private struct State {
        var available: Int
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    init(limit: Int) { state = Mutex(State(available: max(limit, 1))) }

    func acquire() async {
        await withCheckedContinuation { continuation in
            let granted = state.withLock { state in
                if state.available > 0 {
                    state.available -= 1
                    return true
                }
                state.waiters.append(continuation)
                return false
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let waiter: CheckedContinuation<Void, Never>? = state.withLock { state in
            if state.waiters.isEmpty {
                state.available += 1
                return nil
            }
            return state.waiters.removeFirst()
        }
        waiter?.resume()
    }
}

/// A token bucket: `rate.count` requests per `rate.per`, with bursts up to `rate.count`.
final class TokenBucket: Sendable {
    private struct State {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let capacity: Double
    private let perSecond: Double
    private let state: Mutex<State>

    init(_ rate: RateLimitSpec) {
        capacity = Double(rate.count)
        perSecond = Double(rate.count) / rate.per.timeInterval
        state = Mutex(State(tokens: Double(rate.count), updated: .now))
    }

    /// Takes a token, waiting for one when the bucket is empty; returns false, without waiting
    /// any longer, once `abandon` says so (the gateway is stopping).
    func acquire(abandon: () -> Bool = { false }) async -> Bool {
        let wait: Double = state.withLock { state in
            let now = ContinuousClock.now
            let elapsed = (now - state.updated).timeInterval
            state.tokens = min(capacity, state.tokens + elapsed * perSecond)
            state.updated = now
            state.tokens -= 1
            return state.tokens >= 0 ? 0 : -state.tokens / perSecond
        }
        // In slices, so that a stop does not wait for a slow rate's turn.
        let until = ContinuousClock.now + .milliseconds(Int64(wait * 1000))
        while ContinuousClock.now < until {
            if abandon() { return false }
            try? await Sleep.for(min(.milliseconds(50), until - ContinuousClock.now))
        }
        return true
    }
}

/// Opens after `threshold` consecutive failed attempts; after `coolDown` lets one probe through;
/// a successful probe closes it, a failed one opens it again.
final class CircuitBreaker: Sendable {
    enum Phase: Sendable, Equatable {
        case closed(failures: Int)
        case open(until: Date)
        case halfOpen
    }

    private let threshold: Int
    private let coolDown: TimeInterval
    private let phase = Mutex(Phase.closed(failures: 0))

    init(threshold: Int = 10, coolDown: TimeInterval = 30) {
        self.threshold = threshold
        self.coolDown = coolDown
    }

    var current: Phase { phase.withLock { $0 } }

    /// nil when a request may go now; otherwise when to try again.
    func permit(now: Date) -> Date? {
        phase.withLock { phase in
            switch phase {
            case .closed: return nil
            case let .open(until):
                if now >= until {
                    phase = .halfOpen
                    return nil
                }
                return until
            case .halfOpen:
                return now.addingTimeInterval(min(coolDown, 1))
            }
        }
    }

    func record(success: Bool, now: Date) {
        phase.withLock { phase in
            if success {
                phase = .closed(failures: 0)
                return
            }
            switch phase {
            case let .closed(failures):
                phase = failures + 1 >= threshold ? .open(until: now.addingTimeInterval(coolDown)) : .closed(failures: failures + 1)
            case .halfOpen, .open:
                phase = .open(until: now.addingTimeInterval(coolDown))
            }
        }
    }

    /// The state as GET /v1/connectors shows it.
    var json: JSON {
        switch current {
        case let .closed(failures): ["state": "closed", "consecutive_failures": .number(Double(failures))]
        case let .open(until): ["state": "open", "until": .string(until.rfc3339)]
        case .halfOpen: ["state": "half_open"]
        }
    }
}
