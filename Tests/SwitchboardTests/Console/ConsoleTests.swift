import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// The console through the HTTP application: sign-in with an API key, a session cookie the server
/// can end, CSRF tokens on every form, pages and actions held to the scopes of their API routes,
/// and run data shown as text.
@Suite("Console", .timeLimit(.minutes(2)))
struct ConsoleTests {
    /// A browser of the console: its cookie, and the CSRF token of the last page it read.
    struct Browser {
        let api: APIClient
        var cookie: String?

        func get(_ path: String) async throws -> APIClient.Reply {
            var headers: HTTPFields = [:]
            if let cookie { headers[.cookie] = cookie }
            return try await api.request(.get, path, headers: headers, authenticated: false)
        }

        func post(_ path: String, _ fields: [(String, String)]) async throws -> APIClient.Reply {
            var headers: HTTPFields = [.contentType: "application/x-www-form-urlencoded"]
            if let cookie { headers[.cookie] = cookie }
            return try await api.request(.post, path, body: FormEncoding.encode(fields), headers: headers, authenticated: false)
        }

        mutating func signIn(_ key: String) async throws {
            let reply = try await post("/console/login", [("key", key)])
            #expect(reply.status == .seeOther, "\(reply.body)")
            let setCookie = try #require(reply.headers[.setCookie])
            cookie = String(setCookie.split(separator: ";")[0])
        }

        static func csrf(_ html: String) -> String? {
            html.firstMatch(of: /name="csrf_token" value="([0-9a-f]+)"/).map { String($0.1) }
        }
    }

    /// A gateway whose Slack alerts go to a loopback receiver that answers 200.
    static func withGateway(_ body: @escaping @Sendable (TestGateway, APIClient) async throws -> Void) async throws {
        let slack = TestReceiver(script: [TestReceiver.Answer(body: "ok")])
        try await slack.serve {
            let gateway = try await TestGateway(environment: ["SLACK_WEBHOOK_URL": slack.url + "/webhook"])
            try await gateway.test { api in try await body(gateway, api) }
        }
    }

    static func minor(_ api: APIClient, name: String = "Tim") async throws -> String {
        let event: JSON = ["specversion": "1.0", "id": .string("evt-\(UUID().uuidString)"), "source": "/persona", "type": "inquiry.completed",
                           "data": ["inquiry": ["id": "inq_console_1", "birthdate": "2012-06-01", "name_first": .string(name)]]]
        let answer = try await api.request(.post, "/v1/events", json: event).json
        let run = try #require(answer["runs"]?.array.first { $0["workflow"] == "review-minors" }?["id"]?.stringValue)
        _ = try await api.waitForRun(run) { $0.status == .waiting }
        return run
    }

    @Test("signing in: a wrong key gets 401 and an alert; a key opens a session cookie; pages without one lead to the sign-in")
    func signIn() async throws {
        try await Self.withGateway { gateway, api in
            var browser = Browser(api: api)
            #expect(try await browser.get("/").headers[.location] == "/console/runs")
            let closed = try await browser.get("/console/runs")
            #expect(closed.status == .seeOther && closed.headers[.location] == "/console/login")
            let form = try await browser.get("/console/login")
            #expect(form.status == .ok && form.body.contains(#"type="password""#) && form.body.contains(#"name="key""#))

            let wrong = try await browser.post("/console/login", [("key", "sk_wrong")])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.body.contains(#"role="alert""#))
            #expect(wrong.headers[.setCookie] == nil)

            let reply = try await browser.post("/console/login", [("key", gateway.apiKey)])
            let cookie = try #require(reply.headers[.setCookie])
            #expect(cookie.hasPrefix("switchboard_session=") && cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict")
                && cookie.contains("Max-Age=43200"))
            try await browser.signIn(gateway.apiKey)
            let runs = try await browser.get("/console/runs")
            #expect(runs.status == .ok && runs.body.contains("<h1>Runs</h1>"))
            #expect(try await browser.get("/console/assets/console.css").headers[.contentType] == "text/css; charset=utf-8")

            let audit = try await api.request(.get, "/v1/audit?action=console.sign_in").json["data"]?.array ?? []
            #expect(Set(audit.compactMap { $0["outcome"]?.stringValue }) == ["ok", "refused"])
            #expect(audit.contains { $0["actor"]?["kind"] == "console" && $0["actor"]?["name"] == "test" })
        }
    }

