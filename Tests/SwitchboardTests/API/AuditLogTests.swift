import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// The audit log through the API and the command line: who changed what, from which request.
@Suite("Audit log", .timeLimit(.minutes(2)))
struct AuditLogTests {
    @Test("a review, list changes and a retry made through the API are in GET /v1/audit with the key, the request id and the change; admin only")
    func throughTheAPI() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/review.yaml", """
            id: review
            trigger: { api: {} }
            steps:
              - { id: check, wait: review }
            """)
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.test { api in
            let started = try await api.request(.post, "/v1/workflows/review/runs", json: [:])
            let run = try #require(started.json["id"]?.stringValue)
            _ = try await api.waitForRun(run) { $0.status == .waiting }
            let decided = try await api.request(.post, "/v1/runs/\(run)/review", json: ["decision": "decline"],
                                                headers: [.requestID: "req-review-1"])
            #expect(decided.status == .accepted)
            try await api.request(.put, "/v1/lists/vip", json: ["kind": "email", "items": ["a@example.com"]])
            try await api.request(.post, "/v1/lists/vip/items", json: ["items": ["b@example.com"]])
            try await api.request(.delete, "/v1/lists/vip/items/a@example.com")
            try await api.request(.delete, "/v1/lists/vip")
            let missing = try await api.request(.post, "/v1/deliveries/dlv_missing/retry")
            #expect(missing.status == .notFound)

            let log = try await api.request(.get, "/v1/audit")
            #expect(log.status == .ok)
            let entries = log.json["data"]?.array ?? []
            #expect(entries.compactMap { $0["action"]?.stringValue } == ["list.deleted", "list.item_removed", "list.items_added",
                                                                         "list.replaced", "review.decided"])
            let review = try #require(entries.last)
            #expect(review["actor"] == ["kind": "key", "name": "test"])
            #expect(review["target"]?.stringValue == "run:\(run)")
            #expect(review["request_id"] == "req-review-1")
            #expect(review["details"]?["decision"] == "decline")
            #expect(review["outcome"] == "ok")
            let filtered = try await api.request(.get, "/v1/audit?action=list.items_added").json["data"]?.array ?? []
            #expect(filtered.count == 1 && filtered.first?["details"]?["items"] == ["b@example.com"])
            #expect(try await api.request(.get, "/v1/audit?since=yesterday").status == .badRequest)
        }
        let reader = try await TestGateway(scopes: ["runs:read"])
        #expect(try await reader.test { api in try await api.request(.get, "/v1/audit").status } == .forbidden)
    }

    @Test("keys created and revoked with the command line are in `switchboard audit`")
    func commandLine() async throws {
        let directory = try TemporaryDirectory()
        let database = "sqlite:" + directory.file("db.sqlite")
        #expect(try await Binary.run(["keys", "create", "--name", "ops", "--scopes", "runs:read", "--database", database]).status == 0)
        #expect(try await Binary.run(["keys", "revoke", "ops", "--database", database]).status == 0)
        let printed = try await Binary.run(["audit", "--json", "--database", database])
        #expect(printed.status == 0, "\(printed.stderr)")
        let entries = try printed.stdout.split(separator: "\n").map { try JSON.parse(String($0)) }
        #expect(entries.compactMap { $0["action"]?.stringValue } == ["key.revoked", "key.created"])
        #expect(entries.last?["actor"]?["kind"] == "system")
        #expect(entries.last?["details"]?["scopes"] == ["runs:read"])
        let text = try await Binary.run(["audit", "--action", "key.created", "--database", database])
        #expect(text.stdout.contains("\tkey.created\tkey:ops\tok"), "\(text.stdout)")
        #expect(try await Binary.run(["audit", "--since", "soon", "--database", database]).stderr.contains("--since must be a duration"))
    }
}
