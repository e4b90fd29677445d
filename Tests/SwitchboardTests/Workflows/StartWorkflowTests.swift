import CEL
import Foundation
import Testing
@testable import Switchboard

/// `start_workflow`: a child run now or later, waited for or not; a child's failure fails the
/// step; a workflow that starts itself stops at the depth limit.
@Suite("start_workflow", .timeLimit(.minutes(2)))
struct StartWorkflowTests {
    static let workflows: [String: String] = [
        "parent": """
            id: parent
            trigger: { api: { input: { case: { type: string, required: true } } } }
            steps:
              - id: child
                start_workflow: scoring
                input: { case: "= input.case" }
                wait: true
              - id: decide
                if: steps.child.output.decision == "approved"
                then: [ { id: approve, action: approve } ]
                else: [ { id: decline, action: decline } ]
              - id: report
                output: { score: "= steps.child.output.output.score" }
            """,
        "scoring": """
            id: scoring
            trigger: { api: { input: { case: { type: string, required: true } } } }
            steps:
              - id: check
                if: input.case == "broken"
                then: [ { id: fail, action: add_to_list, with: { list: nowhere, items: [ x ] } } ]
              - id: score
                output: { score: 7 }
              - id: ok
                action: approve
            """,
        "later": """
            id: later
            trigger: { api: {} }
            steps:
              - id: reverify
                start_workflow: scoring
                input: { case: "yearly" }
                after: 1h
            """,
        "chain": """
            id: chain
            trigger: { api: {} }
            steps:
              - id: again
                start_workflow: chain
            """,
        "bad-input": """
            id: bad-input
            trigger: { api: {} }
            steps:
              - id: child
                start_workflow: scoring
                input: { nothing: 1 }
            """,
    ]

    static func gateway(clock: any WallClock = SystemWallClock()) async throws -> TestGateway {
        let directory = try TemporaryDirectory()
        for (name, text) in workflows { try directory.write("workflows/\(name).yaml", text) }
        return try await TestGateway(configurationDirectory: directory.path, clock: clock)
    }

    @Test("wait: true: the step takes the child's result; a child that fails fails the step")
    func waitForChild() async throws {
        let gateway = try await Self.gateway()
        try await gateway.test { api in
            let parent = try #require(try await api.request(.post, "/v1/workflows/parent/runs", json: ["case": "c-1"]).json["id"]?.stringValue)
            let done = try await api.waitUntilFinished(parent)
            #expect(done["status"] == "completed")
            #expect(done["decision"] == "approved")
            #expect(done["output"] == ["score": 7])
            let step = try #require(done["steps"]?.array.first { $0["id"] == "child" })
            let child = try #require(step["output"]?["run_id"]?.stringValue)
            #expect(step["output"]?["status"] == "completed" && step["output"]?["decision"] == "approved")
            let shown = try await api.request(.get, "/v1/runs/\(child)").json
            #expect(shown["trigger"]?["parent"]?["run_id"]?.stringValue == parent)
            #expect(shown["trigger"]?["parent"]?["step"] == "child")
            #expect(shown["input"] == ["case": "c-1"])

            let failing = try #require(try await api.request(.post, "/v1/workflows/parent/runs", json: ["case": "broken"]).json["id"]?.stringValue)
            let failed = try await api.waitUntilFinished(failing)
            #expect(failed["status"] == "failed")
            #expect(failed["error"]?["class"] == "child_failed", "\(failed)")
            #expect(failed["error"]?["message"]?.stringValue?.contains("list_not_found") == true)

            let invalid = try #require(try await api.request(.post, "/v1/workflows/bad-input/runs", json: [:]).json["id"]?.stringValue)
            #expect(try await api.waitUntilFinished(invalid)["error"]?["class"] == "invalid_input")
        }
    }