    @Test("a run's page shows its graph and steps and, while it waits, Approve and Decline; the decision needs the session's CSRF token")
    func reviewFromTheRunPage() async throws {
        try await Self.withGateway { gateway, api in
            let run = try await Self.minor(api)
            var browser = Browser(api: api)
            try await browser.signIn(gateway.apiKey)
            let page = try await browser.get("/console/runs/\(run)")
            #expect(page.status == .ok)
            #expect(page.body.contains(#"data-step="minor" data-status="completed""#), "the graph marks the run's path")
            #expect(page.body.contains(#"data-step="approve""#), "and shows the steps it did not reach")
            #expect(page.body.contains(">Approve</button>") && page.body.contains(">Decline</button>"))
            let csrf = try #require(Browser.csrf(page.body))

            // No token, or another session's: refused, nothing changes.
            #expect(try await browser.post("/console/runs/\(run)/review", [("decision", "approve")]).status == .forbidden)
            var other = Browser(api: api)
            try await other.signIn(gateway.apiKey)
            let otherToken = try #require(Browser.csrf(try await other.get("/console/runs").body))
            #expect(try await browser.post("/console/runs/\(run)/review", [("decision", "approve"), ("csrf_token", otherToken)]).status == .forbidden)
            #expect(try await api.request(.get, "/v1/runs/\(run)").json["status"] == "waiting")

            let decided = try await browser.post("/console/runs/\(run)/review", [("decision", "approve"), ("csrf_token", csrf)])
            #expect(decided.status == .seeOther && decided.headers[.location] == "/console/runs/\(run)")
            let done = try await api.waitUntilFinished(run)
            #expect(done["decision"] == "approved")
            let audit = try await api.request(.get, "/v1/audit?action=review.decided").json["data"]?.array ?? []
            #expect(audit.first?["actor"]?["kind"] == "console")

            // Signing out ends the session on the server.
            #expect(try await browser.post("/console/logout", [("csrf_token", csrf)]).headers[.location] == "/console/login")
            #expect(try await browser.get("/console/runs").headers[.location] == "/console/login")
        }
    }

    @Test("a key without reviews:write sees no Approve button and its posted decision is refused")
    func scopes() async throws {
        try await Self.withGateway { gateway, api in
            let run = try await Self.minor(api)
            let reader = APIKeys.generate()
            try await gateway.store.createAPIKey(APIKeyRecord(name: "reader", hash: APIKeys.hash(reader), scopes: ["runs:read"], createdAt: Date()))
            var browser = Browser(api: api)
            try await browser.signIn(reader)
            let page = try await browser.get("/console/runs/\(run)")
            #expect(page.status == .ok)
            #expect(!page.body.contains(">Approve</button>"))
            #expect(page.body.contains("lacks the scope reviews:write"))
            let csrf = try #require(Browser.csrf(page.body))
            #expect(try await browser.post("/console/runs/\(run)/review", [("decision", "approve"), ("csrf_token", csrf)]).status == .forbidden)
            #expect(try await api.request(.get, "/v1/runs/\(run)").json["status"] == "waiting")

            let nothing = APIKeys.generate()
            try await gateway.store.createAPIKey(APIKeyRecord(name: "lists-only", hash: APIKeys.hash(nothing), scopes: ["lists:read"], createdAt: Date()))
            var other = Browser(api: api)
            try await other.signIn(nothing)
            #expect(try await other.get("/console/runs").status == .forbidden)
        }
    }

    @Test("run and event data are shown as text: a name that is a script stays text")
    func escaping() async throws {
        try await Self.withGateway { gateway, api in
            let run = try await Self.minor(api, name: "<script>alert(1)</script>")
            var browser = Browser(api: api)
            try await browser.signIn(gateway.apiKey)
            for path in ["/console/reviews", "/console/runs/\(run)"] {
                let page = try await browser.get(path)
                #expect(page.status == .ok, "\(path)")
                #expect(!page.body.contains("<script>alert(1)</script>"), "\(path) shows the name as text")
            }
            let reviews = try await browser.get("/console/reviews")
            #expect(reviews.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
            #expect(reviews.body.contains(run))
            #expect(reviews.body.contains("<dt>Reason</dt><dd>under 18</dd>"), "the review alert's facts are listed")
        }
    }

