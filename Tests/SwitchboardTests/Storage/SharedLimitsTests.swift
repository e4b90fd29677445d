import Foundation
import Logging
import Synchronization
import Testing
@testable import Switchboard

/// The counters instances share through PostgreSQL (``SharedLimits``): a token bucket no two
/// takers spend twice, slots no two hold at once, values replaced only at the version read, and a
/// circuit breaker two instances open together. (SQLite is used by one instance and has none.)
@Suite("Shared limits", .timeLimit(.minutes(2)), .enabled(if: StoreKind.postgresURL != nil))
struct SharedLimitsTests {
    @Test("a token bucket: its burst at once, then one taker after another at the rate, however many take at once")
    func tokenBucket() async throws {
        try await StoreKind.postgres.withStore { store in
            let limits = try #require(store.sharedLimits)
            #expect(try await limits.takeToken("b", capacity: 2, perSecond: 1) == .zero)
            #expect(try await limits.takeToken("b", capacity: 2, perSecond: 1) == .zero)
            // The rest take at once; each learns when its turn is. The turns, not the moments of
            // asking (a loaded machine spreads those), are a second apart.
            let turns = try await withThrowingTaskGroup(of: ContinuousClock.Instant.self) { group in
                for _ in 0 ..< 12 {
                    group.addTask { ContinuousClock.now + (try await limits.takeToken("b", capacity: 2, perSecond: 1)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }.sorted()
            }
            // Each answer is timed when it arrives, so a loaded machine blurs each turn by its
            // answer's delay: no two turns together, and a second apart on average.
            let gaps = zip(turns, turns.dropFirst()).map { ($1 - $0).timeInterval }
            #expect(gaps.allSatisfy { $0 > 0.3 }, "no two takers share a turn: \(gaps)")
            let mean = gaps.reduce(0, +) / Double(gaps.count)
            #expect(mean > 0.85 && mean < 1.15, "turns a second apart on average: \(mean) s (\(gaps))")
        }
    }

    @Test("slots: no two holders at once, given back or lost when the hold ends, all of an instance's given back")
    func slots() async throws {
        try await StoreKind.postgres.withStore { store in
            let limits = try #require(store.sharedLimits)
            let (a, b) = (InstanceID("a"), InstanceID("b"))
            let first = try await limits.takeSlot("s", limit: 2, holder: a, hold: .seconds(30))
            let second = try await limits.takeSlot("s", limit: 2, holder: b, hold: .seconds(30))
            #expect(Set([first, second]) == [0, 1])
            #expect(try await limits.takeSlot("s", limit: 2, holder: b, hold: .seconds(30)) == nil)
            try await limits.releaseSlot("s", slot: try #require(first), holder: b)
            #expect(try await limits.takeSlot("s", limit: 2, holder: b, hold: .seconds(30)) == nil, "only its holder gives a slot back")
            try await limits.releaseSlot("s", slot: try #require(first), holder: a)
            #expect(try await limits.takeSlot("s", limit: 2, holder: a, hold: .milliseconds(200)) == first)
            try await Sleep.for(.milliseconds(400))
            #expect(try await limits.takeSlot("s", limit: 2, holder: b, hold: .seconds(30)) == first, "a hold that ended is lost")
            try await limits.releaseSlots(heldBy: b)
            #expect(try await limits.takeSlot("s", limit: 2, holder: a, hold: .seconds(30)) != nil)
            #expect(try await limits.takeSlot("s", limit: 1, holder: a, hold: .seconds(30)) == nil, "a smaller limit uses fewer slots")
        }
    }

    @Test("a shared value is replaced only at the version read")
    func values() async throws {
        try await StoreKind.postgres.withStore { store in
            let limits = try #require(store.sharedLimits)
            #expect(try await limits.sharedValue("v") == nil)
            #expect(try await limits.replaceSharedValue("v", with: "one", expecting: nil))
            #expect(try await limits.replaceSharedValue("v", with: "other", expecting: nil) == false, "only one creates it")
            let read = try #require(try await limits.sharedValue("v"))
            #expect(read.text == "one")
            #expect(try await limits.replaceSharedValue("v", with: "two", expecting: read.version))
            #expect(try await limits.replaceSharedValue("v", with: "three", expecting: read.version) == false, "another wrote first")
            #expect(try await limits.sharedValue("v")?.text == "two")
        }
    }

    @Test("a circuit breaker two instances share opens on their failures together")
    func breaker() async throws {
        try await StoreKind.postgres.withStore { store in
            let limits = try #require(store.sharedLimits)
            let rule = CircuitBreaker.Rule(threshold: 3, coolDown: 30)
            func instance(_ id: String) -> CircuitBreaker {
                CircuitBreaker(rule: rule, shared: SharedFlow(limits: limits, connector: "vendor", holder: InstanceID(id),
                                                              logger: Logger(label: "test")))
            }
            let (a, b) = (instance("a"), instance("b"))
            let now = Date(microseconds: Date().microseconds)  // as the database keeps it
            #expect(await a.permit(now: now) == nil)
            #expect(await b.permit(now: now) == nil)
            await a.record(success: false, now: now)
            await a.record(success: false, now: now)
            await b.record(success: false, now: now)  // the third in a row, counted across both
            #expect(b.current == .open(until: now.addingTimeInterval(30)))
            // What another instance wrote is seen within a second.
            try await Sleep.for(.milliseconds(1100))
            #expect(await a.permit(now: now) == now.addingTimeInterval(30))

            let later = now.addingTimeInterval(31)
            #expect(await a.permit(now: later) == nil, "one probe after the cool-down")
            try await Sleep.for(.milliseconds(1100))
            #expect(await b.permit(now: later) != nil, "and only one")
            await a.record(success: true, now: later)
            try await Sleep.for(.milliseconds(1100))
            #expect(await b.permit(now: later) == nil, "the probe's success closed it for both")
        }
    }

    @Test("instances started together sign with one gateway key, generated by the first and kept in the database")
    func gatewayKey() async throws {
        try await StoreKind.postgres.withStore { store in
            let limits = try #require(store.sharedLimits)
            let keys = try await withThrowingTaskGroup(of: GatewayKey.self) { group in
                for _ in 0 ..< 4 { group.addTask { try await GatewayKey.shared(in: limits) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(Set(keys.map { $0.sign("run_1/review") }).count == 1)
            #expect(try await GatewayKey.shared(in: limits).sign("x") == keys[0].sign("x"), "the same after a restart")
        }
    }
}

extension SharedLimitsTests {
    @Test("work that any instance could take is hinted to the listening instances when it commits, a leased one is not")
    func workHints() async throws {
        try await StoreKind.postgres.withStore { store in
            let hints = Hints()
            let watcher = Task { await store.watchForWork { hints.add() } }
            defer { watcher.cancel() }
            try await Sleep.for(.milliseconds(300))  // listening
            let run = RunRecord(id: .generate(), workflow: "w", trigger: RunTrigger(api: true), createdAt: Date())
            try await store.createRuns([RunCheckpoint(run: run, steps: [])])
            func delivery(lease: Lease?) -> Delivery {
                Delivery(id: .generate(), runID: run.id, stepID: "s", connector: "c", operation: "o",
                         status: lease == nil ? .pending : .sending, request: OutboundRequest(method: "POST", url: "http://127.0.0.1:9/"),
                         nextAttemptAt: Date(), createdAt: Date(), lease: lease)
            }
            try await store.enqueue([delivery(lease: Lease(owner: InstanceID("a"), expiresAt: Date().addingTimeInterval(30)))])
            try await Sleep.for(.milliseconds(300))
            #expect(hints.count == 0, "a delivery its instance holds is nobody else's work")
            try await Sleep.for(.milliseconds(100))
            try await store.enqueue([delivery(lease: nil)])
            let deadline = ContinuousClock.now + .seconds(5)
            while hints.count == 0 && ContinuousClock.now < deadline { try await Sleep.for(.milliseconds(10)) }
            #expect(hints.count >= 1, "a pending delivery is hinted")
        }
    }

    final class Hints: Sendable {
        private let seen = Mutex(0)
        func add() { seen.withLock { $0 += 1 } }
        var count: Int { seen.withLock { $0 } }
    }
}
