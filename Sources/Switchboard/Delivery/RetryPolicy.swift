import Foundation

/// When to try a delivery again: exponential backoff with full jitter, `Retry-After` honoured
/// within bounds, a limit on attempts and on the delivery's age.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var initialInterval: Duration
    public var backoff: Double
    public var maxInterval: Duration
    public var maxAge: Duration
    /// Maps the backoff ceiling to the actual delay; full jitter picks uniformly in [0, ceiling].
    /// Tests inject a deterministic one.
    public var jitter: @Sendable (TimeInterval) -> TimeInterval

    public static let fullJitter: @Sendable (TimeInterval) -> TimeInterval = { ceiling in
        ceiling <= 0 ? 0 : Double.random(in: 0 ... ceiling)
    }

    /// The documented defaults (docs/configuration.md): 8 attempts, 1 s doubling to at most 10 min, for at most 24 h.
    public init(maxAttempts: Int = 8, initialInterval: Duration = .seconds(1), backoff: Double = 2.0,
                maxInterval: Duration = .seconds(600), maxAge: Duration = .seconds(86_400),
                jitter: @escaping @Sendable (TimeInterval) -> TimeInterval = RetryPolicy.fullJitter)
    {
        self.maxAttempts = maxAttempts
        self.initialInterval = initialInterval
        self.backoff = backoff
        self.maxInterval = maxInterval
        self.maxAge = maxAge
        self.jitter = jitter
    }

    /// The connector's settings, then the step's over them.
    public func overridden(by settings: RetrySettings?) -> RetryPolicy {
        guard let settings else { return self }
        var policy = self
        if let value = settings.maxAttempts { policy.maxAttempts = value }
        if let value = settings.initialInterval { policy.initialInterval = value }
        if let value = settings.backoff { policy.backoff = value }
        if let value = settings.maxInterval { policy.maxInterval = value }
        if let value = settings.maxAge { policy.maxAge = value }
        return policy
    }

    /// The delay before attempt `attempts + 1`, after `attempts` failed ones.
    public func delay(afterAttempts attempts: Int, retryAfter: TimeInterval?) -> TimeInterval {
        let cap = maxInterval.timeInterval
        if let retryAfter { return min(max(retryAfter, 0), cap) }
        let ceiling = min(initialInterval.timeInterval * pow(backoff, Double(max(attempts - 1, 0))), cap)
        return jitter(ceiling)
    }

    /// When to try next, or nil when the attempts or the age are used up.
    public func nextAttempt(afterAttempts attempts: Int, createdAt: Date, now: Date, retryAfter: TimeInterval?) -> Date? {
        guard attempts < maxAttempts else { return nil }
        let next = now.addingTimeInterval(delay(afterAttempts: attempts, retryAfter: retryAfter))
        guard next.timeIntervalSince(createdAt) <= maxAge.timeInterval else { return nil }
        return next
    }

    /// Whether a response status is worth another attempt: 408, 425, 429 and 5xx.
    public static func isRetryable(status: Int) -> Bool {
        status == 408 || status == 425 || status == 429 || (500 ... 599).contains(status)
    }

    /// Reads `Retry-After` as seconds or an HTTP date.
    public static func retryAfter(_ value: String?, now: Date) -> TimeInterval? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Double(value) { return max(seconds, 0) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return max(date.timeIntervalSince(now), 0)
    }
}
