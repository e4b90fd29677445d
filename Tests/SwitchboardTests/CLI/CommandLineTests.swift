import CEL
import Foundation
import Switchboard
import Testing

/// The command line through the built binary: output, messages and exit statuses.
@Suite("Command line", .timeLimit(.minutes(3)))
struct CommandLineTests {
    @Test("--help lists the commands")
    func help() async throws {
        let output = try await Binary.run(["--help"])
        #expect(output.status == 0)
        for command in ["serve", "validate", "run", "eval", "keys", "lists", "deliveries", "connectors", "migrate"] {
            #expect(output.stdout.contains("  \(command)"), "\(command)")
        }
    }

    @Test("a usage error exits 2")
    func usage() async throws {
        let output = try await Binary.run(["run"])
        #expect(output.status == 2)
        #expect(output.stderr.contains("Missing expected argument"))
        #expect(try await Binary.run(["frobnicate"]).status == 2)
    }

    @Test("validate prints every problem and exits 1; a valid configuration exits 0")
    func validate() async throws {
        let good = try await Binary.run(["validate", "--config", Repository.root.path, "--database", "sqlite:/nonexistent/x.sqlite"])
        #expect(good.status == 0, "\(good.stdout)\(good.stderr)")
        #expect(good.stdout.contains("configuration is valid: 7 workflow(s), 3 connector(s)"))

        let directory = try TemporaryDirectory()
        try directory.write("workflows/bad.yaml", "id: bad\ntrigger: { event: e }\nsteps:\n  - id: a\n    if: x ==\n  - id: a\n    action: nap\n")
        let bad = try await Binary.run(["validate", "--config", directory.path])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("bad.yaml:5:13: error: in if expression 'x ==': unexpected end of the expression"))
        #expect(bad.stdout.contains("bad.yaml:6:9: error: duplicate step id 'a'"))
        #expect(bad.stdout.contains("bad.yaml:7:13: error: unknown action 'nap'"))
        #expect(bad.stderr.contains("error: 4 errors in the configuration"))
    }

    @Test("validate warns about lists that do not exist when it can read the store")
    func validateLists() async throws {
        let directory = try TemporaryDirectory()
        let database = "sqlite:" + directory.file("db.sqlite")
        #expect(try await Binary.run(["migrate", "--database", database]).status == 0)
        let output = try await Binary.run(["validate", "--config", Repository.root.path, "--database", database])
        #expect(output.status == 0)
        #expect(output.stdout.contains("warning: list 'blocked-ips' does not exist yet"))
        #expect(try await Binary.run(["lists", "add", "blocked-ips", "10.0.0.1", "--kind", "ip", "--database", database]).status == 0)
        #expect(!(try await Binary.run(["validate", "--config", Repository.root.path, "--database", database]).stdout.contains("warning")))
    }

    @Test("serve refuses an invalid configuration and says why")
    func serveInvalid() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/bad.yaml", "id: bad\ntrigger: { event: e }\nsteps: [ { id: a, action: nap } ]\n")
        let output = try await Binary.run(["serve", "--config", directory.path, "--database", "sqlite:" + directory.file("db.sqlite"), "--port", "0"])
        #expect(output.status == 1)
        #expect(output.stderr.contains("unknown action 'nap'"))
    }

    @Test("serve refuses an event-loop count that is not a whole number from 1 to 256")
    func serveEventLoops() async throws {
        let directory = try TemporaryDirectory()
        for bad in ["0", "two", "1000"] {
            let output = try await Binary.run(["serve", "--config", directory.path, "--database", "sqlite:" + directory.file("db.sqlite"),
                                               "--port", "0", "--event-loops", bad])
            #expect(output.status == 1)
            #expect(output.stderr.contains("--event-loops (or SWITCHBOARD_EVENT_LOOPS) must be a whole number from 1 to 256, got '\(bad)'"))
        }
    }

    @Test("keys create prints the key alone; list and revoke")
    func keys() async throws {
        let directory = try TemporaryDirectory()
        let database = "sqlite:" + directory.file("db.sqlite")
        let created = try await Binary.run(["keys", "create", "--name", "ops", "--scopes", "runs:read", "--database", database])
        #expect(created.status == 0)
        #expect(created.stdout.range(of: #"^sk_[0-9a-f]{64}\n$"#, options: .regularExpression) != nil)
        let listed = try await Binary.run(["keys", "list", "--database", database])
        #expect(listed.stdout == "ops\tactive\truns:read\n")
        #expect(!listed.stdout.contains(created.stdout.trimmingCharacters(in: .newlines)))
        #expect(try await Binary.run(["keys", "create", "--name", "ops", "--database", database]).status == 1)
        #expect(try await Binary.run(["keys", "create", "--name", "x", "--scopes", "root", "--database", database]).stderr.contains("unknown scope 'root'"))
        #expect(try await Binary.run(["keys", "revoke", "ops", "--database", database]).status == 0)
        let again = try await Binary.run(["keys", "revoke", "ops", "--database", database])
        #expect(again.status == 1)
        #expect(again.stderr == "error: no active key named 'ops'\n")

        let day = try await Binary.run(["keys", "create", "--name", "day", "--expires", "1d", "--database", database])
        #expect(day.status == 0)
        #expect(try await Binary.run(["keys", "list", "--database", database]).stdout.contains("day\tactive until 20"))
        let bad = try await Binary.run(["keys", "create", "--name", "y", "--expires", "soon", "--database", database])
        #expect(bad.stderr.contains("--expires must be a duration such as 30d, 12h or 90m, got 'soon'"))
    }

    @Test("lists add, show and remove")
    func lists() async throws {
        let directory = try TemporaryDirectory()
        let database = "sqlite:" + directory.file("db.sqlite")
        #expect(try await Binary.run(["lists", "add", "vip", "a@example.com", "example.org", "--kind", "email", "--database", database]).status == 0)
        let shown = try await Binary.run(["lists", "show", "vip", "--database", database])
        #expect(shown.stdout == "vip (email), 2 item(s)\na@example.com\nexample.org\n")
        let wrongKind = try await Binary.run(["lists", "add", "vip", "10.0.0.1", "--kind", "ip", "--database", database])
        #expect(wrongKind.status == 1)
        #expect(wrongKind.stderr.contains("exists with kind email"))
        let badItem = try await Binary.run(["lists", "add", "ips", "10.0.0.300", "--kind", "ip", "--database", database])
        #expect(badItem.stderr.contains("'10.0.0.300' is not an IP address"))
        #expect(try await Binary.run(["lists", "remove", "vip", "example.org", "--database", database]).status == 0)
        #expect(try await Binary.run(["lists", "remove", "vip", "example.org", "--database", database]).status == 1)
    }

    @Test("deliveries list, show and retry read the store")
    func deliveries() async throws {
        let directory = try TemporaryDirectory()
        let database = "sqlite:" + directory.file("db.sqlite")
        #expect(try await Binary.run(["migrate", "--database", database]).status == 0)
        #expect(try await Binary.run(["deliveries", "list", "--database", database]).stdout == "")
        let missing = try await Binary.run(["deliveries", "show", "dlv_nope", "--database", database])
        #expect(missing.status == 1)
        #expect(missing.stderr == "error: no delivery 'dlv_nope'\n")
        #expect(try await Binary.run(["deliveries", "retry", "dlv_nope", "--database", database]).status == 1)
        #expect(try await Binary.run(["deliveries", "list", "--status", "lost", "--database", database]).stderr.contains("--status must be one of"))
    }

    @Test("eval prints a value as JSON; errors go to stderr with the position")
    func eval() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("vars.json", #"{"data": {"inquiry": {"score": 0.9, "birthdate": "2000-01-01"}}}"#)
        let value = try await Binary.run(["eval", "data.inquiry.score > 0.8 && age(data.inquiry.birthdate) >= 18", "--vars", directory.file("vars.json")])
        #expect(value.stdout == "true\n")
        #expect(try await Binary.run(["eval", "[1, 2u, 'x']", "--typed"]).stdout == #"{"list":[{"int":"1"},{"uint":"2"},{"string":"x"}]}"# + "\n")
        let error = try await Binary.run(["eval", "1 + "])
        #expect(error.status == 1)
        #expect(error.stderr.contains("1:5: unexpected end of the expression"))
    }

    @Test("eval --jsonl answers every line, survives bad ones")
    func evalJSONLines() async throws {
        let input = [
            #"{"expr": "x + 1", "vars": {"x": {"int": "41"}}}"#,
            "not json",
            #"{"expr": "1 / 0"}"#,
            #"{"vars": {}}"#,
            #"{"expr": "x", "vars": {"x": {"frob": 1}}}"#,
            #"{"expr": "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1"}"#,
            #"{"expr": "ip('10.0.0.1').family()"}"#,
        ].joined(separator: "\n") + "\n"
        let output = try await Binary.run(["eval", "--jsonl"], input: input)
        #expect(output.status == 0)
        let lines = output.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 7)
        #expect(lines[0] == #"{"value":{"int":"42"}}"#)
        #expect(lines[1].hasPrefix(#"{"error":"#))
        #expect(lines[2].contains("division by zero"))
        #expect(lines[3].contains("no string 'expr'"))
        #expect(lines[4].contains("malformed typed value"))
        #expect(lines[5].contains("nested more than"))
        #expect(lines[6] == #"{"value":{"int":"4"}}"#)
    }

    @Test("run dry-runs a workflow and prints the trace and the decision")
    func dryRun() async throws {
        let output = try await Binary.run(["run", "review-minors", "--event", Repository.root.appendingPathComponent("fixtures/events/inquiry-minor.json").path,
                                     "--config", Repository.root.path])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains("✔ minor (if) → {\"result\":true}"))
        #expect(output.stdout.contains("  … review (wait)"))
        #expect(output.stdout.contains("status: waiting\ndecision: needs_review"))

        let wrong = try await Binary.run(["run", "review-minors", "--input", Repository.root.appendingPathComponent("fixtures/events/inquiry-minor.json").path,
                                    "--config", Repository.root.path])
        #expect(wrong.status == 1)
        #expect(wrong.stderr.contains("triggered by events: use --event FILE"))
    }

    @Test("run prints the request a connector step would send, and sends nothing")
    func dryRunConnector() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("connectors/crm.yaml", "id: crm\nkind: http\nbase_url: http://127.0.0.1:9\nsigning: off\nauth: { bearer: hidden-token }\n")
        try directory.write("workflows/notify.yaml", """
            id: notify
            trigger: { api: { input: { name: { type: string, required: true } } } }
            steps:
              - id: tell
                connector: crm
                operation: request
                with:
                  path: /tickets
                  body:
                    title: "Hello {{input.name}}"
                    size: "= size(input.name)"
            """)
        try directory.write("input.json", #"{"name": "Ada"}"#)
        let output = try await Binary.run(["run", "notify", "--input", directory.file("input.json"), "--config", directory.path])
        #expect(output.status == 0, "\(output.stderr)")
        #expect(output.stdout.contains(#"✔ tell (connector) would send: {"body":"{\"size\":3,\"title\":\"Hello Ada\"}","connector":"crm","headers":{"Content-Type":"application/json"},"method":"POST","operation":"request","url":"http://127.0.0.1:9/tickets"}"#), "\(output.stdout)")
        #expect(!output.stdout.contains("hidden-token"), "credentials are added at send time only")
    }

    @Test("run --outputs assumes connector outputs, so example 3 dry-runs to its decision")
    func dryRunWithOutputs() async throws {
        let cases = [("kyb-clean.outputs.json", "decision: approved"), ("", "error: [expression] no such key: 'has_match'")]
        for (outputs, expected) in cases {
            var arguments = ["run", "kyb-onboarding", "--input", Repository.root.appendingPathComponent("fixtures/inputs/kyb-clean.json").path,
                             "--config", Repository.root.path]
            if !outputs.isEmpty { arguments += ["--outputs", Repository.root.appendingPathComponent("fixtures/inputs/\(outputs)").path] }
            let output = try await Binary.run(arguments)
            #expect(output.status == 0, "\(output.stderr)")
            #expect(output.stdout.contains(expected), "\(output.stdout)")
        }
    }
}
