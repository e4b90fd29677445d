import CEL
import Foundation
import GRDB
import Testing
@testable import Switchboard

/// What only the SQLite store has: its schema history and its in-memory shortcuts.
@Suite("SQLite store")
struct SQLiteStoreTests {
    /// A migrated store in a temporary directory (kept alive by the caller with the directory).
    static func migratedStore() async throws -> (SQLiteStore, TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(path: directory.file("db.sqlite"))
        try await store.migrate()
        return (store, directory)
    }

    @Test("arguments bound through SQLite's C API read back as written; a failing statement throws GRDB's error")
    func directBinding() async throws {
        let directory = try TemporaryDirectory()
        let pool = try DatabasePool(path: directory.file("db.sqlite"))
        try await pool.write { db in
            try db.execute(sql: "CREATE TABLE t (k TEXT PRIMARY KEY, s TEXT, n INTEGER, b INTEGER)")
            let insert = "INSERT INTO t (k, s, n, b) VALUES (?, ?, ?, ?)"
            try db.execute(cached: insert, [.text("a"), .text("Zoë \"quoted\" ✓"), .integer(Int64.min), .bool(true)])
            try db.execute(cached: insert, [.text("b"), .text(""), .integer(Int?.none), .bool(false)])
            try db.execute(cached: insert, [.text("c"), .text(String?.none), .integer(42), .bool(false)])
            do {
                try db.execute(cached: insert, [.text("a"), .text("again"), .integer(1), .bool(true)])
                Issue.record("a second row with the key 'a' was accepted")
            } catch let error as DatabaseError {
                #expect(error.resultCode == .SQLITE_CONSTRAINT)
                #expect(error.message?.contains("UNIQUE constraint failed: t.k") == true)
            }
            do {
                try db.execute(cached: insert, [.text("e"), .text("too few")])
                Issue.record("two arguments for four parameters were accepted")
            } catch let error as DatabaseError {
                #expect(error.resultCode == .SQLITE_MISUSE)
                #expect(error.message == "2 arguments for 4 parameters")
            }
            // The statement is reset after a failure: the next run of it succeeds.
            try db.execute(cached: insert, [.text("d"), .text("after"), .integer(7), .bool(true)])
        }
        let rows = try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT k, s, n, b, typeof(s) AS ts, typeof(n) AS tn FROM t ORDER BY k")
        }
        #expect(rows.map { $0["k"] as String } == ["a", "b", "c", "d"])
        #expect(rows[0]["s"] as String == "Zoë \"quoted\" ✓")
        #expect(rows[0]["n"] as Int64 == Int64.min)
        #expect(rows[0]["b"] as Bool == true)
        #expect(rows[1]["s"] as String == "" && rows[1]["ts"] as String == "text", "an empty string is text, not NULL")
        #expect(rows[1]["tn"] as String == "null")
        #expect(rows[2]["ts"] as String == "null")
        #expect(rows[3]["s"] as String == "after")
    }

    @Test("a delivery written before v6, with its body inside the request's JSON, still reads with its body")
    func bodyBeforeV6() async throws {
        let (store, directory) = try await Self.migratedStore()
        _ = directory  // kept until the end of the test
        let now = Date()
        let run = RunRecord(id: .generate(at: now), workflow: "w", trigger: RunTrigger(api: true), createdAt: now)
        try await store.createRuns([run])
        try await store.pool.write { db in
            try db.execute(sql: """
                INSERT INTO deliveries (id, run_id, step_id, connector, operation, status, request, attempt_count, next_attempt_at,
                  created_at, updated_at)
                VALUES ('dlv_old', ?, 'send', 'crm', 'request', 'pending',
                  '{"method":"POST","url":"https://crm.example.com/x","headers":[["a","b"]],"body":"{\\"k\\":1}"}', 0, ?, ?, ?)
                """, arguments: [run.id.rawValue, now.microseconds, now.microseconds, now.microseconds])
        }
        let claimed = try await store.claimDueDeliveries(at: now, limit: 1, lease: .test(at: now))
        #expect(claimed.first?.request == OutboundRequest(method: "POST", url: "https://crm.example.com/x", headers: [("a", "b")],
                                                          body: #"{"k":1}"#))
    }

    @Test("a delivery created with its event whose body is the event's text names the event; any other body is its own")
    func bodyFromEvent() async throws {
        let (store, directory) = try await Self.migratedStore()
        _ = directory  // kept until the end of the test
        let now = Date()
        let text = #"{ "id": "e1", "type": "t", "source": "s", "specversion": "1.0" }"#
        let payload = try JSON.parse(text)
        let eventID = EventID.generate(at: now)
        let run = RunRecord(id: .generate(at: now), workflow: "w", status: .waiting, trigger: RunTrigger(eventID: eventID),
                            event: payload, eventText: text, createdAt: now)
        func delivery(_ step: String, body: String) -> Delivery {
            Delivery(id: .generate(at: now), runID: run.id, stepID: step, connector: "c", operation: "request",
                     request: OutboundRequest(method: "POST", url: "https://example.com/", body: body), nextAttemptAt: now,
                     createdAt: now)
        }
        // The same characters in another string: the store compares text, not identity.
        let forwarded = delivery("forward", body: String(decoding: Array(text.utf8), as: UTF8.self))
        let other = delivery("other", body: #"{"id":"e1"}"#)
        var event = EventRecord(id: eventID, dedupeKey: "e1", type: "t", source: "s", payload: payload, receivedAt: now,
                                runs: [RunReference(id: run.id, workflow: "w")])
        event.payloadText = text
        guard case .accepted = try await store.ingest(event, runs: [RunCheckpoint(run: run, steps: [], deliveries: [forwarded, other])])
        else { Issue.record("not accepted"); return }
        let rows = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT step_id, body, body_event FROM deliveries ORDER BY step_id")
        }
        #expect(rows.map { $0["body"] as String? } == [nil, #"{"id":"e1"}"#])
        #expect(rows.map { $0["body_event"] as String? } == [eventID.rawValue, nil])
        let claimed = try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now))
        #expect(Set(claimed.map(\.request.body)) == [text, #"{"id":"e1"}"#], "both read back with their bodies")
    }

    @Test("a run's event reads the same whether the store still remembers it parsed or reads it back")
    func recentEvents() async throws {
        let (store, directory) = try await Self.migratedStore()
        let now = Date()
        let payload: JSON = ["id": "e1", "type": "t", "data": ["ip": "192.0.2.1", "nested": ["a": [1, 2, "x"]]]]
        let eventID = EventID.generate(at: now)
        let run = RunRecord(id: .generate(at: now), workflow: "w", trigger: RunTrigger(eventID: eventID), event: payload,
                            createdAt: now)
        let event = EventRecord(id: eventID, dedupeKey: "e1", type: "t", source: "s", payload: payload, receivedAt: now,
                                runs: [RunReference(id: run.id, workflow: "w")])
        guard case .accepted = try await store.ingest(event, runs: [run]) else { Issue.record("not accepted"); return }
        #expect(store.recentEvents.event(eventID.rawValue)?.payload == payload)
        let remembered = try await store.loadRun(run.id)?.run
        #expect(remembered?.event == payload)
        #expect(remembered?.eventText == payload.text, "with the text stored")

        let reopened = try SQLiteStore(path: directory.file("db.sqlite"))
        #expect(reopened.recentEvents.count == 0)
        let read = try await reopened.loadRun(run.id)?.run
        #expect(read?.event == payload, "read from the events table")
        #expect(read?.eventText == payload.text)
        #expect(reopened.recentEvents.event(eventID.rawValue)?.payload == payload, "and remembered")
    }

    @Test("the remembered events are bounded: the oldest goes first")
    func recentEventsBound() {
        let events = RecentEvents(capacity: 3)
        let ids = (0 ..< 10).map { EventID(rawValue: "evt_\($0)") }
        for (n, id) in ids.enumerated() { events.remember(id, .number(Double(n)), text: "\(n)") }
        #expect(events.count == 3)
        #expect(events.event("evt_6") == nil)
        #expect(events.event("evt_9")?.payload == .number(9))
        #expect(events.event("evt_7")?.text == "7")
    }
}

