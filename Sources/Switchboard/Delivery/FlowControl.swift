import CEL
import Foundation
import Logging
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

/// Where a connector's limits are counted when instances share them: the store's
/// ``SharedLimits``, under names derived from the connector's id.
struct SharedFlow: Sendable {
    let limits: any SharedLimits
    let connector: String
    /// Who holds a slot: this instance.
    let holder: InstanceID
    let logger: Logger

    func name(_ limit: String) -> String { "connector:\(connector):\(limit)" }

    /// `operation`, tried again every second while the database cannot be reached (a limit is
    /// never skipped), until `abandon` says to stop: then nil.
    func persistently<T: Sendable>(_ what: String, abandon: () -> Bool,
                                   _ operation: () async throws -> T) async -> T? {
        while true {
            do { return try await operation() } catch {
                if abandon() { return nil }
                logger.warning("a shared limit could not be read", metadata: [
                    "connector": "\(connector)", "limit": "\(what)", "error": "\(error)"])
                try? await Sleep.for(.seconds(1))
                if abandon() { return nil }
            }
        }
    }
}

/// A token bucket's arithmetic: `perSecond` tokens a second up to `capacity` (one second's
/// worth, at least one), and the tokens there are now. Shared by the delivery worker's buckets
/// (``TokenBucket``) and the API's (``RequestRateLimiter``).
struct TokenLevel: Sendable {
    let capacity: Double
    let perSecond: Double
    private(set) var tokens: Double
    private var updated: ContinuousClock.Instant

    init(_ rate: RateLimitSpec, now: ContinuousClock.Instant = .now) {
        perSecond = Double(rate.count) / rate.per.timeInterval
        capacity = max(1, perSecond)
        tokens = capacity
        updated = now
    }

    /// Whether the bucket would be full at `now` (an idle client's).
    func isFull(at now: ContinuousClock.Instant) -> Bool { tokens + (now - updated).timeInterval * perSecond >= capacity }

    private mutating func refill(at now: ContinuousClock.Instant) {
        tokens = min(capacity, tokens + (now - updated).timeInterval * perSecond)
        updated = now
    }

    /// Takes a token whether or not one is there, owing it when not; how long until it is due.
    mutating func reserve(at now: ContinuousClock.Instant) -> Duration {
        refill(at: now)
        tokens -= 1
        return tokens >= 0 ? .zero : wait(for: -tokens)
    }

    /// Takes a token if one is there (nil); otherwise takes none and says how long until one is.
    mutating func take(at now: ContinuousClock.Instant) -> Duration? {
        refill(at: now)
        guard tokens >= 1 else { return wait(for: 1 - tokens) }
        tokens -= 1
        return nil
    }

    private func wait(for missing: Double) -> Duration { .milliseconds(Int64((missing / perSecond * 1000).rounded(.up))) }
}

/// A token bucket: `rate.count` requests per `rate.per` on average, in bursts of up to one
/// second's worth (at least one). Counted in this process's memory, or in the database when
/// instances share it (``SharedFlow``), so that the rate holds for all of them together.
final class TokenBucket: Sendable {
    let capacity: Double
    let perSecond: Double
    private let level: Mutex<TokenLevel>
    private let shared: SharedFlow?

    init(_ rate: RateLimitSpec, shared: SharedFlow? = nil) {
        let level = TokenLevel(rate)
        capacity = level.capacity
        perSecond = level.perSecond
        self.level = Mutex(level)
        self.shared = shared
    }

    /// Takes a token, waiting for one when the bucket is empty; returns false, without waiting
    /// any longer, once `abandon` says so (the gateway is stopping).
    func acquire(abandon: () -> Bool = { false }) async -> Bool {
        let wait: Duration
        if let shared {
            guard let due = await shared.persistently("rate_limit", abandon: abandon, {
                try await shared.limits.takeToken(shared.name("rate_limit"), capacity: capacity, perSecond: perSecond)
            }) else { return false }
            wait = due
        } else {
            wait = level.withLock { $0.reserve(at: .now) }
        }
        // In slices, so that a stop does not wait for a slow rate's turn.
        let until = ContinuousClock.now + wait
        while ContinuousClock.now < until {
            if abandon() { return false }
            try? await Sleep.for(min(.milliseconds(50), until - ContinuousClock.now))
        }
        return true
    }
}

