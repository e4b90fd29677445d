import CEL
import Foundation
import Testing
@testable import Switchboard

/// `trigger.if`: an event starts a run only when the filter holds; a filter that fails to evaluate
/// starts none, and is logged and counted.
@Suite("Trigger filters (trigger.if)")
struct TriggerFilterTests {
    static let workflow = """
        id: onboarding-only
        trigger:
          event: inquiry.completed
          if: data.inquiry.template_id == "itmpl_onboarding"
        steps:
          - { id: ok, action: approve }
        """

    static func event(_ id: String, inquiry: JSON) -> JSON {
        ["specversion": "1.0", "id": .string(id), "source": "/persona", "type": "inquiry.completed", "data": ["inquiry": inquiry]]
    }

    @Test("a matching event starts a run; another, or one the filter cannot read, starts none; failures are counted")
    func filters() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/onboarding-only.yaml", Self.workflow)
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.test { api in
            let matching = try await api.request(.post, "/v1/events", json: Self.event("e1", inquiry: ["id": "inq_1", "template_id": "itmpl_onboarding"]))
            #expect(matching.status == .accepted)
            #expect(matching.json["runs"]?.array.map { $0["workflow"] } == ["onboarding-only"])
            let other = try await api.request(.post, "/v1/events", json: Self.event("e2", inquiry: ["id": "inq_2", "template_id": "itmpl_other"]))
            #expect(other.status == .accepted)
            #expect(other.json["runs"]?.array.isEmpty == true)
            let unreadable = try await api.request(.post, "/v1/events", json: Self.event("e3", inquiry: ["id": "inq_3"]))
            #expect(unreadable.status == .accepted, "the event is kept even when the filter cannot read it")
            #expect(unreadable.json["runs"]?.array.isEmpty == true)

            let metrics = try await api.request(.get, "/metrics", authenticated: false).body
            #expect(metrics.contains(#"switchboard_trigger_filter_errors_total{workflow="onboarding-only"} 1"#), "\(metrics)")
            let shown = try await api.request(.get, "/v1/workflows/onboarding-only").json
            #expect(shown["trigger"]?["if"] == #"data.inquiry.template_id == "itmpl_onboarding""#)
        }
    }

    @Test("the dry run says when the filter keeps an event out")
    func dryRun() throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/onboarding-only.yaml", Self.workflow)
        let (configuration, problems) = Configuration.load(directory: directory.path, environment: EnvironmentInterpolator(environment: [:]))
        #expect(problems.isEmpty, "\(problems)")
        let workflow = try #require(configuration.workflow("onboarding-only"))
        let lists = ListIndexSnapshot()
        #expect(throws: DryRun.InvalidTrigger.self) {
            try DryRun.execute(workflow, event: Self.event("e", inquiry: ["template_id": "itmpl_other"]), input: nil, lists: lists)
        }
        let result = try DryRun.execute(workflow, event: Self.event("e", inquiry: ["template_id": "itmpl_onboarding"]), input: nil, lists: lists)
        #expect(result.run.decision == .approved)
    }

    @Test("a filter that does not compile, refers to what an event lacks, or sits on an API trigger is a configuration error")
    func validation() throws {
        func problems(_ workflow: String) throws -> [String] {
            let directory = try TemporaryDirectory()
            try directory.write("workflows/w.yaml", workflow)
            let (_, problems) = Configuration.load(directory: directory.path, environment: EnvironmentInterpolator(environment: [:]))
            return problems.map { "\($0.line):\($0.column): \($0.message)" }
        }
        let broken = try problems("id: w\ntrigger:\n  event: e\n  if: data.x ==\nsteps: [ { id: a, action: approve } ]\n")
        #expect(broken.count == 1 && broken[0].hasPrefix("4:"), "\(broken)")
        #expect(broken.first?.contains("trigger.if") == true, "\(broken)")
        let input = try problems("id: w\ntrigger:\n  event: e\n  if: input.x == 1\nsteps: [ { id: a, action: approve } ]\n")
        #expect(input == ["4:7: trigger.if sees only event, data and now; it refers to input"])
        let api = try problems("id: w\ntrigger:\n  api: {}\n  if: data.x == 1\nsteps: [ { id: a, action: approve } ]\n")
        #expect(api == ["4:7: trigger.if filters events; an API trigger checks its input with trigger.api.input"])
    }
}
