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
