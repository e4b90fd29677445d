import CEL
import Foundation
import Testing
@testable import Switchboard

/// Console sessions in every store: opened with their audit entry, read back, ended once.
@Suite("Store contract: console sessions", .timeLimit(.minutes(2)))
struct ConsoleSessionStoreTests {
    @Test("a session is stored with its sign-in, read back, and ended by the server", arguments: StoreKind.available)
    func sessions(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date(microseconds: Date().microseconds)
            let session = ConsoleSession(id: "abc", keyHash: "hash", csrfToken: "token", createdAt: now,
                                         expiresAt: now.addingTimeInterval(3600))
            try await store.createSession(session, audit: AuditEntry(at: now, actor: .console, name: "ana", action: "console.sign_in",
                                                                     target: "console"))
            #expect(try await store.session("abc") == session)
            #expect(try await store.session("abc")?.isOpen(at: now) == true)
            #expect(try await store.session("nope") == nil)
            #expect(try await store.endSession("abc", at: now))
            #expect(try await !store.endSession("abc", at: now), "ended once")
            #expect(try await store.session("abc")?.isOpen(at: now) == false)
            #expect(try await store.auditLog(AuditQuery(action: "console.sign_in")).first?.actorName == "ana")
        }
    }
}

/// What a checkpoint carries beyond its run, in every store: list changes, runs its steps
/// started, and the answer to a parent that waits; all in the checkpoint's transaction.
@Suite("Store contract: checkpoint effects", .timeLimit(.minutes(2)))
struct CheckpointEffectsStoreTests {
    @Test("list changes with their audit, a child run, and the waiting parent's answer are written with the checkpoint",
          arguments: StoreKind.available)
    func effects(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date(microseconds: Date().microseconds)
            try await store.putList(ListRecord(name: "ips", kind: .ip, items: ["10.0.0.1"]))
            let parent = RunRecord(id: .generate(at: now), workflow: "p", status: .waiting, trigger: RunTrigger(api: true), createdAt: now)
            try await store.createRuns([RunCheckpoint(run: parent, steps: [
                StepRecord(id: "child", parent: nil, sequence: 1, status: .waiting, startedAt: now),
            ])])
            var run = RunRecord(id: .generate(at: now), workflow: "c", trigger: RunTrigger(parent: ParentRun(run: parent.id, step: "child",
                                                                                                                 depth: 1, wait: true)),
                                createdAt: now)
            try await store.createRuns([run])
            run.status = .completed
            run.output = ["score": 7]
            var checkpoint = RunCheckpoint(run: run, steps: [])
            checkpoint.listChanges = [ListChange(list: "ips", operation: .add, items: ["10.0.0.2"], run: run.id, step: "a", at: now),
                                      ListChange(list: "ips", operation: .remove, items: ["10.0.0.1"], run: run.id, step: "b", at: now),
                                      ListChange(list: "gone", operation: .add, items: ["10.0.0.3"], run: run.id, step: "c", at: now)]
            let grandchild = RunRecord(id: .generate(at: now), workflow: "g", status: .waiting,
                                       trigger: RunTrigger(parent: ParentRun(run: run.id, step: "later", depth: 2, wait: false)),
                                       createdAt: now, wakeAt: now.addingTimeInterval(3600))
            checkpoint.newRuns = [grandchild]
            checkpoint.parentChange = StepChange(runID: parent.id, stepID: "child", deliveryID: nil,
                                                 patch: .answered(["run_id": .string(run.id.rawValue), "status": "completed"], attempts: nil))
            try await store.save(checkpoint)

            #expect(try await store.list("ips")?.items == ["10.0.0.2"])
            #expect(try await store.list("gone") == nil, "a list that does not exist is left so")
            let audit = try await store.auditLog(AuditQuery(actor: "run:\(run.id.rawValue)"))
            #expect(Set(audit.map(\.action)) == ["list.items_added", "list.items_removed"])
            let stored = try #require(try await store.loadRun(grandchild.id))
            #expect(stored.run.trigger.parent == grandchild.trigger.parent && stored.run.wakeAt == grandchild.wakeAt)
            #expect(try await store.loadRun(run.id)?.run.output == ["score": 7])
            let answered = try #require(try await store.loadRun(parent.id))
            #expect(answered.steps.first?.output?["status"] == "completed")
            let due = try await store.claimRuns(at: now.addingTimeInterval(1), limit: 10, lease: .test(at: now))
            #expect(due.contains(parent.id), "the parent is due once answered")
            #expect(!due.contains(grandchild.id), "a child started for later is not due before its time")
        }
    }
}

