import Foundation
import Hummingbird
import Synchronization

/// A token bucket per API key and per client address (`--rate-limit`): a request over the rate is
/// answered 429 with `Retry-After`, before any work is done for it. Counted in this instance's
/// memory: with several instances, each holds a client to the rate.
final class RequestRateLimiter: Sendable {
    private let rate: RateLimitSpec
    private let buckets = Mutex<[String: TokenLevel]>([:])
    /// Buckets kept at most; beyond it, the full ones (idle clients) are forgotten.
    static let most = 100_000

    init(_ rate: RateLimitSpec) { self.rate = rate }

    /// Takes a token for `client`; nil when there was one, otherwise how long until there is.
    func take(_ client: String) -> Duration? {
        let now = ContinuousClock.now
        return buckets.withLock { buckets -> Duration? in
            var level = buckets[client] ?? TokenLevel(rate, now: now)
            let wait = level.take(at: now)
            buckets[client] = level
            if buckets.count > Self.most { buckets = buckets.filter { !$0.value.isFull(at: now) } }
            return wait
        }
    }

    /// The 429 answer for a wait.
    static func problem(_ wait: Duration, _ who: String) -> Problem {
        let seconds = max(1, Int(wait.timeInterval.rounded(.up)))
        return Problem(.tooManyRequests, "too many requests from this \(who); try again in \(seconds) s", retryAfter: seconds)
    }
}

/// Holds each client address to the request rate.
struct AddressRateLimitMiddleware: RouterMiddleware {
    typealias Context = GatewayRequestContext
    let limiter: RequestRateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let address = context.sourceIP, let wait = limiter.take("address:" + address) {
            throw RequestRateLimiter.problem(wait, "address")
        }
        return try await next(request, context)
    }
}