/// A connector's `concurrency` held for all instances together: each request in flight holds
/// one of its slots in the database, for at most `hold` (an instance that dies lets go of them).
struct SharedSlots: Sendable {
    let flow: SharedFlow
    let limit: Int
    let hold: Duration

    /// Waits for a free slot; nil once `abandon` says so.
    func take(abandon: () -> Bool) async -> Int? {
        var pause = Duration.milliseconds(5)
        while true {
            guard let taken = await flow.persistently("concurrency", abandon: abandon, {
                try await flow.limits.takeSlot(flow.name("concurrency"), limit: limit, holder: flow.holder, hold: hold)
            }) else { return nil }
            if let slot = taken { return slot }
            if abandon() { return nil }
            try? await Sleep.for(pause)
            pause = min(pause * 2, .milliseconds(200))
        }
    }

    func release(_ slot: Int) async {
        do {
            try await flow.limits.releaseSlot(flow.name("concurrency"), slot: slot, holder: flow.holder)
        } catch {
            // It frees itself when its hold ends.
            flow.logger.warning("a concurrency slot could not be given back", metadata: [
                "connector": "\(flow.connector)", "slot": "\(slot)", "error": "\(error)"])
        }
    }
}

/// Opens after `threshold` consecutive failed attempts; after `coolDown` lets one probe through;
/// a successful probe closes it, a failed one opens it again.
///
/// The rule is ``Rule`` (pure); the phase lives in this process, or in the database when instances
/// share it (``SharedFlow``): each reads it at most a second old and replaces it, version-checked,
/// only when the rule changes it, so that a healthy connector costs one read a second.
final class CircuitBreaker: Sendable {
    enum Phase: Sendable, Equatable {
        case closed(failures: Int)
        case open(until: Date)
        /// One probe is out; until `until` nobody else probes.
        case halfOpen(until: Date)
    }

    /// What a permit and an attempt's result do to a phase.
    struct Rule: Sendable {
        var threshold = 10
        var coolDown: TimeInterval = 30

        /// The phase after asking to send at `now`, and nil when the request may go, otherwise
        /// when to ask again.
        func permit(_ phase: Phase, now: Date) -> (Phase, Date?) {
            switch phase {
            case .closed: (phase, nil)
            case let .open(until) where now >= until: (.halfOpen(until: now.addingTimeInterval(coolDown)), nil)
            case let .open(until): (phase, until)
            // The probe did not answer in time (its instance went away): this one probes.
            case let .halfOpen(until) where now >= until: (.halfOpen(until: now.addingTimeInterval(coolDown)), nil)
            case .halfOpen: (phase, now.addingTimeInterval(min(coolDown, 1)))
            }
        }

        /// The phase after an attempt at `now` succeeded or failed.
        func record(_ phase: Phase, success: Bool, now: Date) -> Phase {
            if success { return .closed(failures: 0) }
            return switch phase {
            case let .closed(failures) where failures + 1 < threshold: .closed(failures: failures + 1)
            case .closed, .halfOpen, .open: .open(until: now.addingTimeInterval(coolDown))
            }
        }
    }

    private struct Cached {
        var phase = Phase.closed(failures: 0)
        /// The shared value's version the phase was read at; nil when none was written.
        var version: Int64?
        var readAt: ContinuousClock.Instant?
    }

    let rule: Rule
    private let cached = Mutex(Cached())
    private let shared: SharedFlow?

    init(rule: Rule = Rule(), shared: SharedFlow? = nil) {
        self.rule = rule
        self.shared = shared
    }

    /// The phase as last seen.
    var current: Phase { cached.withLock { $0.phase } }

    /// nil when a request may go now; otherwise when to try again.
    func permit(now: Date) async -> Date? {
        await change { rule.permit($0, now: now) }
    }

    func record(success: Bool, now: Date) async {
        await change { (rule.record($0, success: success, now: now), ()) }
    }

