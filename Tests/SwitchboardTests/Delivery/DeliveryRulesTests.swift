import CEL
import Foundation
import Testing
@testable import Switchboard

/// The delivery engine's rules that need no receiver: what an attempt logs, which addresses are
/// refused, and when to try again.
@Suite("Delivery rules")
struct DeliveryRulesTests {
    @Test("an attempt's log record: headers in name order, the last of a repeated name, secrets as ••••")
    func loggedRecord() throws {
        let headers = [("X-Trace", "1"), ("Authorization", "Bearer t"), ("webhook-signature", "v1,abc"), ("X-Trace", "2"),
                       ("X-Token", "s3cret"), ("Content-Type", "application/json")]
        let request = DeliveryWorker.loggedRequest(method: "POST", url: "https://crm.example.com/a?b=\"c\"", headers: headers,
                                                   body: Array("{}".utf8), secretHeaders: ["x-token"])
        let expected: JSON = [
            "method": "POST", "url": "https://crm.example.com/a?b=\"c\"", "body_size": 2,
            "headers": ["Authorization": "••••", "Content-Type": "application/json", "X-Token": "••••", "X-Trace": "2",
                        "webhook-signature": "••••"],
        ]
        #expect(request == expected.text, "the same text as the JSON value's")
        let response = DeliveryWorker.loggedResponse(ConnectorResponse(status: 201, headers: [("Set-Cookie", "a=b"), ("Location", "/t/1")],
                                                                       body: Array("ok".utf8), truncated: true))
        #expect(try JSON.parse(response) == ["status": 201, "body_size": 2, "body_truncated": true, "body_excerpt": "ok",
                                             "headers": ["Location": "/t/1", "Set-Cookie": "••••"]])
    }

    @Test("private addresses are refused without allow_networks")
    func ssrfGuard() async {
        let guardian = SSRFGuard()
        for address in ["127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "192.168.1.1", "::1", "fd00::1", "fe80::1",
                        "203.0.113.9", "[::ffff:7f00:1]"] {
            #expect(await guardian.check(host: address) != nil, "\(address)")
        }
        #expect(await guardian.check(host: "8.8.8.8") == nil)
        #expect(await guardian.check(host: "localhost") != nil, "the resolved address is checked")
        #expect(await SSRFGuard(allowed: [CIDR("127.0.0.0/8")!]).check(host: "127.0.0.1") == nil)
        #expect(await SSRFGuard(allowAll: true).check(host: "10.0.0.1") == nil)
    }

    @Test("retry policy: exponential ceiling, caps, Retry-After within bounds, attempts and age")
    func policy() {
        let policy = RetryPolicy(maxAttempts: 5, initialInterval: .seconds(1), backoff: 2, maxInterval: .seconds(10),
                                 maxAge: .seconds(60), jitter: { $0 })
        #expect((1 ... 6).map { policy.delay(afterAttempts: $0, retryAfter: nil) } == [1, 2, 4, 8, 10, 10])
        #expect(policy.delay(afterAttempts: 1, retryAfter: 30) == 10)
        let start = Date(timeIntervalSince1970: 0)
        #expect(policy.nextAttempt(afterAttempts: 5, createdAt: start, now: start, retryAfter: nil) == nil)
        #expect(policy.nextAttempt(afterAttempts: 2, createdAt: start, now: start.addingTimeInterval(59), retryAfter: nil) == nil)
        #expect(RetryPolicy.retryAfter("Wed, 21 Oct 2015 07:28:10 GMT", now: Date(timeIntervalSince1970: 1_445_412_480)) == 10)
        for status in [408, 425, 429, 500, 503] { #expect(RetryPolicy.isRetryable(status: status)) }
        for status in [301, 400, 401, 404, 422] { #expect(!RetryPolicy.isRetryable(status: status)) }
    }
}

extension DeliveryRulesTests {
    @Test("circuit breaker: opens after the threshold, lets one probe through after the cool-down, a second probe once the first is overdue")
    func breakerRule() throws {
        let rule = CircuitBreaker.Rule(threshold: 3, coolDown: 30)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var phase = CircuitBreaker.Phase.closed(failures: 0)
        for failures in 1 ... 2 {
            phase = rule.record(phase, success: false, now: now)
            #expect(phase == .closed(failures: failures))
        }
        #expect(rule.record(phase, success: true, now: now) == .closed(failures: 0), "a success starts the count again")
        phase = rule.record(phase, success: false, now: now)
        #expect(phase == .open(until: now.addingTimeInterval(30)))
        #expect(rule.permit(phase, now: now.addingTimeInterval(10)) == (phase, now.addingTimeInterval(30)))

        let probing = now.addingTimeInterval(30)
        let (half, probe) = rule.permit(phase, now: probing)
        #expect(half == .halfOpen(until: probing.addingTimeInterval(30)) && probe == nil, "the first after the cool-down probes")
        #expect(rule.permit(half, now: probing.addingTimeInterval(2)) == (half, probing.addingTimeInterval(3)),
                "others ask again in a second")
        let (again, second) = rule.permit(half, now: probing.addingTimeInterval(31))
        #expect(second == nil && again == .halfOpen(until: probing.addingTimeInterval(61)), "an overdue probe lets another go")
        #expect(rule.record(half, success: false, now: probing) == .open(until: probing.addingTimeInterval(30)))
        #expect(rule.record(half, success: true, now: probing) == .closed(failures: 0))
        for value in [phase, half, .closed(failures: 7)] {
            #expect(CircuitBreaker.Phase(text: value.text) == value, "\(value.text) reads back")
        }
        #expect(CircuitBreaker.Phase(text: "ajar 3") == nil)
    }
}

extension DeliveryRulesTests {
    @Test("a token level: a second's worth at once, then one at the rate; take refuses, reserve owes")
    func tokenLevel() throws {
        let start = ContinuousClock.now
        var level = TokenLevel(try #require(RateLimitSpec("2/s")), now: start)
        #expect(level.capacity == 2)
        #expect(level.take(at: start) == nil && level.take(at: start) == nil)
        #expect(level.take(at: start) == .milliseconds(500), "the next token in half a second")
        #expect(level.take(at: start + .milliseconds(500)) == nil)
        #expect(level.reserve(at: start + .milliseconds(500)) == .milliseconds(500), "owed, due in half a second")
        #expect(level.reserve(at: start + .milliseconds(500)) == .milliseconds(1000), "the next behind it")
        #expect(!level.isFull(at: start + .seconds(1)) && level.isFull(at: start + .seconds(3)))
        var slow = TokenLevel(try #require(RateLimitSpec("6/m")), now: start)
        #expect(slow.capacity == 1, "at least one")
        #expect(slow.take(at: start) == nil && slow.take(at: start) == .seconds(10))
    }
}
