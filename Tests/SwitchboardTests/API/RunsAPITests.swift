import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// A configuration with an API-triggered workflow, written for these tests.
enum APIWorkflowFixture {
    static let workflow = """
    id: score-business
    description: Decide on a business from its input.
    trigger:
      api:
        input:
          business_name: { type: string, required: true }
          ein: { type: string, required: true, pattern: "^[0-9]{2}-[0-9]{7}$" }
          employees: { type: integer }
          tier: { type: string, enum: [small, large] }
    steps:
      - id: route
        switch:
          - if: input.business_name.contains('Sanctioned')
            then: [ { id: decline, action: decline } ]
          - if: has(input.employees) && input.employees > 100.0
            then: [ { id: review, action: mark_for_review } ]
          - else: [ { id: approve, action: approve } ]
      - id: label
        action: tag
        with:
          tag: "ein-{{input.ein}}"
    """

    static func directory() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/score-business.yaml", workflow)
        return directory
    }
}

@Suite("Runs: API trigger and read API")
struct RunsAPITests {
    @Test("an unknown workflow gets 404")
    func unknownWorkflow() async throws {
        let config = try APIWorkflowFixture.directory()
        let gateway = try await TestGateway(configurationDirectory: config.path)
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/workflows/nope/runs", json: [:])
            #expect(reply.status == .notFound)
            #expect(reply.json["detail"] == "no workflow 'nope'")
        }
    }

    @Test("an invalid input gets 422 listing every invalid field")
    func invalidInput() async throws {
        let config = try APIWorkflowFixture.directory()
        let gateway = try await TestGateway(configurationDirectory: config.path)
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/workflows/score-business/runs",
                                              json: ["ein": "123", "employees": 1.5, "tier": "medium", "extra": true])
            #expect(reply.status == .unprocessableContent)
            let errors = (reply.json["errors"]?.array ?? []).map { "\($0["path"]!.stringValue!): \($0["message"]!.stringValue!)" }
            #expect(errors.contains("business_name: is required"))
            #expect(errors.contains("ein: does not match the pattern ^[0-9]{2}-[0-9]{7}$"))
            #expect(errors.contains("employees: must be an integer"))
            #expect(errors.contains("tier: must be one of \"small\", \"large\""))
            #expect(errors.contains("extra: is not a field of this workflow's input"))
        }
    }

    @Test("a valid input starts a run whose switch routes and template render")
    func apiRun() async throws {
        let config = try APIWorkflowFixture.directory()
        let gateway = try await TestGateway(configurationDirectory: config.path)
        try await gateway.test { api in
            let cases: [(JSON, String)] = [
                (["business_name": "Sanctioned Imports LLC", "ein": "12-3456789"], "declined"),
                (["business_name": "Big Co", "ein": "12-3456789", "employees": 500], "needs_review"),
                (["business_name": "Small Co", "ein": "12-3456789", "tier": "small"], "approved"),
            ]
            for (input, decision) in cases {
                let reply = try await api.request(.post, "/v1/workflows/score-business/runs", json: input)
                #expect(reply.status == .accepted)
                let run = try await api.waitUntilFinished(reply.json["id"]!.stringValue!)
                #expect(run["decision"]?.stringValue == decision)
                #expect(run["tags"]?.stringList == ["ein-12-3456789"])
                #expect(run["trigger"]?["api"] == true)
            }
        }
    }

    @Test("GET /v1/runs filters by workflow and status, newest first, with a cursor")
    func listRuns() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            var ids: [String] = []
            for n in 0 ..< 3 {
                var event = try Repository.fixture("events/inquiry-minor.json")
                if case var .object(o) = event { o["id"] = .string("e\(n)"); event = .object(o) }
                let reply = try await api.request(.post, "/v1/events", json: event)
                for run in reply.json["runs"]?.array ?? [] where run["workflow"] == "review-minors" {
                    ids.append(run["id"]!.stringValue!)
                    _ = try await api.waitForRun(run["id"]!.stringValue!) { $0.status == .waiting }
                }
            }
            let page1 = try await api.request(.get, "/v1/runs?workflow=review-minors&status=waiting&limit=2").json
            let firstIDs = page1["data"]!.array.compactMap { $0["id"]?.stringValue }
            #expect(firstIDs == [ids[2], ids[1]])
            let cursor = page1["next_cursor"]!.stringValue!
            let page2 = try await api.request(.get, "/v1/runs?workflow=review-minors&status=waiting&limit=2&cursor=\(cursor)").json
            #expect(page2["data"]!.array.compactMap { $0["id"]?.stringValue } == [ids[0]])
            #expect(page2["next_cursor"] == .null)

            let bad = try await api.request(.get, "/v1/runs?status=sleeping")
            #expect(bad.status == .badRequest)

            let detail = try await api.request(.get, "/v1/runs/\(ids[0])").json
            let steps = detail["steps"]!.array
            #expect(steps.map { $0["id"]!.stringValue! } == ["minor", "mark", "tag_minor", "review_minor", "ask", "alert", "review"])
            #expect(steps[0]["parent"] == .null)
            #expect(steps[1]["parent"] == "minor")
            #expect(steps[4]["status"] == "waiting")
            #expect(steps[1]["started_at"]?.stringValue != nil)

            let missing = try await api.request(.get, "/v1/runs/run_missing")
            #expect(missing.status == .notFound)
        }
    }

    @Test("GET /v1/workflows lists the loaded workflows")
    func workflows() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let all = try await api.request(.get, "/v1/workflows").json
            #expect(Set(all["data"]!.array.compactMap { $0["id"]?.stringValue })
                == ["decline-blocked-ip", "kyb-onboarding", "review-minors", "block-declined-ips", "weekly-review-digest",
                    "reverify-approved", "yearly-reverification"])
            let one = try await api.request(.get, "/v1/workflows/review-minors").json
            #expect(one["trigger"]?["event"] == "inquiry.completed")
            #expect(one["steps"]!.array.contains { $0["id"] == "review" && $0["kind"] == "wait" && $0["parent"] == "ask" })
            #expect(try await api.request(.get, "/v1/workflows/nope").status == .notFound)
        }
    }
}
