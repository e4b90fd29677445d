import CEL
import Foundation
import Testing
@testable import Switchboard

@Suite("Configuration validation reports every problem with file and line")
struct ValidationTests {
    func problems(workflow: String, connectors: [String: String] = [:], environment: [String: String] = [:]) throws -> [String] {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/w.yaml", workflow)
        for (name, text) in connectors { try directory.write("connectors/\(name).yaml", text) }
        let (_, problems) = Configuration.load(directory: directory.path, environment: EnvironmentInterpolator(environment: environment))
        return problems.map { "\(($0.file as NSString).lastPathComponent):\($0.line):\($0.column): \($0.message)" }
    }

    @Test("the shipped configuration is valid")
    func shipped() {
        let (configuration, problems) = Configuration.load(directory: Repository.root.path, environment: EnvironmentInterpolator(environment: [:]))
        #expect(problems.filter { $0.severity == .error }.isEmpty, "\(problems)")
        #expect(configuration.workflows.map(\.id).sorted() == ["block-declined-ips", "decline-blocked-ip", "kyb-onboarding", "reverify-approved",
                                                                  "review-minors", "weekly-review-digest", "yearly-reverification"])
        #expect(configuration.connectorInstances.keys.sorted() == ["kyb", "persona", "slack-reviews"])
    }

    @Test("several problems in one file are all reported at once")
    func everyProblem() throws {
        let found = try problems(workflow: """
            id: broken
            trigger: { event: inquiry.completed }
            colour: blue
            steps:
              - id: first
                if: data.inquiry.age >
                then: [ { id: a, action: approve } ]
              - id: first
                action: decline
              - id: second
                frobnicate: true
              - id: third
                connector: crm
                operation: notify
              - id: fourth
                if: steps.nope.output.x == 1
                then: [ { id: b, action: explode } ]
            """)
        #expect(found.contains("w.yaml:3:1: unknown key 'colour' in workflow; expected one of: id, description, trigger, search, steps"))
        #expect(found.contains { $0.hasPrefix("w.yaml:6:") && $0.contains("in if expression 'data.inquiry.age >'") })
        #expect(found.contains("w.yaml:8:9: duplicate step id 'first' (first used at line 5); step ids are unique within a workflow"))
        #expect(found.contains("w.yaml:11:5: unknown key 'frobnicate' in step; expected one of: \(WorkflowLoader.stepKeys.joined(separator: ", "))"))
        #expect(found.contains("w.yaml:10:5: step 'second' has no kind; expected one of: if, switch, action, connector, parallel, wait, output, start_workflow"))
        #expect(found.contains("w.yaml:13:16: reference to unknown connector 'crm'; no connectors are configured"))
        #expect(found.filter { $0.hasPrefix("w.yaml:16:9: reference to unknown step 'steps.nope'") }.count == 1)
        #expect(found.contains("w.yaml:6:27: in if expression 'data.inquiry.age >': unexpected end of the expression, expected a value, an identifier or '('"))
        #expect(found.contains("w.yaml:17:30: unknown action 'explode'; expected one of: approve, decline, mark_for_review, tag, add_to_list, remove_from_list"))
    }

    @Test("a CEL error is reported at its column in the file")
    func celColumn() throws {
        let found = try problems(workflow: """
            id: w
            trigger: { event: e }
            steps:
              - id: check
                if: data.x == 1 && nosuch(data.y)
                then: [ { id: a, action: approve } ]
            """)
        #expect(found == ["w.yaml:5:24: in if expression 'data.x == 1 && nosuch(data.y)': undeclared reference to function 'nosuch'"])
    }

    @Test("missing keys and a missing trigger are reported")
    func missingKeys() throws {
        let found = try problems(workflow: "id: w\nsteps: []\n")
        #expect(found.contains("w.yaml:1:1: missing key 'trigger' in workflow"))
        #expect(found.contains("w.yaml:2:8: a workflow needs at least one step"))
    }

    @Test("a ${NAME} with no value and no default names the variable")
    func environment() throws {
        let connector = """
            id: crm
            kind: http
            base_url: ${CRM_URL:-https://crm.example.com}
            auth: { bearer: "${CRM_TOKEN}" }
            signing: off
            """
        let workflow = "id: w\ntrigger: { event: e }\nsteps: [ { id: a, action: approve } ]\n"
        let found = try problems(workflow: workflow, connectors: ["crm": connector])
        #expect(found == ["crm.yaml:4:17: environment variable CRM_TOKEN is not set and has no default (write ${CRM_TOKEN:-default} to give one)"])
        #expect(try problems(workflow: workflow, connectors: ["crm": connector], environment: ["CRM_TOKEN": "t"]).isEmpty)
    }

    @Test("connector kinds and settings are checked")
    func connectors() throws {
        let workflow = "id: w\ntrigger: { event: e }\nsteps: [ { id: a, action: approve } ]\n"
        let found = try problems(workflow: workflow, connectors: [
            "a": "id: a\nkind: fax\n",
            "b": "id: b\nkind: http\nbase_url: x\nrate_limit: fast\nretry: { initial_interval: soon }\nallow_networks: [10.0.0.0/99]\ncolour: red\n",
            "c": "id: c\nkind: source\nscheme: rot13\nsecret: s\nevent: { id: body.id }\n",
            "d": "id: d\nkind: source\nscheme: hmac-sha256\nheader: X-Sig\nsecret: s\nevent: { id: body.id, type: \"'t'\", source: \"body.(\" }\n",
        ])
        #expect(found.contains("c.yaml:3:1: connector 'c': scheme: 'rot13' is not a scheme; expected standard-webhooks, hmac-sha256, timestamped-hmac or slack-v0"))
        #expect(found.contains { $0.hasPrefix("d.yaml:6:1: connector 'd': event.source: expression does not compile") })
        #expect(found.contains("a.yaml:2:7: unknown connector kind 'fax'; expected one of: http, kyb, slack, source"))
        #expect(found.contains("b.yaml:4:13: rate_limit 'fast' must be written N/s, N/m or N/h"))
        #expect(found.contains("b.yaml:5:28: 'soon' is not a duration; write it like 250ms, 5s, 10m or 72h"))
        #expect(found.contains("b.yaml:6:18: allow_networks entry '10.0.0.0/99' is not a CIDR range such as 10.20.0.0/16"))
        #expect(found.contains { $0.hasPrefix("b.yaml:7:1: unknown key 'colour' in connector 'b' (kind http)") })
    }

    @Test("invalid YAML is reported with its position")
    func invalidYAML() throws {
        let found = try problems(workflow: "id: w\nsteps: [ { id: a\n")
        #expect(found.count == 1)
        #expect(found[0].hasPrefix("w.yaml:3:1: invalid YAML"))
    }

    @Test("search fields are paths under data or input, listed once")
    func searchFields() throws {
        let found = try problems(workflow: """
            id: w
            trigger: { event: t }
            search: [data.inquiry.id, inquiry.id, "data..id", data.inquiry.id, data]
            steps: [ { id: a, action: approve } ]
            """)
        #expect(found.contains("w.yaml:3:27: search field 'inquiry.id' must be a path under data or input, such as data.inquiry.id or input.business_name"))
        #expect(found.contains("w.yaml:3:39: search field 'data..id' must be a path under data or input, such as data.inquiry.id or input.business_name"))
        #expect(found.contains("w.yaml:3:51: search field 'data.inquiry.id' is listed twice"))
        #expect(found.contains("w.yaml:3:68: search field 'data' must be a path under data or input, such as data.inquiry.id or input.business_name"))
        #expect(found.count == 4)
        let notAList = try problems(workflow: "id: w\ntrigger: { event: t }\nsearch: data.inquiry.id\nsteps: [ { id: a, action: approve } ]\n")
        #expect(notAList == ["w.yaml:3:9: search must be a list of fields such as data.inquiry.id or input.business_name"])
    }

    @Test("wait, timeout and input schema values are checked")
    func values() throws {
        let found = try problems(workflow: """
            id: w
            trigger:
              api:
                input:
                  n: { type: decimal }
                  p: { type: string, pattern: "([" }
            steps:
              - id: pause
                wait: a while
              - id: hold
                wait: review
                timeout: forever
              - id: route
                switch:
                  - else: [ { id: x, action: approve } ]
                  - if: "true"
                    then: [ { id: y, action: decline } ]
            """)
        #expect(found.contains("w.yaml:5:18: unknown input type 'decimal'; expected one of: string, number, integer, boolean, object, array"))
        #expect(found.contains("w.yaml:6:35: pattern '([' is not a valid regular expression"))
        #expect(found.contains("w.yaml:9:11: wait 'a while' must be review, callback, or a duration such as 30s or 72h"))
        #expect(found.contains("w.yaml:12:14: timeout 'forever' is not a duration; write it like 250ms, 5s, 10m or 72h"))
        #expect(found.contains("w.yaml:15:9: the 'else' route must be the last route of the switch"))
    }
}
