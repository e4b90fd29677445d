import CEL
import Foundation
import Testing
@testable import Switchboard

/// Workflow versions in every store: a content is recorded once, numbered in the order contents
/// are first seen, and a run keeps the version it names.
@Suite("Store contract: workflow versions", .timeLimit(.minutes(2)))
struct WorkflowVersionStoreTests {
    @Test("one version per distinct content, numbered per workflow; a run keeps its version", arguments: StoreKind.available)
    func versions(_ kind: StoreKind) async throws {
        try await kind.withStore { store in
            let now = Date()
            let first = try await store.recordWorkflowVersion(workflow: "w", sha256: "aaa", source: "id: w # 1", at: now)
            #expect(first.version == 1 && first.label == "v1")
            #expect(try await store.recordWorkflowVersion(workflow: "w", sha256: "aaa", source: "id: w # 1", at: now).version == 1)
            let second = try await store.recordWorkflowVersion(workflow: "w", sha256: "bbb", source: "id: w # 2", at: now)
            #expect(second.version == 2)
            #expect(try await store.recordWorkflowVersion(workflow: "w", sha256: "aaa", source: "id: w # 1", at: now).version == 1,
                    "a content seen before is its old version again")
            #expect(try await store.recordWorkflowVersion(workflow: "other", sha256: "aaa", source: "id: other", at: now).version == 1)
            let listed = try await store.workflowVersions("w")
            #expect(listed.map(\.version) == [1, 2])
            #expect(listed.map(\.source) == ["id: w # 1", "id: w # 2"])
            #expect(try await store.workflowVersions(nil).count == 3)

            // Instances that record new contents at once get distinct numbers, and the same content one.
            let recorded = try await withThrowingTaskGroup(of: Int.self) { group in
                for n in 0 ..< 8 {
                    group.addTask { try await store.recordWorkflowVersion(workflow: "busy", sha256: "c\(n % 4)", source: "\(n % 4)", at: now).version }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(Set(recorded) == [1, 2, 3, 4])
            #expect(try await store.workflowVersions("busy").count == 4)

            let run = RunRecord(id: .generate(), workflow: "w", trigger: RunTrigger(api: true), createdAt: now, workflowVersion: 2)
            try await store.createRuns([run])
            #expect(try await store.loadRun(run.id)?.run.workflowVersion == 2)
            #expect(try await store.listRuns(RunQuery()).first?.workflowVersion == 2)
        }
    }
}
