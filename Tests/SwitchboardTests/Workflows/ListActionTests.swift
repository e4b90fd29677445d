import CEL
import Foundation
import Testing
@testable import Switchboard

/// `add_to_list`, `remove_from_list` and `output`: list changes written with the run's
/// checkpoint (and audited), refused for a missing list or an item the list's kind refuses.
@Suite("List actions and outputs", .timeLimit(.minutes(2)))
struct ListActionTests {
    @Test("block-declined-ips adds a declined inquiry's address; the next inquiry from it is declined; the run's output says so")
    func blockDeclined() async throws {
        let gateway = try await TestGateway()
        try await gateway.seedBlockedIPs()
        try await gateway.test { api in
            let declined = try await api.request(.post, "/v1/events", json: try Repository.fixture("events/inquiry-declined.json")).json
            let run = try #require(declined["runs"]?.array.first { $0["workflow"] == "block-declined-ips" }?["id"]?.stringValue)
            let finished = try await api.waitUntilFinished(run)
            #expect(finished["status"] == "completed")
            #expect(finished["output"] == ["blocked": "192.0.2.99", "inquiry": "inq_008"])
            let list = try await api.request(.get, "/v1/lists/blocked-ips").json
            #expect(list["items"]?.array.contains("192.0.2.99") == true)
            let audit = try await api.request(.get, "/v1/audit?action=list.items_added").json["data"]?.array ?? []
            #expect(audit.first?["actor"]?["name"]?.stringValue == "run:\(run)")

            // Within the scheduler's poll interval the gateway's copy of the lists has it.
            for _ in 0 ..< 100 where !gateway.gateway.lists.snapshot.contains(list: "blocked-ips", "192.0.2.99") {
                try await Sleep.for(.milliseconds(20))
            }
            var next = try Repository.fixture("events/inquiry-adult.json")
            if case var .object(fields) = next {
                fields["id"] = "evt-after-block"
                fields["data"] = ["inquiry": ["id": "inq_009", "ip_address": "192.0.2.99", "birthdate": "1990-01-01"]]
                next = .object(fields)
            }
            let answer = try await api.request(.post, "/v1/events", json: next).json
            let check = try #require(answer["runs"]?.array.first { $0["workflow"] == "decline-blocked-ip" }?["id"]?.stringValue)
            #expect(try await api.waitUntilFinished(check)["decision"] == "declined")
            // Runs of workflows without output steps show an empty output.
            #expect(try await api.request(.get, "/v1/runs/\(check)").json["output"] == [:])
        }
    }

    @Test("remove_from_list removes; a missing list fails with list_not_found, an item the kind refuses with invalid_item")
    func refusals() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/lists.yaml", """
            id: lists
            trigger: { api: { input: { list: { type: string }, item: { type: string } } } }
            steps:
              - id: change
                switch:
                  - if: input.list == "remove"
                    then: [ { id: remove, action: remove_from_list, with: { list: blocked-ips, items: "= input.item" } } ]
                  - if: input.list == "missing"
                    then: [ { id: missing, action: add_to_list, with: { list: nowhere, items: [ "= input.item" ] } } ]
                  - else: [ { id: add, action: add_to_list, with: { list: blocked-ips, items: [ "= input.item" ] } } ]
              - id: done
                output: { list: "= input.list", first: 1 }
              - id: again
                output: { first: 2 }
            """)
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.seedBlockedIPs()
        try await gateway.test { api in
            func start(_ list: String, _ item: String) async throws -> JSON {
                let run = try #require(try await api.request(.post, "/v1/workflows/lists/runs", json: ["list": .string(list), "item": .string(item)])
                    .json["id"]?.stringValue)
                return try await api.waitUntilFinished(run)
            }
            let removed = try await start("remove", "203.0.113.7")
            #expect(removed["status"] == "completed")
            #expect(removed["output"] == ["list": "remove", "first": 2], "output steps merge, later keys win")
            #expect(try await api.request(.get, "/v1/lists/blocked-ips").json["items"]?.array.contains("203.0.113.7") == false)

            let missing = try await start("missing", "192.0.2.1")
            #expect(missing["status"] == "failed")
            #expect(missing["error"]?["class"] == "list_not_found")

            let invalid = try await start("add", "not-an-ip")
            #expect(invalid["status"] == "failed")
            #expect(invalid["error"]?["class"] == "invalid_item")
            #expect(try await api.request(.get, "/v1/lists/blocked-ips").json["items"]?.array.contains("not-an-ip") == false)
        }
    }
}
