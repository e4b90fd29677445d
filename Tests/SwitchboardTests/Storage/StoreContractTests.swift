import CEL
import Foundation
import Testing
@testable import Switchboard

/// The behaviour every Store must have: each test runs against SQLite in a temporary file, and
/// against PostgreSQL in a database of its own when `SWITCHBOARD_TEST_POSTGRES_URL` is set
/// (`scripts/test` starts a throw-away cluster and sets it).
@Suite("Store contract", .timeLimit(.minutes(3)))
struct StoreContractTests {

    func run(_ workflow: String = "w", at date: Date = Date()) -> RunRecord {
        RunRecord(id: .generate(at: date), workflow: workflow, trigger: RunTrigger(api: true), input: ["x": 1], createdAt: date)
    }

    @Test("an event and its runs are written together; a duplicate returns the original", arguments: StoreKind.available)
    func ingest(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let runs = [run("a"), run("b")]
            let event = EventRecord(id: .generate(), dedupeKey: "k1", type: "t", source: "s", payload: ["id": "k1"],
                                    receivedAt: Date(), runs: runs.map { RunReference(id: $0.id, workflow: $0.workflow) })
            guard case .accepted = try await store.ingest(event, runs: runs) else { Issue.record("not accepted"); return }
            let again = EventRecord(id: .generate(), dedupeKey: "k1", type: "t", source: "s", payload: [:], receivedAt: Date(),
                                    runs: [])
            guard case let .duplicate(original) = try await store.ingest(again, runs: [run("c")]) else {
                Issue.record("duplicate not detected"); return
            }
            #expect(original.id == event.id)
            #expect(original.runs.map(\.workflow) == ["a", "b"])
            #expect(try await store.listRuns(RunQuery()).count == 2)
        }
    }

    @Test("concurrent writes are all committed (group commit)", arguments: StoreKind.available)
    func concurrentWrites(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0 ..< 200 {
                    group.addTask {
                        let r = RunRecord(id: .generate(), workflow: "w", trigger: RunTrigger(), createdAt: Date())
                        let e = EventRecord(id: .generate(), dedupeKey: "e\(n % 150)", type: "t", source: "s", payload: [:],
                                            receivedAt: Date(), runs: [RunReference(id: r.id, workflow: "w")])
                        _ = try await store.ingest(e, runs: [r])
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await store.listRuns(RunQuery(limit: 500)).count == 150)
        }
    }

    @Test("checkpoints upsert steps and update the run; due runs come back by wake time", arguments: StoreKind.available)
    func checkpoints(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            var record = run()
            try await store.createRuns([record])
            let now = Date()
            record.status = .waiting
            record.wakeAt = now.addingTimeInterval(5)
            record.tags = ["t"]
            let step = StepRecord(id: "s1", parent: nil, sequence: 1, status: .waiting, startedAt: now, wakeAt: record.wakeAt)
            try await store.save(RunCheckpoint(run: record, steps: [step]))
            #expect(try await store.claimRuns(at: now, limit: 10, lease: .test(at: now)).isEmpty)
            #expect(try await store.claimRuns(at: now.addingTimeInterval(6), limit: 10, lease: .test(at: now.addingTimeInterval(6))) == [record.id])
            #expect(try await store.claimRuns(at: now.addingTimeInterval(6), limit: 10, lease: .test(at: now)).isEmpty,
                    "a claimed run is not claimed again while its lease holds")

            var done = step
            done.status = .completed
            done.endedAt = now
            done.output = ["ok": true]
            record.status = .completed
            record.decision = .approved
            // A checkpoint made from the version before the last save is refused.
            await #expect(throws: StoreError.self) { try await store.save(RunCheckpoint(run: record, steps: [done])) }
            record.version = 1
            try await store.save(RunCheckpoint(run: record, steps: [done]))
            #expect(try await store.loadRun(record.id)?.run.version == 2)
            let loaded = try #require(try await store.loadRun(record.id))
            #expect(loaded.run.status == .completed)
            #expect(loaded.run.decision == .approved)
            #expect(loaded.run.tags == ["t"])
            #expect(loaded.run.input == ["x": 1])
            #expect(loaded.steps.count == 1)
            #expect(loaded.steps[0].output == ["ok": true])
            #expect(abs(loaded.steps[0].startedAt.timeIntervalSince(now)) < 0.001)
        }
    }

    @Test("a waiting step is resolved once", arguments: StoreKind.available)
    func resolveOnce(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            var record = run()
            try await store.createRuns([record])
            record.status = .waiting
            try await store.save(RunCheckpoint(run: record, steps: [
                StepRecord(id: "review", parent: nil, sequence: 1, status: .waiting, startedAt: Date()),
            ]))
            #expect(try await store.answer(.decision(["decision": "approve"], run: record.id, step: "review")) == .resolved)
            #expect(try await store.answer(.decision(["decision": "decline"], run: record.id, step: "review")) == .stepNotWaiting)
            #expect(try await store.answer(.decision([:], run: RunID("run_x"), step: "review")) == .runNotFound)
            // A checkpoint made before the answer is refused: the answer moved the run's version.
            record.version = 1
            await #expect(throws: StoreError.self) {
                try await store.save(RunCheckpoint(run: record, steps: [
                    StepRecord(id: "review", parent: nil, sequence: 1, status: .waiting, startedAt: Date()),
                ]))
            }
            // And a checkpoint that does not carry the answer never erases it.
            record.version = try #require(try await store.loadRun(record.id)).run.version
            try await store.save(RunCheckpoint(run: record, steps: [
                StepRecord(id: "review", parent: nil, sequence: 1, status: .waiting, startedAt: Date()),
            ]))
            #expect(try await store.loadRun(record.id)?.steps.first?.output?["decision"] == "approve")
        }
    }

    @Test("deliveries: outbox with the checkpoint, claim once, attempts logged, settle the step, prune old attempts", arguments: StoreKind.available)
    func deliveries(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            var record = run(at: now)
            try await store.createRuns([record])
            let delivery = Delivery(id: .generate(at: now), runID: record.id, stepID: "send", connector: "crm", operation: "request",
                                    request: OutboundRequest(method: "POST", url: "https://crm.example.com/x", body: "{}"),
                                    nextAttemptAt: now, createdAt: now)
            record.status = .waiting
            try await store.save(RunCheckpoint(run: record, steps: [
                StepRecord(id: "send", parent: nil, sequence: 1, status: .waiting, startedAt: now, deliveryID: delivery.id),
            ], deliveries: [delivery]))

            #expect(try await store.claimDueDeliveries(at: now.addingTimeInterval(-1), limit: 10, lease: .test(at: now.addingTimeInterval(-1))).isEmpty, "not due yet")
            let claimed = try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now))
            #expect(claimed.map(\.id) == [delivery.id])
            #expect(claimed.first?.request == delivery.request, "the request comes back as it was written, body included")
            #expect(try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now)).isEmpty, "a claimed delivery is not claimed twice")
            #expect(try await store.releaseLeases(heldBy: Lease.testOwner) == 1, "a stopped process's claims are taken back")
            let held = try #require(try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now)).first)

            let old = now.addingTimeInterval(-40 * 86_400)
            let attempt = DeliveryAttempt(deliveryID: delivery.id, number: 1, trigger: .scheduled, startedAt: old, durationMilliseconds: 3,
                                          request: ["method": "POST"], response: ["status": 200], errorClass: nil, errorMessage: nil)
            try await store.record(AttemptResult(deliveryID: delivery.id, attempt: attempt, outcome: .succeeded(output: ["status": 200])), of: held, at: now)
            let stored = try #require(try await store.delivery(delivery.id))
            #expect(stored.delivery.status == .succeeded)
            #expect(stored.attempts.count == 1)
            #expect(stored.attempts.first?.request == attempt.request && stored.attempts.first?.response == attempt.response)
            #expect(abs((stored.attempts.first?.startedAt ?? .distantPast).timeIntervalSince(old)) < 0.001)
            let step = try #require(try await store.loadRun(record.id)?.steps.first)
            #expect(step.output == ["status": 200], "the step's output is written in the same transaction")
            #expect(try await store.claimRuns(at: now, limit: 10, lease: .test(at: now)) == [record.id], "and its run is woken")
            #expect(try await store.listDeliveries(DeliveryQuery(run: record.id)).count == 1)
            #expect(try await store.listDeliveries(DeliveryQuery(connector: "other")).isEmpty)

            #expect(try await store.retryDelivery(delivery.id, at: now) == .notRetryable(.succeeded))
            #expect(try await store.pruneAttempts(before: now.addingTimeInterval(-30 * 86_400), limit: 100) == 1)
            #expect(try await store.delivery(delivery.id)?.attempts.isEmpty == true)
        }
    }

    @Test("a delivery committed already claimed (sending) is not claimed again, and is taken back after a stop", arguments: StoreKind.available)
    func bornClaimed(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            let record = run(at: now)
            let delivery = Delivery(id: .generate(at: now), runID: record.id, stepID: "send", connector: "crm", operation: "request",
                                    status: .sending, request: OutboundRequest(method: "POST", url: "https://crm.example.com/x"),
                                    nextAttemptAt: now, createdAt: now, lease: .test(at: now))
            try await store.createRuns([RunCheckpoint(run: record, steps: [
                StepRecord(id: "send", parent: nil, sequence: 1, status: .waiting, startedAt: now, deliveryID: delivery.id),
            ], deliveries: [delivery])])
            #expect(try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now)).isEmpty, "its process sends it")
            #expect(try await store.releaseLeases(heldBy: Lease.testOwner) == 1)
            #expect(try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now)).map(\.id) == [delivery.id])
        }
    }

    @Test("lists: replace, add, remove, delete, and a revision that moves", arguments: StoreKind.available)
    func lists(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let r0 = try await store.listsRevision()
            try await store.putList(ListRecord(name: "l", kind: .ip, items: ["10.0.0.1", "10.0.0.1", "10.0.0.0/8"]))
            #expect(try await store.list("l")?.items == ["10.0.0.1", "10.0.0.0/8"])
            let r1 = try await store.listsRevision()
            #expect(r1 != r0)
            #expect(try await store.addListItems("l", items: ["::1"]))
            #expect(try await !store.addListItems("nope", items: ["x"]))
            #expect(try await store.removeListItem("l", item: "10.0.0.1"))
            #expect(try await !store.removeListItem("l", item: "10.0.0.1"))
            let r2 = try await store.listsRevision()
            #expect(try await store.deleteList("l"))
            #expect(try await store.listsRevision() != r2)
            #expect(try await store.list("l") == nil)
        }
    }

    @Test("API keys: only the hash is kept; names are unique among active keys; revocation", arguments: StoreKind.available)
    func apiKeys(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let key = APIKeys.generate()
            try await store.createAPIKey(APIKeyRecord(name: "ci", hash: APIKeys.hash(key), scopes: ["*"], createdAt: Date()))
            await #expect(throws: StoreError.self) {
                try await store.createAPIKey(APIKeyRecord(name: "ci", hash: "other", scopes: [], createdAt: Date()))
            }
            #expect(try await store.apiKey(hash: APIKeys.hash(key))?.name == "ci")
            #expect(try await store.apiKeys().map(\.hash) == [APIKeys.hash(key)])
            #expect(try await store.revokeAPIKey(named: "ci"))
            #expect(try await !store.revokeAPIKey(named: "ci"))
            #expect(try await store.apiKey(hash: APIKeys.hash(key))?.revokedAt != nil)

            let expires = Date(microseconds: Date().addingTimeInterval(86_400).microseconds)
            try await store.createAPIKey(APIKeyRecord(name: "day", hash: "h-day", scopes: ["runs:read"], createdAt: Date(), expiresAt: expires))
            let day = try #require(try await store.apiKey(hash: "h-day"))
            #expect(day.expiresAt == expires)
            #expect(day.isValid(at: Date()) && !day.isValid(at: expires))
        }
    }

    @Test("the audit log: an entry is written with the change it records, none when nothing changed; filters and pages", arguments: StoreKind.available)
    func auditLog(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let start = Date(microseconds: Date().microseconds)
            func entry(_ action: String, _ target: String, by name: String = "ops") -> AuditEntry {
                AuditEntry(at: Date(), actor: .key, name: name, action: action, target: target, requestID: "req-1", sourceIP: "192.0.2.1",
                           details: ["n": 1])
            }
            try await store.createAPIKey(APIKeyRecord(name: "ci", hash: "h-ci", scopes: [], createdAt: Date()), audit: entry("key.created", "key:ci"))
            #expect(try await store.revokeAPIKey(named: "nobody", audit: entry("key.revoked", "key:nobody")) == false)
            #expect(try await store.revokeAPIKey(named: "ci", audit: entry("key.revoked", "key:ci", by: "admin")))
            try await store.putList(ListRecord(name: "l", kind: .string, items: ["a"]), audit: entry("list.replaced", "list:l"))
            #expect(try await store.addListItems("missing", items: ["b"], audit: entry("list.items_added", "list:missing")) == false)
            #expect(try await store.removeListItem("l", item: "a", audit: entry("list.item_removed", "list:l")))
            #expect(try await store.deleteList("l", audit: entry("list.deleted", "list:l")))
            #expect(try await store.deleteList("l", audit: entry("list.deleted", "list:l")) == false)
            try await store.recordAudit(entry("console.sign_in_failed", "console"))

            let all = try await store.auditLog(AuditQuery(limit: 100))
            #expect(all.map(\.action) == ["console.sign_in_failed", "list.deleted", "list.item_removed", "list.replaced", "key.revoked",
                                          "key.created"], "newest first, and nothing for the writes that changed nothing")
            #expect(all.last?.details == ["n": 1] && all.last?.requestID == "req-1" && all.last?.sourceIP == "192.0.2.1")
            #expect(all.last?.at ?? .distantPast >= start.addingTimeInterval(-1))
            #expect(try await store.auditLog(AuditQuery(actor: "admin")).map(\.target) == ["key:ci"])
            #expect(try await store.auditLog(AuditQuery(action: "list.deleted")).count == 1)
            let page = try await store.auditLog(AuditQuery(limit: 2))
            #expect(try await store.auditLog(AuditQuery(before: page.last?.id, limit: 10)).count == 4)
            #expect(try await store.auditLog(AuditQuery(since: Date().addingTimeInterval(60))).isEmpty)
        }
    }

    /// A run whose step `send` waits for `delivery`, which has been claimed.
    func waitingOnDelivery(_ store: any Store, at now: Date, detached: Bool = false) async throws -> (RunRecord, Delivery) {
        var record = run(at: now)
        try await store.createRuns([record])
        let delivery = Delivery(id: .generate(at: now), runID: record.id, stepID: "send", connector: "kyb", operation: "tin_check",
                                request: OutboundRequest(method: "POST", url: "https://vendor.example.com/r", body: "{}"),
                                nextAttemptAt: now, detached: detached, createdAt: now)
        record.status = .waiting
        try await store.save(RunCheckpoint(run: record, steps: [
            StepRecord(id: "send", parent: nil, sequence: 1, status: .waiting, startedAt: now, deliveryID: detached ? nil : delivery.id),
        ], deliveries: [delivery]))
        // The delivery as its holder took it to be sent.
        let claimed = try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now))
        return (record, try #require(claimed.first { $0.id == delivery.id }))
    }

    @Test("leases: an instance takes back only its own at start, anyone's once expired, none that were renewed; results are fenced by owner", arguments: StoreKind.available)
    func leases(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            let (a, b) = (InstanceID("instance-a"), InstanceID("instance-b"))
            let record = run(at: now)
            try await store.createRuns([record])
            func due() -> Delivery {
                Delivery(id: .generate(at: now), runID: record.id, stepID: "notice", connector: "crm", operation: "request",
                         request: OutboundRequest(method: "POST", url: "https://crm.example.com/x"), nextAttemptAt: now, detached: true,
                         createdAt: now)
            }
            try await store.enqueue([due(), due()])
            let first = try #require(try await store.claimDueDeliveries(at: now, limit: 1, lease: .test(a, at: now)).first)
            let second = try #require(try await store.claimDueDeliveries(at: now, limit: 1, lease: .test(b, at: now)).first)
            #expect(first.lease?.owner == a && second.lease?.owner == b && second.status == .sending)

            #expect(try await store.releaseLeases(heldBy: a) == 1, "a restarted instance takes back its own")
            #expect(try await store.delivery(second.id)?.delivery.status == .sending, "and never another live instance's")
            #expect(try await store.releaseExpiredLeases(at: now.addingTimeInterval(10)) == 0)
            try await store.renewLeases(of: b, until: now.addingTimeInterval(60))
            #expect(try await store.releaseExpiredLeases(at: now.addingTimeInterval(45)) == 0, "a renewed lease holds")
            #expect(try await store.releaseExpiredLeases(at: now.addingTimeInterval(61)) == 1, "an expired one is anyone's")

            let later = now.addingTimeInterval(62)
            let taken = try await store.claimDueDeliveries(at: later, limit: 10, lease: .test(a, at: later))
            #expect(Set(taken.map(\.id)) == [first.id, second.id])
            let success = AttemptResult(deliveryID: second.id, attempt: nil, outcome: .succeeded(output: [:]))
            #expect(try await store.record(success, of: second, at: later) == .fenced, "b's late answer changes nothing")
            let retaken = try #require(taken.first { $0.id == second.id })
            #expect(try await store.record(success, of: retaken, at: later) == .committed)
            #expect(try await store.delivery(second.id)?.delivery.lease == nil, "a settled delivery holds no lease")

            try await store.heartbeat(a, startedAt: now, at: later)
            try await store.heartbeat(b, startedAt: now, at: now)
            let seen = try await store.instances(seenSince: later.addingTimeInterval(-60))
            #expect(seen.map(\.id) == [a], "b has not beaten for a minute")
            #expect(seen.first?.leasedDeliveries == 1 && seen.first?.startedAt.timeIntervalSince(now) ?? 1 < 0.001)
        }
    }

    @Test("an accepted report waits for its callback; a follow-up request replaces the step's delivery; detached deliveries leave the step alone", arguments: StoreKind.available)
    func awaitingAndFollowUps(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            let (record, delivery) = try await waitingOnDelivery(store, at: now)
            try await store.record(AttemptResult(deliveryID: delivery.id, attempt: nil, outcome: .awaiting(correlation: "rep_1")), of: delivery, at: now)
            var step = try #require(try await store.loadRun(record.id)?.steps.first)
            #expect(step.awaitedCallback == CallbackKey(connector: "kyb", correlation: "rep_1"))
            #expect(step.output == nil && step.status == .waiting)
            #expect(try await store.delivery(delivery.id)?.delivery.status == .succeeded)

            let poll = OutboundRequest(method: "GET", url: "https://vendor.example.com/r/rep_1", stage: "poll")
            let (other, first) = try await waitingOnDelivery(store, at: now)
            try await store.record(AttemptResult(deliveryID: first.id, attempt: nil, outcome: .followUp(poll)), of: first, at: now)
            step = try #require(try await store.loadRun(other.id)?.steps.first)
            let next = try #require(step.deliveryID)
            #expect(next != first.id)
            let queued = try #require(try await store.delivery(next))
            #expect(queued.delivery.request.stage == "poll" && queued.delivery.status == .pending)

            let (third, notice) = try await waitingOnDelivery(store, at: now, detached: true)
            try await store.record(AttemptResult(deliveryID: notice.id, attempt: nil, outcome: .succeeded(output: ["ok": true])), of: notice, at: now)
            #expect(try await store.loadRun(third.id)?.steps.first?.output == nil, "a detached delivery's result never reaches the step")
            #expect(try await store.delivery(notice.id)?.delivery.detached == true)
        }
    }

    @Test("callbacks: matched to the waiting step, kept when early, refused when replayed, unmatched when expired", arguments: StoreKind.available)
    func callbacks(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            let change: @Sendable (CallbackMatch) -> CallbackChange? = { ConnectorOutcome.done(["seen": $0.payload]).change(for: $0, step: nil, at: now) }
            func callback(_ message: String, _ correlation: String, at time: Date = now) -> InboundCallback {
                InboundCallback(id: .generate(at: time), connector: "kyb", status: .pending, messageID: message, correlation: correlation,
                                payload: ["m": .string(message)], receivedAt: time, expiresAt: time.addingTimeInterval(600))
            }
            #expect(try await store.receiveCallback(callback("m1", "rep_early"), change: change) == .pending)
            #expect(try await store.receiveCallback(callback("m1", "rep_early"), change: change) == .replayed)
            #expect(try await store.receiveCallback(callback("m2", "rep_never"), change: change) == .pending)

            let (record, delivery) = try await waitingOnDelivery(store, at: now)
            try await store.record(AttemptResult(deliveryID: delivery.id, attempt: nil, outcome: .awaiting(correlation: "rep_early")), of: delivery, at: now)
            #expect(try await store.matchPendingCallbacks(at: now, change: change) == [record.id])
            let step = try #require(try await store.loadRun(record.id)?.steps.first)
            #expect(step.output == ["seen": ["m": "m1"]])
            #expect(try await store.claimRuns(at: Date(), limit: 10, lease: .test(at: Date())).contains(record.id))

            let (second, secondDelivery) = try await waitingOnDelivery(store, at: now)
            try await store.record(AttemptResult(deliveryID: secondDelivery.id, attempt: nil, outcome: .awaiting(correlation: "rep_2")), of: secondDelivery, at: now)
            #expect(try await store.receiveCallback(callback("m3", "rep_2"), change: change) == .matched(second.id))
            #expect(try await store.receiveCallback(callback("m4", "rep_2"), change: change) == .pending,
                    "a step takes one answer; a later callback for it is kept, not applied twice")

            _ = try await store.matchPendingCallbacks(at: now.addingTimeInterval(601), change: change)
            let unmatched = try await store.listCallbacks(connector: "kyb", status: .unmatched, limit: 10)
            #expect(Set(unmatched.compactMap(\.correlation)) == ["rep_never", "rep_2"])
            try await store.recordCallback(InboundCallback(id: .generate(), connector: "kyb", status: .rejected, error: "bad signature",
                                                           receivedAt: now))
            #expect(try await store.listCallbacks(connector: nil, status: .rejected, limit: 10).count == 1)
            #expect(try await store.listCallbacks(connector: "kyb", status: .replayed, limit: 10).first?.messageID == "m1")
        }
    }

    @Test("a decision and the deliveries that report it are written together", arguments: StoreKind.available)
    func resolveWithFollowUps(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            var record = run(at: now)
            try await store.createRuns([record])
            record.status = .waiting
            try await store.save(RunCheckpoint(run: record, steps: [StepRecord(id: "review", parent: nil, sequence: 1, status: .waiting, startedAt: now)]))
            let notice = Delivery(id: .generate(at: now), runID: record.id, stepID: "review", connector: "slack", operation: "update_message",
                                  request: OutboundRequest(method: "POST", url: "https://hooks.slack.com/actions/x", body: "{}"),
                                  nextAttemptAt: now, detached: true, createdAt: now)
            #expect(try await store.answer(.decision(["decision": "approve"], run: record.id, step: "review"), followUps: [notice]) == .resolved)
            #expect(try await store.delivery(notice.id)?.delivery.detached == true)
            let again = Delivery(id: .generate(at: now), runID: record.id, stepID: "review", connector: "slack", operation: "update_message",
                                 request: notice.request, nextAttemptAt: now, detached: true, createdAt: now)
            #expect(try await store.answer(.decision(["decision": "decline"], run: record.id, step: "review"), followUps: [again]) == .stepNotWaiting)
            #expect(try await store.delivery(again.id) == nil, "nothing of a refused decision is written")
        }
    }
}

extension Store {
    /// Commits what an attempt's result does to its delivery and step, without advancing the run
    /// (the scheduler does that from the store), as the engine does when it cannot advance it.
    @discardableResult
    func record(_ result: AttemptResult, of delivery: Delivery, at now: Date) async throws -> AttemptCommitOutcome {
        try await commitAttempt(result.transition(of: delivery, at: now), checkpoint: nil)
    }
}