extension SQLiteStoreTests {
    @Test("v7 rebuilds runs and steps without rowids: what was stored before reads the same after")
    func migrationV7() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(path: directory.file("db.sqlite"))
        try SQLiteStore.migrator.migrate(store.pool, upTo: "v6: a delivery's body in a column of its own")
        let now = Date(microseconds: Date().microseconds)
        var run = RunRecord(id: .generate(at: now), workflow: "w", status: .waiting, tags: ["a"], trigger: RunTrigger(api: true),
                            input: ["x": 1], createdAt: now, wakeAt: now)
        // Committed already taken to be sent, as a delivery due at once is.
        let delivery = Delivery(id: .generate(at: now), runID: run.id, stepID: "send", connector: "crm", operation: "request",
                                status: .sending, request: OutboundRequest(method: "POST", url: "https://crm.example.com/x", body: "{}"),
                                nextAttemptAt: now, createdAt: now, lease: .test(at: now))
        let steps = [
            StepRecord(id: "check", parent: nil, sequence: 1, status: .completed, output: ["ok": true], startedAt: now, endedAt: now),
            StepRecord(id: "send", parent: nil, sequence: 2, status: .waiting, startedAt: now, deliveryID: delivery.id),
        ]
        // The run, its steps and its delivery as v6 wrote them (today's inserts write columns added since).
        let runID = run.id.rawValue
        try await store.pool.write { db in
            try db.execute(sql: """
                INSERT INTO runs (id, workflow, status, tags, trigger, input, created_at, updated_at, wake_at)
                VALUES (?, 'w', 'waiting', '["a"]', '{"api":true}', '{"x":1}', ?, ?, ?)
                """, arguments: [runID, now.microseconds, now.microseconds, now.microseconds])
            for step in steps {
                try db.execute(sql: """
                    INSERT INTO steps (run_id, step_id, parent, sequence, status, attempts, output, started_at, ended_at, delivery_id)
                    VALUES (?, ?, NULL, ?, ?, 0, ?, ?, ?, ?)
                    """, arguments: [runID, step.id, step.sequence, step.status.rawValue, step.output?.text,
                                     now.microseconds, step.endedAt?.microseconds, step.deliveryID?.rawValue])
            }
            try db.execute(sql: """
                INSERT INTO deliveries (id, run_id, step_id, connector, operation, status, request, body, attempt_count,
                  next_attempt_at, created_at, updated_at)
                VALUES (?, ?, 'send', 'crm', 'request', 'pending', ?, '{}', 0, ?, ?, ?)
                """, arguments: [delivery.id.rawValue, delivery.runID.rawValue, SQLiteStore.encodeWithoutBody(delivery.request),
                                   now.microseconds, now.microseconds, now.microseconds])
        }
        try await store.migrate()
        let after = try #require(try await store.loadRun(run.id))
        #expect(after.run.tags == ["a"] && after.run.input == ["x": 1] && after.run.status == .waiting)
        #expect(after.steps.map(\.id) == ["check", "send"])
        #expect(after.steps.map(\.output) == steps.map(\.output))
        #expect(after.steps.last?.deliveryID == delivery.id)
        #expect(try await store.claimRuns(at: now, limit: 10, lease: .test(at: now)) == [run.id], "the timer index was rebuilt")
        #expect(try await store.claimDueDeliveries(at: now, limit: 10, lease: .test(at: now)).map(\.request) == [delivery.request], "and the due index")
        run.version = after.run.version
        run.status = .completed
        run.wakeAt = nil
        try await store.save(RunCheckpoint(run: run, steps: []))
        #expect(try await store.claimRuns(at: now, limit: 10, lease: .test(at: now)).isEmpty)
        #expect(try await store.listRuns(RunQuery(status: .completed)).map(\.id) == [run.id])
    }
}