    @Test("runs are found by a workflow's search field, by event id and by time; other fields are refused with the ones that work")
    func search() async throws {
        try await Self.withGateway { gateway, api in
            let run = try await Self.minor(api)
            var browser = Browser(api: api)
            try await browser.signIn(gateway.apiKey)
            let found = try await browser.get("/console/runs?" + FormEncoding.encode([("q", "data.inquiry.id=inq_console_1")]))
            #expect(found.status == .ok && found.body.contains(run))
            let none = try await browser.get("/console/runs?" + FormEncoding.encode([("q", "data.inquiry.id=inq_other")]))
            #expect(!none.body.contains(run) && none.body.contains("No runs match."))

            let undeclared = try await browser.get("/console/runs?" + FormEncoding.encode([("q", "data.inquiry.name_first=Tim")]))
            #expect(undeclared.body.contains("Runs are not found by data.inquiry.name_first"))
            #expect(undeclared.body.contains("data.inquiry.id") && !undeclared.body.contains(run))

            let event = try #require(try await api.request(.get, "/v1/runs/\(run)").json["trigger"]?["event_id"]?.stringValue)
            let byEvent = try await browser.get("/console/runs?q=\(event)")
            #expect(byEvent.body.contains(run))

            let day = try await browser.get("/console/runs?" + FormEncoding.encode([("since", Date().addingTimeInterval(-3600).rfc3339)]))
            #expect(day.body.contains(run))
            let before = try await browser.get("/console/runs?until=2020-01-01")
            #expect(before.status == .ok && !before.body.contains(run))
            let bad = try await browser.get("/console/runs?since=yesterday")
            #expect(bad.body.contains("since must be a time") && bad.body.contains(run), "a bad time is named and not applied")
        }
    }
}

/// The console's deliveries: the log filtered, each attempt's request and response, a curl command
/// without secrets, a retry of one, and "Retry all" that counts and asks first.
@Suite("Console: deliveries", .timeLimit(.minutes(2)))
struct ConsoleDeliveryTests {
    @Test("a delivery that failed against a 500 is retried from the console after the receiver recovers; retry all counts first")
    func retry() async throws {
        let receiver = TestReceiver(script: [TestReceiver.Answer(status: 500), TestReceiver.Answer(status: 500), TestReceiver.Answer(status: 200)])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try directory.write("connectors/crm.yaml", """
                id: crm
                kind: http
                base_url: \(receiver.url)
                auth: { bearer: "crm-token-secret" }
                signing: off
                allow_networks: [ 127.0.0.0/8 ]
                retry: { max_attempts: 1 }
                operations:
                  notify: { method: POST, path: /hook, body: "= input" }
                """)
            try directory.write("workflows/notify.yaml", """
                id: notify
                trigger: { api: { input: { ref: { type: string } } } }
                steps:
                  - { id: tell, connector: crm, operation: notify }
                """)
            let gateway = try await TestGateway(configurationDirectory: directory.path)
            try await gateway.test { api in
                var runs: [String] = []
                for ref in ["a", "b"] {
                    let run = try #require(try await api.request(.post, "/v1/workflows/notify/runs", json: ["ref": .string(ref)]).json["id"]?.stringValue)
                    #expect(try await api.waitUntilFinished(run)["status"] == "failed")
                    runs.append(run)
                }
                var browser = ConsoleTests.Browser(api: api)
                try await browser.signIn(gateway.apiKey)
                let list = try await browser.get("/console/deliveries?status=dead")
                #expect(list.status == .ok)
                let ids = list.body.matches(of: /href="\/console\/deliveries\/(dlv_[0-9A-Z]+)"/).map { String($0.1) }
                #expect(ids.count == 2, "\(list.body)")
                let csrf = try #require(ConsoleTests.Browser.csrf(list.body))

                let detail = try await browser.get("/console/deliveries/\(ids[0])")
                #expect(detail.body.contains("curl -X POST"))
                #expect(detail.body.contains("••••") && !detail.body.contains("crm-token-secret"), "no secret in the curl command")
                #expect(detail.body.contains(#"data-attempt="1""#))

                // The receiver answers 200 from now on (its script's last answer): retry one.
                receiver.setScript([TestReceiver.Answer(status: 200)])
                let retried = try await browser.post("/console/deliveries/\(ids[0])/retry", [("csrf_token", csrf)])
                #expect(retried.status == .seeOther)
                let done = try await api.waitUntilFinished(runs.first { run in detail.body.contains(run) } ?? runs[1])
                #expect(done["status"] == "completed")
                let after = try await browser.get("/console/deliveries/\(ids[0])")
                #expect(after.body.contains(#"data-attempt="2""#), "the new attempt is shown")

                // A time filter: none of the dead ones is from before 2020; a bad time is named.
                let old = try await browser.post("/console/deliveries/retry", [("csrf_token", csrf), ("status", "dead"), ("until", "2020-01-01")])
                #expect(old.body.contains("Retry 0 deliveries?") && old.body.contains("until 2020-01-01"), "\(old.body)")
                let listed = try await browser.get("/console/deliveries?status=dead&since=2020-01-01T00:00")
                #expect(listed.body.contains(ids[1]) && !listed.body.contains("not applied"))
                #expect(try await browser.get("/console/deliveries?since=soon").body.contains("since must be a time"))

                // Retry all: the count first, nothing sent; then sent on confirming.
                let asked = try await browser.post("/console/deliveries/retry", [("csrf_token", csrf), ("status", "dead")])
                #expect(asked.status == .ok && asked.body.contains("Retry 1 deliveries?"), "\(asked.body)")
                #expect(try await api.request(.get, "/v1/deliveries?status=dead").json["data"]?.array.count == 1)
                let confirmed = try await browser.post("/console/deliveries/retry", [("csrf_token", csrf), ("status", "dead"), ("confirm", "1")])
                #expect(confirmed.status == .seeOther)
                for run in runs { #expect(try await api.waitUntilFinished(run)["status"] == "completed") }
                #expect(try await browser.post("/console/deliveries/retry", [("status", "dead")]).status == .forbidden, "no CSRF token")
            }
        }
    }
}