    @Test("after: the child waits for its start time, then runs")
    func later() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        let gateway = try await Self.gateway(clock: clock)
        try await gateway.test { api in
            let parent = try #require(try await api.request(.post, "/v1/workflows/later/runs", json: [:]).json["id"]?.stringValue)
            let done = try await api.waitUntilFinished(parent)
            let child = try #require(done["steps"]?.array.first?["output"]?["run_id"]?.stringValue)
            var shown = try await api.request(.get, "/v1/runs/\(child)").json
            #expect(shown["status"] == "waiting")
            #expect(shown["starts_at"]?.stringValue == clock.now().addingTimeInterval(3600).rfc3339)
            try await Sleep.for(.milliseconds(300))
            #expect(try await api.request(.get, "/v1/runs/\(child)").json["status"] == "waiting", "not before its time")
            clock.advance(by: 3601)
            gateway.gateway.engine.runsDue.ring()
            shown = try await api.waitUntilFinished(child)
            #expect(shown["status"] == "completed")
            #expect(shown["decision"] == "approved")
        }
    }

    @Test("a workflow that starts itself stops at the depth limit with the error class depth_limit")
    func depthLimit() async throws {
        let gateway = try await Self.gateway()
        try await gateway.test { api in
            _ = try await api.request(.post, "/v1/workflows/chain/runs", json: [:])
            var runs: [JSON] = []
            for _ in 0 ..< 200 {
                runs = try await api.request(.get, "/v1/runs?workflow=chain&limit=100").json["data"]?.array ?? []
                if runs.count == StartWorkflow.depthLimit + 1, runs.allSatisfy({ $0["status"] == "completed" || $0["status"] == "failed" }) { break }
                try await Sleep.for(.milliseconds(50))
            }
            #expect(runs.count == StartWorkflow.depthLimit + 1, "a root and 16 generations: \(runs.count)")
            let failed = runs.filter { $0["status"] == "failed" }
            #expect(failed.count == 1)
            #expect(failed.first?["error"]?["class"] == "depth_limit")
            #expect(failed.first?["trigger"]?["parent"]?["depth"] == 16)
        }
    }

    @Test("the shipped reverify-approved starts yearly-reverification 365 days after an approval; that run asks for a review")
    func yearlyReverification() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000))
        let slack = TestReceiver(script: [TestReceiver.Answer(body: "ok")])
        try await slack.serve {
        let gateway = try await TestGateway(clock: clock, environment: ["SLACK_WEBHOOK_URL": slack.url + "/webhook"])
        try await gateway.test { api in
            let event: JSON = ["specversion": "1.0", "id": "evt-approved-1", "source": "/persona", "type": "inquiry.approved",
                               "data": ["inquiry": ["id": "inq_approved_1"]]]
            let answer = try await api.request(.post, "/v1/events", json: event).json
            let parent = try #require(answer["runs"]?.array.first { $0["workflow"] == "reverify-approved" }?["id"]?.stringValue)
            let done = try await api.waitUntilFinished(parent)
            let child = try #require(done["steps"]?.array.first?["output"]?["run_id"]?.stringValue, "\(done)")
            let waiting = try await api.request(.get, "/v1/runs/\(child)").json
            #expect(waiting["workflow"] == "yearly-reverification")
            #expect(waiting["starts_at"]?.stringValue == clock.now().addingTimeInterval(365 * 86_400).rfc3339)
            #expect(waiting["input"] == ["inquiry_id": "inq_approved_1"])

            clock.advance(by: 365 * 86_400 + 1)
            gateway.gateway.engine.runsDue.ring()
            _ = try await api.waitForRun(child) { $0.status == .waiting && $0.decision == .needsReview }
            #expect(try await api.request(.post, "/v1/runs/\(child)/review", json: ["decision": "approve"]).status == .accepted)
            let reverified = try await api.waitUntilFinished(child)
            #expect(reverified["decision"] == "approved")
            #expect(reverified["output"] == ["reverified": "inq_approved_1", "decision": "approve"])
            #expect(slack.received.count >= 1, "the review alert went to Slack (and the decision updated it)")
        }
        }
    }

    @Test("start_workflow naming no workflow is a configuration error with its place")
    func unknownTarget() throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/w.yaml", "id: w\ntrigger: { api: {} }\nsteps:\n  - id: go\n    start_workflow: nowhere\n")
        let problems = Configuration.load(directory: directory.path, environment: EnvironmentInterpolator(environment: [:])).1
        #expect(problems.map { "\($0.line):\($0.column): \($0.message)" } == ["5:21: start_workflow names no workflow 'nowhere'; loaded: w"])
    }
}