extension SQLiteStoreTests {
    @Test("v12: a key that could review with runs:write keeps that with reviews:write; others are left as they were")
    func migrationV12() async throws {
        let directory = try TemporaryDirectory()
        let store = try SQLiteStore(path: directory.file("db.sqlite"))
        try SQLiteStore.migrator.migrate(store.pool, upTo: "v11: run leases")
        try await store.pool.write { db in
            for (name, scopes) in [("writer", #"["runs:read","runs:write"]"#), ("reader", #"["runs:read"]"#)] {
                try db.execute(sql: "INSERT INTO api_keys (name, hash, scopes, created_at) VALUES (?, ?, ?, 0)",
                               arguments: [name, "h-" + name, scopes])
            }
        }
        try await store.migrate()
        #expect(try await store.apiKey(hash: "h-writer")?.scopes == ["runs:read", "runs:write", "reviews:write"])
        #expect(try await store.apiKey(hash: "h-reader")?.scopes == ["runs:read"])
        #expect(try await store.apiKey(hash: "h-reader")?.expiresAt == nil)
    }
}

extension SQLiteStoreTests {
    @Test("pruning takes the oldest attempts in batches and leaves recent ones")
    func pruning() async throws {
        let (store, directory) = try await Self.migratedStore()
        _ = directory  // kept until the end of the test
        let now = Date()
        let run = RunRecord(id: .generate(at: now), workflow: "w", trigger: RunTrigger(api: true), createdAt: now)
        try await store.createRuns([run])
        for n in 0 ..< 6 {
            let delivery = Delivery(id: .generate(at: now), runID: run.id, stepID: "s\(n)", connector: "c", operation: "request",
                                    request: OutboundRequest(method: "POST", url: "https://example.com/"), nextAttemptAt: now,
                                    detached: true, createdAt: now)
            try await store.enqueue([delivery])
            // Four old attempts first, then two recent ones, in the order they would be logged.
            let started = n < 4 ? now.addingTimeInterval(-40 * 86_400 + Double(n)) : now
            let attempt = DeliveryAttempt(deliveryID: delivery.id, number: 1, trigger: .scheduled, startedAt: started,
                                          durationMilliseconds: 1, request: ["method": "POST"], response: nil, errorClass: nil,
                                          errorMessage: nil)
            let held = try #require(try await store.claimDueDeliveries(at: now, limit: 1, lease: .test(at: now)).first)
            try await store.record(AttemptResult(deliveryID: delivery.id, attempt: attempt, outcome: .succeeded(output: [:])),
                                   of: held, at: now)
        }
        let cutoff = now.addingTimeInterval(-30 * 86_400)
        #expect(try await store.pruneAttempts(before: cutoff, limit: 3) == 3)
        #expect(try await store.pruneAttempts(before: cutoff, limit: 3) == 1)
        #expect(try await store.pruneAttempts(before: cutoff, limit: 3) == 0)
        let left = try await store.pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM delivery_attempts") }
        #expect(left == 2)
    }
}

extension SQLiteStoreTests {
    /// A run waiting for one delivery, created through the store (and so remembered by it).
    static func runWaitingOnDelivery(_ store: SQLiteStore, at now: Date) async throws -> (RunRecord, Delivery) {
        let run = RunRecord(id: .generate(at: now), workflow: "w", status: .waiting, trigger: RunTrigger(api: true),
                            input: ["n": 1], createdAt: now)
        // Committed already taken to be sent, as a delivery due at once is.
        let delivery = Delivery(id: .generate(at: now), runID: run.id, stepID: "send", connector: "crm", operation: "request",
                                status: .sending, request: OutboundRequest(method: "POST", url: "https://crm.example.com/x", body: "{}"),
                                nextAttemptAt: now, createdAt: now, lease: .test(at: now))
        let steps = [
            StepRecord(id: "check", parent: nil, sequence: 1, status: .completed, output: ["ok": true], startedAt: now, endedAt: now),
            StepRecord(id: "send", parent: nil, sequence: 2, status: .waiting, startedAt: now, deliveryID: delivery.id),
        ]
        try await store.createRuns([RunCheckpoint(run: run, steps: steps, deliveries: [delivery])])
        return (run, delivery)
    }

