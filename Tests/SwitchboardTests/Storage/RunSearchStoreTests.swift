import CEL
import Foundation
import Testing
@testable import Switchboard

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
                let steps = (0 ..< index).map { n in
                    StepRecord(id: "s\(n)", parent: nil, sequence: n, status: .completed, startedAt: at)
                }
                _ = try await store.ingest(stored, runs: [RunCheckpoint(run: run, steps: steps)])
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

            let loaded = try await store.loadRuns([ids["inq_3"]!, RunID("run_missing"), ids["inq_1"]!])
            #expect(loaded.map(\.run.id) == [ids["inq_3"]!, ids["inq_1"]!], "in the order asked, those that exist")
            #expect(loaded.map { $0.steps.map(\.id) } == [["s0", "s1"], []], "each with its own steps")
            #expect(loaded.first?.run.event?["data"]?["inquiry"]?["id"] == "inq_3", "and its event")

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