    /// Applies `transition` to the phase: in memory, or to the shared value, version-checked,
    /// reading it again when another instance wrote first.
    private func change<R: Sendable>(_ transition: (Phase) -> (Phase, R)) async -> R {
        guard let shared else { return applyLocally(transition) }
        let name = shared.name("circuit_breaker")
        for _ in 0..<5 {
            var seen = cached.withLock { $0 }
            do {
                if seen.readAt.map({ ContinuousClock.now - $0 > .seconds(1) }) ?? true {
                    let value = try await shared.limits.sharedValue(name)
                    seen = Cached(phase: value.flatMap { Phase(text: $0.text) } ?? .closed(failures: 0), version: value?.version,
                                  readAt: .now)
                    cached.withLock { $0 = seen }
                }
                let (next, result) = transition(seen.phase)
                if next == seen.phase { return result }
                if try await shared.limits.replaceSharedValue(name, with: next.text, expecting: seen.version) {
                    cached.withLock { $0 = Cached(phase: next, version: (seen.version ?? 0) + 1, readAt: .now) }
                    return result
                }
                cached.withLock { $0.readAt = nil }  // another instance wrote first: read it again
            } catch {
                shared.logger.warning("the shared circuit breaker could not be read", metadata: [
                    "connector": "\(shared.connector)", "error": "\(error)"])
                return applyLocally(transition)
            }
        }
        return applyLocally(transition)
    }

    private func applyLocally<R: Sendable>(_ transition: (Phase) -> (Phase, R)) -> R {
        cached.withLock { cached in
            let (next, result) = transition(cached.phase)
            cached.phase = next
            return result
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

extension CircuitBreaker.Phase {
    /// The phase as the shared value holds it: `closed N`, `open MICROSECONDS`, `half_open MICROSECONDS`.
    var text: String {
        switch self {
        case let .closed(failures): "closed \(failures)"
        case let .open(until): "open \(until.microseconds)"
        case let .halfOpen(until): "half_open \(until.microseconds)"
        }
    }

    init?(text: String) {
        let parts = text.split(separator: " ")
        guard parts.count == 2, let number = Int64(parts[1]) else { return nil }
        switch parts[0] {
        case "closed": self = .closed(failures: Int(number))
        case "open": self = .open(until: Date(microseconds: number))
        case "half_open": self = .halfOpen(until: Date(microseconds: number))
        default: return nil
        }
    }
}

/// A connector's flow control: its concurrency, rate and circuit breaker, counted in this process
/// or, when the store shares limits between instances, in the database.
final class ConnectorFlow: Sendable {
    let limiter: ConcurrencyLimiter
    let slots: SharedSlots?
    let bucket: TokenBucket?
    let breaker: CircuitBreaker

    init(connector: String, settings: DeliverySettings, shared: SharedFlow?) {
        limiter = ConcurrencyLimiter(limit: settings.concurrency)
        // A slot outlives its request's longest wait, so that only a dead holder loses one.
        slots = shared.map { SharedSlots(flow: $0, limit: settings.concurrency, hold: settings.totalTimeout + .seconds(Lease.duration)) }
        bucket = settings.rateLimit.map { TokenBucket($0, shared: shared) }
        breaker = CircuitBreaker(rule: CircuitBreaker.Rule(threshold: settings.breakerThreshold,
                                                           coolDown: settings.breakerOpenFor.timeInterval), shared: shared)
    }

    /// A request's turn: a place within the concurrency limit and a token of the rate.
    struct Turn: Sendable {
        let flow: ConnectorFlow
        let slot: Int?

        /// Gives back the concurrency the request held.
        func end() async {
            if let slot { await flow.slots?.release(slot) }
            flow.limiter.release()
        }
    }

    /// Waits for a request's turn; nil, holding nothing, once `abandon` says so (the gateway is stopping).
    func turn(abandon: () -> Bool) async -> Turn? {
        await limiter.acquire()
        var slot: Int?
        if let slots {
            guard let taken = await slots.take(abandon: abandon) else {
                limiter.release()
                return nil
            }
            slot = taken
        }
        let turn = Turn(flow: self, slot: slot)
        if abandon() {
            await turn.end()
            return nil
        }
        if let bucket, await !bucket.acquire(abandon: abandon) {
            await turn.end()
            return nil
        }
        return turn
    }
}