    /// What the interpreter would do with the answer: the step completes (its output left to the
    /// store, as a checkpoint that did not change it leaves it), and so does the run.
    static let completeSend: @Sendable (RunSnapshot) -> RunCheckpoint? = { snapshot in
        guard let send = snapshot.steps.first(where: { $0.id == "send" }), send.status == .waiting, send.output != nil else {
            return nil
        }
        var run = snapshot.run
        run.status = .completed
        run.updatedAt = Date()
        let step = StepRecord(id: "send", parent: nil, sequence: send.sequence, status: .completed, attempts: send.attempts,
                              startedAt: send.startedAt, endedAt: Date())
        return RunCheckpoint(run: run, steps: [step])
    }

    static func success(_ delivery: Delivery, at now: Date) -> AttemptResult {
        let attempt = DeliveryAttempt(deliveryID: delivery.id, number: 1, trigger: .scheduled, startedAt: now, durationMilliseconds: 1,
                                      request: ["method": "POST"], response: ["status": 200], errorClass: nil, errorMessage: nil)
        return AttemptResult(deliveryID: delivery.id, attempt: attempt, outcome: .succeeded(output: ["status": 200, "body": ["id": "x"]]))
    }

    @Test("a delivery's result advances its run from the copy remembered at the run's version, to the same rows")
    func recentRuns() async throws {
        let (store, directory) = try await Self.migratedStore()
        _ = directory  // kept until the end of the test
        let now = Date()
        let (run, delivery) = try await Self.runWaitingOnDelivery(store, at: now)
        let checkpoint = try await Self.settle(Self.success(delivery, at: now), of: delivery, in: store, at: now,
                                               advance: Self.completeSend)
        #expect(checkpoint?.run.status == .completed)
        #expect(store.recentRuns.hits.load(ordering: .relaxed) == 1 && store.recentRuns.misses.load(ordering: .relaxed) == 0)
        let stored = try #require(try await store.loadRun(run.id))
        #expect(stored.run.status == .completed && stored.run.version == 1)
        let send = try #require(stored.steps.last)
        #expect(send.status == .completed && send.output == ["status": 200, "body": ["id": "x"]] && send.error == nil)
        #expect(store.recentRuns.count == 0, "a finished run is forgotten")

        // Built in memory, the run after a checkpoint is what the store reads back.
        let (other, _) = try await Self.runWaitingOnDelivery(store, at: now)
        let base = try #require(try await store.loadRun(other.id))
        #expect(store.recentRuns.latest(other.id) == base)
        var moved = base.run
        moved.status = .running
        moved.tags = ["t"]
        moved.wakeAt = Date().addingTimeInterval(60)
        let next = RunCheckpoint(run: moved, steps: [
            StepRecord(id: "send", parent: nil, sequence: 2, status: .waiting, attempts: 2, startedAt: Date()),
            StepRecord(id: "later", parent: "send", sequence: 3, status: .running, startedAt: Date()),
        ])
        try await store.save(next)
        #expect(SQLiteStore.stored(next, over: base) == (try await store.loadRun(other.id)))
    }

