import Foundation
import Testing
@testable import Switchboard

/// The delivery worker's intake: room is reserved before a commit and given back when it fails,
/// handed deliveries come out once, the store is looked at only when rung and when there is room.
@Suite("Delivery queue")
struct DeliveryQueueTests {
    func delivery(_ n: Int) -> Delivery {
        Delivery(id: DeliveryID(rawValue: "dlv_\(n)"), runID: RunID(rawValue: "run_1"), stepID: "send", connector: "c",
                 operation: "request", status: .sending, request: OutboundRequest(method: "POST", url: "http://127.0.0.1/"),
                 nextAttemptAt: Date(), createdAt: Date())
    }

    @Test("nothing is reserved before the worker opens the queue, nor after it closes")
    func closedQueue() async {
        let queue = DeliveryQueue(capacity: 4, claimBatch: 2)
        #expect(queue.reserve(2) == 0)
        queue.open()
        #expect(queue.reserve(3) == 3)
        queue.close()
        #expect(queue.reserve(1) == 0)
        let work = await queue.next()
        #expect(work.closed)
    }

    @Test("reservations stop at the capacity; released and finished room can be reserved again")
    func capacity() async {
        let queue = DeliveryQueue(capacity: 4, claimBatch: 2)
        queue.open()
        // The first look at the store takes room for a claim.
        let first = await queue.next()
        #expect(first.claimRoom == 2 && first.handed.isEmpty)
        queue.release(2)
        #expect(queue.reserve(3) == 3)
        #expect(queue.reserve(3) == 1, "only the room left")
        #expect(queue.reserve(1) == 0)
        queue.release(2)  // a commit failed
        #expect(queue.inFlight == 2)
        queue.finished()
        #expect(queue.reserve(5) == 3)
        #expect(queue.inFlight == 4)
    }

    @Test("handed deliveries come out once, in order, and wake a waiting worker")
    func handOver() async throws {
        let queue = DeliveryQueue(capacity: 8, claimBatch: 4)
        queue.open()
        let initial = await queue.next()
        queue.release(initial.claimRoom)
        #expect(queue.reserve(3) == 3)
        async let waited = queue.next()
        try await Sleep.for(.milliseconds(20))
        queue.hand([delivery(1), delivery(2)])
        let work = await waited
        #expect(work.handed.map(\.id.rawValue) == ["dlv_1", "dlv_2"])
        #expect(work.claimRoom == 0, "the store was not rung")
        queue.hand([delivery(3)])
        queue.ring()
        let next = await queue.next()
        #expect(next.handed.map(\.id.rawValue) == ["dlv_3"])
        #expect(next.claimRoom == 4, "rung, with room: claim")
    }

    @Test("a ring while the queue is full waits for room")
    func ringWhenFull() async throws {
        let queue = DeliveryQueue(capacity: 2, claimBatch: 2)
        queue.open()
        let initial = await queue.next()
        #expect(initial.claimRoom == 2)  // the worker claimed two, both in flight
        queue.ring()
        async let waited = queue.next()
        try await Sleep.for(.milliseconds(20))
        queue.finished()
        let work = await waited
        #expect(work.claimRoom == 1)
    }
}

extension DeliveryQueueTests {
    @Test("a rate limit's wait is given up as soon as the worker stops")
    func bucketAbandoned() async throws {
        let bucket = TokenBucket(try #require(RateLimitSpec("1/m")))
        #expect(await bucket.acquire())
        let queue = DeliveryQueue()
        queue.open()
        let started = ContinuousClock.now
        async let waited = bucket.acquire(abandon: { queue.isClosed })
        try await Sleep.for(.milliseconds(100))
        queue.close()
        #expect(await waited == false)
        // Half the minute a token takes: a loaded machine may delay the wake-up by seconds.
        #expect(ContinuousClock.now - started < .seconds(30), "not the minute a token takes")
    }
}