/// The console's other pages: workflows (graph, source, versions), lists (add and remove),
/// connectors and the audit log.
@Suite("Console: workflows, lists, connectors, audit", .timeLimit(.minutes(2)))
struct ConsolePagesTests {
    @Test("every page answers for a key with every scope; a list's item is added and removed; a bad item is refused with a message")
    func pages() async throws {
        try await ConsoleTests.withGateway { gateway, api in
            try await gateway.seedBlockedIPs()
            var browser = ConsoleTests.Browser(api: api)
            try await browser.signIn(gateway.apiKey)
            for path in ["/console/runs", "/console/reviews", "/console/deliveries", "/console/workflows", "/console/workflows/review-minors",
                         "/console/lists", "/console/lists/blocked-ips", "/console/connectors", "/console/audit"] {
                let page = try await browser.get(path)
                #expect(page.status == .ok, "\(path): \(page.status)")
                #expect(page.body.contains("<main>") && page.body.contains("Sign out"), "\(path)")
            }
            let workflow = try await browser.get("/console/workflows/review-minors").body
            #expect(workflow.contains(#"data-step="review""#) && workflow.contains("v1 (current)") && workflow.contains("wait: review"))

            let listPage = try await browser.get("/console/lists/blocked-ips").body
            let csrf = try #require(ConsoleTests.Browser.csrf(listPage))
            #expect(listPage.contains(">Add</button>") && listPage.contains(">Remove</button>"))
            #expect(try await browser.post("/console/lists/blocked-ips/items", [("csrf_token", csrf), ("item", "192.0.2.77")]).status == .seeOther)
            #expect(try await api.request(.get, "/v1/lists/blocked-ips").json["items"]?.array.contains("192.0.2.77") == true)
            let refused = try await browser.post("/console/lists/blocked-ips/items", [("csrf_token", csrf), ("item", "<b>not an ip</b>")])
            #expect(refused.status == .unprocessableContent && refused.body.contains(#"role="alert""#))
            #expect(refused.body.contains("&lt;b&gt;not an ip&lt;/b&gt;"))
            #expect(try await browser.post("/console/lists/blocked-ips/remove", [("csrf_token", csrf), ("item", "192.0.2.77")]).status == .seeOther)
            #expect(try await api.request(.get, "/v1/lists/blocked-ips").json["items"]?.array.contains("192.0.2.77") == false)
            let audit = try await browser.get("/console/audit?action=list.items_added").body
            #expect(audit.contains("console:test") && audit.contains("list:blocked-ips"))

            let tested = try await browser.post("/console/connectors/kyb/test", [("csrf_token", csrf)])
            #expect(tested.status == .ok && tested.body.contains(#"role="status""#))

            // A key without admin is kept out of the audit log.
            let reader = APIKeys.generate()
            try await gateway.store.createAPIKey(APIKeyRecord(name: "reader", hash: APIKeys.hash(reader), scopes: ["runs:read", "lists:read"],
                                                              createdAt: Date()))
            var other = ConsoleTests.Browser(api: api)
            try await other.signIn(reader)
            #expect(try await other.get("/console/audit").status == .forbidden)
            #expect(!(try await other.get("/console/lists/blocked-ips").body.contains(">Add</button>")))
        }
    }
}