    /// As the interpreter completes the step: with the output its delivery answered, so the
    /// step's row is rewritten whole and the answer needs no UPDATE of its own.
    static let completeSendWithOutput: @Sendable (RunSnapshot) -> RunCheckpoint? = { snapshot in
        guard var checkpoint = completeSend(snapshot), let send = snapshot.steps.first(where: { $0.id == "send" }) else {
            return nil
        }
        checkpoint.steps[0].output = send.output
        return checkpoint
    }

    @Test("a run changed by anyone else since it was remembered is read from the store again",
          arguments: [false, true])
    func recentRunsStale(checkpointCarriesOutput: Bool) async throws {
        let (store, directory) = try await Self.migratedStore()
        _ = directory  // kept until the end of the test
        let now = Date()
        let (run, delivery) = try await Self.runWaitingOnDelivery(store, at: now)
        // Another process (or the scheduler) commits a checkpoint this store did not remember.
        var changed = try #require(try await store.loadRun(run.id)).run
        changed.tags = ["seen elsewhere"]
        try await store.save(RunCheckpoint(run: changed, steps: []))

        let advance = checkpointCarriesOutput ? Self.completeSendWithOutput : Self.completeSend
        let checkpoint = try await Self.settle(Self.success(delivery, at: now), of: delivery, in: store, at: now, advance: advance)
        #expect(checkpoint?.run.tags == ["seen elsewhere"], "made from the run as stored")
        // The remembered copy was stale (one miss); the run read again from the store committed.
        #expect(store.recentRuns.misses.load(ordering: .relaxed) == 1 && store.recentRuns.hits.load(ordering: .relaxed) == 1)
        let stored = try #require(try await store.loadRun(run.id))
        #expect(stored.run.status == .completed && stored.run.version == 2)
        #expect(stored.steps.last?.output == ["status": 200, "body": ["id": "x"]])
    }