/// What the console finds runs by, in every store: search terms, events, decisions, time, and
/// the review queue's order.
@Suite("Store contract: run search", .timeLimit(.minutes(2)))
struct RunSearchStoreTests {
    @Test("runs by search term, by event, by decision and by time; oldest first; finished runs counted by decision",
          arguments: StoreKind.available)
    func search(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            var ids: [String: RunID] = [:]
            var events: [String: EventID] = [:]
            // Three events, an hour apart; the first run declined, the last still waiting.
            for (index, inquiry) in ["inq_1", "inq_2", "inq_3"].enumerated() {
                let at = now.addingTimeInterval(Double(index - 2) * 3600)
                let record = EventRecord(id: .generate(at: at), dedupeKey: "e-\(inquiry)", type: "t", source: "s",
                                         payload: ["id": .string(inquiry), "data": ["inquiry": ["id": .string(inquiry)]]], receivedAt: at,
                                         runs: [])
                var run = RunRecord(id: .generate(at: at), workflow: "w", status: index == 2 ? .waiting : .completed,
                                    decision: index == 0 ? .declined : (index == 1 ? .approved : nil),
                                    trigger: RunTrigger(eventID: record.id), event: record.payload, createdAt: at)
                run.searchTerms = ["data.inquiry.id=\(inquiry)", "data.kind=person"]
                var stored = record
                stored.runs = [RunReference(id: run.id, workflow: "w")]
                _ = try await store.ingest(stored, runs: [RunCheckpoint(run: run, steps: [])])
                ids[inquiry] = run.id
                events[inquiry] = record.id
            }
            // An API-started run has terms of its input.
            var api = RunRecord(id: .generate(at: now.addingTimeInterval(60)), workflow: "v", status: .completed, trigger: RunTrigger(api: true),
                                input: ["ein": "12-3456789"], createdAt: now)
            api.searchTerms = ["input.ein=12-3456789"]
            try await store.createRuns([api])

            var query = RunQuery()
            query.searchTerm = "data.inquiry.id=inq_2"
            #expect(try await store.listRuns(query).map(\.id) == [ids["inq_2"]!])
            query.searchTerm = "data.kind=person"
            #expect(try await store.listRuns(query).map(\.id) == [ids["inq_3"]!, ids["inq_2"]!, ids["inq_1"]!], "newest first")
            query.decision = .declined
            #expect(try await store.listRuns(query).map(\.id) == [ids["inq_1"]!], "with the other filters")
            query.decision = nil
            query.limit = 1
            query.before = ids["inq_3"]!
            #expect(try await store.listRuns(query).map(\.id) == [ids["inq_2"]!], "a keyset page of a search")
            query = RunQuery()
            query.searchTerm = "input.ein=12-3456789"
            #expect(try await store.listRuns(query).map(\.id) == [api.id])
            query.searchTerm = "data.inquiry.id=inq_9"
            #expect(try await store.listRuns(query).isEmpty)

            var byEvent = RunQuery()
            byEvent.eventID = events["inq_1"]
            #expect(try await store.listRuns(byEvent).map(\.id) == [ids["inq_1"]!])
            #expect(try await store.listRuns(RunQuery(decision: .declined)).map(\.id) == [ids["inq_1"]!])

            var window = RunQuery()
            window.since = now.addingTimeInterval(-1.5 * 3600)
            window.until = now.addingTimeInterval(-0.5 * 3600)
            #expect(try await store.listRuns(window).map(\.id) == [ids["inq_2"]!], "since is inclusive, until exclusive")
            window.until = nil
            #expect(try await store.listRuns(window).map(\.id) == [api.id, ids["inq_3"]!, ids["inq_2"]!])

            var oldest = RunQuery(workflow: "w", limit: 2)
            oldest.oldestFirst = true
            #expect(try await store.listRuns(oldest).map(\.id) == [ids["inq_1"]!, ids["inq_2"]!])
            oldest.after = ids["inq_2"]!
            #expect(try await store.listRuns(oldest).map(\.id) == [ids["inq_3"]!])

            let counts = try await store.finishedRunCounts(workflow: "w", since: now.addingTimeInterval(-3 * 3600))
            #expect(counts == [.declined: 1, .approved: 1], "the waiting run is not counted")
            let recent = try await store.finishedRunCounts(workflow: "w", since: now.addingTimeInterval(-1.5 * 3600))
            #expect(recent == [.approved: 1])
        }
    }

    @Test("deliveries by status (failed and dead have their own index) and by time", arguments: StoreKind.available)
    func deliveries(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            let run = RunRecord(id: .generate(at: now), workflow: "w", status: .completed, trigger: RunTrigger(api: true), createdAt: now)
            var deliveries: [Delivery] = []
            for (index, status) in [DeliveryStatus.dead, .failed, .succeeded, .dead].enumerated() {
                let at = now.addingTimeInterval(Double(index - 3) * 60)
                deliveries.append(Delivery(id: .generate(at: at), runID: run.id, stepID: "s", connector: index == 3 ? "b" : "a",
                                           operation: "send", status: status,
                                           request: OutboundRequest(method: "POST", url: "https://example.com"), nextAttemptAt: nil,
                                           createdAt: at))
            }
            try await store.createRuns([RunCheckpoint(run: run, steps: [], deliveries: deliveries)])
            #expect(try await store.listDeliveries(DeliveryQuery(status: .dead)).map(\.id) == [deliveries[3].id, deliveries[0].id])
            #expect(try await store.listDeliveries(DeliveryQuery(connector: "a", status: .dead)).map(\.id) == [deliveries[0].id])
            #expect(try await store.listDeliveries(DeliveryQuery(status: .failed)).map(\.id) == [deliveries[1].id])
            let window = DeliveryQuery(since: now.addingTimeInterval(-150), until: now.addingTimeInterval(-30))
            #expect(try await store.listDeliveries(window).map(\.id) == [deliveries[2].id, deliveries[1].id])
        }
    }
}
