import CEL
import Foundation
import Testing
@testable import Switchboard

/// `POST /v1/admin/reload`: a valid configuration replaces the running one (new versions for new
/// events, new connectors for new deliveries) while runs in flight keep their versions; an invalid
/// one changes nothing and answers 422 with every problem's place.
@Suite("Reload without a restart", .timeLimit(.minutes(2)))
struct ReloadTests {
    static func workflow(tag: String, connector: Bool = false) -> String {
        """
        id: vetted
        trigger: { event: case.opened }
        steps:
          - id: review
            wait: review
          - id: path
            action: tag
            with: { tag: \(tag) }
        \(connector ? "  - { id: tell, connector: crm, operation: notify }\n" : "")
        """
    }

    static func crm(_ url: String) -> String {
        """
        id: crm
        kind: http
        base_url: \(url)
        signing: off
        allow_networks: [ 127.0.0.0/8 ]
        operations:
          notify: { method: POST, path: /hook, body: "= {'run': run.id}" }
        """
    }

    static func event(_ id: String) -> JSON {
        ["specversion": "1.0", "id": .string(id), "source": "/test", "type": "case.opened", "data": [:]]
    }

    @Test("runs in flight keep their version; new events run the new one; connectors change for new deliveries")
    func reload() async throws {
        let first = TestReceiver(script: [TestReceiver.Answer()]), second = TestReceiver(script: [TestReceiver.Answer()])
        try await first.serve {
            try await second.serve {
                let directory = try TemporaryDirectory()
                try directory.write("workflows/vetted.yaml", Self.workflow(tag: "old-path", connector: true))
                try directory.write("connectors/crm.yaml", Self.crm(first.url))
                let gateway = try await TestGateway(configurationDirectory: directory.path)
                try await gateway.test { api in
                    let old = try #require(try await api.request(.post, "/v1/events", json: Self.event("e-1")).json["runs"]?
                        .array.first?["id"]?.stringValue)
                    _ = try await api.waitForRun(old) { $0.status == .waiting }

                    try directory.write("workflows/vetted.yaml", Self.workflow(tag: "new-path", connector: true))
                    try directory.write("connectors/crm.yaml", Self.crm(second.url))
                    let reloaded = try await api.request(.post, "/v1/admin/reload")
                    #expect(reloaded.status == .ok, "\(reloaded.body)")
                    #expect(reloaded.json["workflows"] == [["id": "vetted", "version": "v2"]])
                    #expect(reloaded.json["connectors"] == ["crm"])

                    #expect(try await api.request(.post, "/v1/runs/\(old)/review", json: ["decision": "approve"]).status == .accepted)
                    let finished = try await api.waitUntilFinished(old)
                    #expect(finished["tags"] == ["old-path"], "the run in flight kept its version: \(finished)")
                    #expect(finished["workflow_version"] == "v1")

                    let new = try #require(try await api.request(.post, "/v1/events", json: Self.event("e-2")).json["runs"]?
                        .array.first?["id"]?.stringValue)
                    _ = try await api.waitForRun(new) { $0.status == .waiting }
                    _ = try await api.request(.post, "/v1/runs/\(new)/review", json: ["decision": "approve"])
                    let newer = try await api.waitUntilFinished(new)
                    #expect(newer["tags"] == ["new-path"])
                    #expect(newer["workflow_version"] == "v2")
                    // Both deliveries were made after the reload: both went to the new address.
                    #expect(first.received.isEmpty)
                    #expect(second.received.count == 2)

                    let audit = try await api.request(.get, "/v1/audit?action=configuration.reloaded").json["data"]?.array ?? []
                    #expect(audit.first?["outcome"] == "ok")
                    #expect(audit.first?["actor"]?["name"] == "test")
                }
            }
        }
    }

    @Test("an invalid configuration answers 422 with each problem's file, line and column, and changes nothing")
    func invalid() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/vetted.yaml", Self.workflow(tag: "old-path"))
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.test { api in
            try directory.write("workflows/vetted.yaml", """
                id: vetted
                trigger: { event: case.opened }
                steps:
                  - id: check
                    if: data.x ==
                    then: [ { id: a, action: approve } ]
                """)
            try directory.write("workflows/other.yaml", "id: other\ntrigger: { event: x }\nsteps: [ { id: a, action: explode } ]\n")
            let refused = try await api.request(.post, "/v1/admin/reload")
            #expect(refused.status == .unprocessableContent)
            let errors = refused.json["errors"]?.array ?? []
            #expect(errors.count == 2, "every problem at once: \(refused.body)")
            let cel = try #require(errors.first { ($0["file"]?.stringValue ?? "").hasSuffix("vetted.yaml") })
            #expect(cel["line"] == 5)
            #expect(cel["column"]?.numberValue ?? 0 > 1)
            #expect(errors.contains { ($0["file"]?.stringValue ?? "").hasSuffix("other.yaml") && $0["line"] == 3 })

            let shown = try await api.request(.get, "/v1/workflows/vetted").json
            #expect(shown["version"] == "v1", "the running configuration stays")
            #expect(try await api.request(.get, "/v1/workflows/other").status == .notFound)
            let audit = try await api.request(.get, "/v1/audit?action=configuration.reloaded").json["data"]?.array ?? []
            #expect(audit.first?["outcome"] == "invalid")
        }
        let reader = try await TestGateway(scopes: ["workflows:read"])
        #expect(try await reader.test { api in try await api.request(.post, "/v1/admin/reload") }.status == .forbidden)
    }
}