    @Test("the remembered runs are bounded, and an older version never replaces a newer one")
    func recentRunsBound() {
        let runs = RecentRuns(capacity: 2)
        let now = Date()
        func snapshot(_ id: String, version: Int) -> RunSnapshot {
            RunSnapshot(run: RunRecord(id: RunID(rawValue: id), workflow: "w", status: .waiting, trigger: RunTrigger(api: true),
                                       createdAt: now, version: version), steps: [])
        }
        runs.remember(snapshot("run_a", version: 3))
        runs.remember(snapshot("run_a", version: 2))
        #expect(runs.latest(RunID(rawValue: "run_a"))?.run.version == 3, "an older version does not replace a newer one")
        runs.remember(snapshot("run_b", version: 0))
        runs.remember(snapshot("run_c", version: 0))
        #expect(runs.count == 2)
        #expect(runs.latest(RunID(rawValue: "run_a")) == nil, "the oldest went first")
        #expect(runs.latest(RunID(rawValue: "run_c")) != nil)
    }
}

extension SQLiteStoreTests {
    /// As the engine settles an attempt (``RunEngine/settle(_:of:)``): the transition, the run as
    /// the store may remember it with the step's change, the checkpoint `advance` makes of it, and
    /// once more from the store on a conflict.
    static func settle(_ result: AttemptResult, of delivery: Delivery, in store: SQLiteStore, at now: Date,
                       advance: (RunSnapshot) -> RunCheckpoint?) async throws -> RunCheckpoint? {
        let commit = result.transition(of: delivery, at: now)
        for allowStale in [true, false] {
            guard let change = commit.step, var snapshot = try await store.loadRun(delivery.runID, allowStale: allowStale),
                  let changed = change.apply(to: &snapshot), var checkpoint = advance(snapshot) else { return nil }
            checkpoint.carry(changed)
            if try await store.commitAttempt(commit, checkpoint: checkpoint) == .committed { return checkpoint }
        }
        return nil
    }

    @Test("a result from a holder that lost its delivery writes nothing; a stale checkpoint writes nothing")
    func fencing() async throws {
        let (store, directory) = try await Self.migratedStore()
        _ = directory  // kept until the end of the test
        let now = Date()
        let (run, delivery) = try await Self.runWaitingOnDelivery(store, at: now)
        // The delivery was taken back (its holder is presumed gone) and attempted again by another.
        #expect(try await store.releaseLeases(heldBy: Lease.testOwner) == 1)
        let again = try #require(try await store.claimDueDeliveries(at: now, limit: 1, lease: .test(at: now)).first)
        let second = Self.success(again, at: now).transition(of: again, at: now)
        #expect(try await store.commitAttempt(second, checkpoint: nil) == .committed)
        // The first holder's late answer, for the attempt count it held, finds the delivery moved on.
        let late = Self.success(delivery, at: now).transition(of: delivery, at: now)
        #expect(try await store.commitAttempt(late, checkpoint: nil) == .fenced)
        #expect(try await store.delivery(delivery.id)?.attempts.count == 1, "the late attempt is not logged")

        // A checkpoint made from a version the run has left is refused before anything is written.
        let (other, pending) = try await Self.runWaitingOnDelivery(store, at: now)
        let stale = try #require(try await store.loadRun(other.id))
        var moved = stale.run
        moved.tags = ["elsewhere"]
        try await store.save(RunCheckpoint(run: moved, steps: []))
        let commit = Self.success(pending, at: now).transition(of: pending, at: now)
        var answered = stale
        _ = commit.step?.apply(to: &answered)
        let checkpoint = try #require(Self.completeSend(answered))
        #expect(try await store.commitAttempt(commit, checkpoint: checkpoint) == .conflict)
        #expect(try await store.delivery(pending.id)?.delivery.status == .sending, "the delivery is still held")
        #expect(try await store.delivery(pending.id)?.attempts.isEmpty == true)
        _ = run
    }
}
