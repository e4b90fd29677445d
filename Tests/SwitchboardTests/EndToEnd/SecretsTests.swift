import AsyncHTTPClient
import CEL
import Foundation
import GRDB
import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import Testing
@testable import Switchboard

/// Secrets from the configuration never leave the gateway except in the requests they sign or
/// authenticate: a `switchboard serve` process whose every connector kind (http, slack, kyb,
/// source) has known secret values does everything it can with them, and then nothing it logged,
/// answered, exposed in `/metrics` or stored contains any of them.
@Suite("Secrets stay secret", .timeLimit(.minutes(3)))
struct SecretsTests {
    /// Each secret the configuration holds, by the environment variable that carries it.
    static let secrets: [String: String] = [
        "KYB_API_KEY": "kyb-apikey-S3CRET-a1b2c3",
        "KYB_CALLBACK_SECRET": "whsec_" + Data("kyb-callback-S3CRET-d4e5f6".utf8).base64EncodedString(),
        "SLACK_SIGNING_SECRET": "slack-signing-S3CRET-g7h8i9",
        "SLACK_BOT_TOKEN": "xoxb-bot-S3CRET-j1k2l3",
        "PERSONA_WEBHOOK_SECRET": "wbhsec_persona-S3CRET-m4n5o6",
        "CRM_TOKEN": "crm-bearer-S3CRET-p7q8r9",
        "CRM_SIGNING_SECRET": "whsec_" + Data("crm-signing-S3CRET-s1t2u3".utf8).base64EncodedString(),
        "SWITCHBOARD_SECRET_KEY": "gateway-key-S3CRET-v4w5x6",
    ]

    /// What is searched for: each secret as configured, and the bytes a `whsec_` secret stands for.
    static var needles: [String: String] {
        var needles = secrets
        for (name, value) in secrets where value.hasPrefix("whsec_") {
            needles[name + " (decoded)"] = String(decoding: Data(base64Encoded: String(value.dropFirst(6)))!, as: UTF8.self)
        }
        return needles
    }

    @Test("logs, API answers, /metrics, validate's output and the database hold no secret after every connector kind used them")
    func nothingLeaks() async throws {
        let directory = try TemporaryDirectory()
        for folder in ["connectors", "workflows"] {
            try FileManager.default.copyItem(atPath: Repository.root.appendingPathComponent(folder).path, toPath: directory.file(folder))
        }
        let receiver = TestReceiver(script: [TestReceiver.Answer(status: 500), TestReceiver.Answer(status: 200)])
        try await receiver.serve {
            try directory.write("connectors/crm.yaml", """
                id: crm
                kind: http
                base_url: \(receiver.url)
                auth: { bearer: "${CRM_TOKEN}" }
                signing: { secret: "${CRM_SIGNING_SECRET}" }
                allow_networks: [ 127.0.0.0/8 ]
                retry: { max_attempts: 1 }
                operations:
                  notify: { method: POST, path: /hooks/identity, body: "= event.data" }
                """)
            try directory.write("workflows/notify-crm.yaml", """
                id: notify-crm
                trigger: { event: com.example.crm }
                steps:
                  - id: tell
                    connector: crm
                    operation: notify
                  - id: done
                    action: approve
                """)
            try await Self.exercise(directory: directory, receiver: receiver)
        }
    }

    static func exercise(directory: TemporaryDirectory, receiver: TestReceiver) async throws {
        let gatewayPort = try freePort(), sandboxPort = try freePort()
        var settings = SandboxSettings()
        settings.port = sandboxPort
        settings.gatewayURL = "http://127.0.0.1:\(gatewayPort)"
        settings.callbackDelay = .milliseconds(50)
        settings.apiKey = secrets["KYB_API_KEY"]!
        settings.callbackSecret = secrets["KYB_CALLBACK_SECRET"]!
        settings.slackSigningSecret = secrets["SLACK_SIGNING_SECRET"]!
        settings.slackBotToken = secrets["SLACK_BOT_TOKEN"]!
        settings.personaWebhookSecret = secrets["PERSONA_WEBHOOK_SECRET"]!
        settings.personaFixtures = Repository.root.appendingPathComponent("fixtures/sources/persona").path
        var quiet = Logger(label: "sandbox")
        quiet.logLevel = .critical
        let sandbox = Sandbox(settings: settings, logger: quiet).buildApplication { _ in }

        var environment = secrets
        environment["KYB_BASE_URL"] = "\(settings.baseURL)/kyb"
        environment["SLACK_API_BASE_URL"] = "\(settings.baseURL)/slack/api"
        environment["SLACK_CHANNEL"] = "reviews"
        environment["SWITCHBOARD_TEST_SERVER_LOG_LEVEL"] = nil
        let database = directory.file("switchboard.sqlite")
        let apiKey = APIKeys.generate()
        let store = try SQLiteStore(path: database)
        try await store.migrate()
        try await store.createAPIKey(APIKeyRecord(name: "secrets", hash: APIKeys.hash(apiKey), scopes: APIKeys.allScopes, createdAt: Date()))

        let server = try ServerProcess(config: directory.path, database: "sqlite:\(database)", extraEnvironment: environment,
                                       arguments: ["--port", String(gatewayPort), "--log-level", "trace"])
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let answers = AnswerLog()
        var failure: (any Error)?
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await sandbox.runService() }
                try await server.waitUntilListening()
                let api = LiveClient(client: client, base: "http://127.0.0.1:\(gatewayPort)", apiKey: apiKey)
                try await useEverySecret(api: api, client: client, sandboxURL: settings.baseURL, receiver: receiver, answers: answers)
                group.cancelAll()
            }
        } catch is CancellationError {
        } catch {
            failure = error
        }
        server.kill(signal: SIGTERM)
        #expect(await server.waitForExit() == 0)
        try await client.shutdown()
        if let failure { throw failure }

        var validate = environment
        validate["SWITCHBOARD_CONFIG"] = directory.path
        let validated = try await Binary.run(["validate", "--config", directory.path], environment: validate)
        #expect(validated.status == 0, "\(validated.stderr)")

        let places: [(String, String)] = [
            ("the gateway's log", server.log),
            ("the API's answers", answers.text),
            ("validate's output", validated.stdout + validated.stderr),
            ("the database", try databaseDump(database)),
        ]
        let logged = server.log.count
        #expect(logged > 10_000, "the trace log is too short to mean anything: \(logged) characters")
        for (place, text) in places {
            for (name, value) in needles.merging(["the API key": apiKey]) { old, _ in old } {
                let found = text.contains(value)
                #expect(!found, "\(name) appears in \(place)")
            }
        }
    }

    /// Every path on which a secret is used: outbound calls authenticated with one (KYB, Slack's
    /// API, the CRM), requests signed with one (CRM webhooks, Slack buttons), inbound signatures
    /// checked with one (KYB callbacks, Slack clicks, Persona webhooks), refusals of forged ones,
    /// connector checks; then every read the API offers.
    static func useEverySecret(api: LiveClient, client: HTTPClient, sandboxURL: String, receiver: TestReceiver,
                               answers: AnswerLog) async throws {
        func call(_ method: HTTPMethod, _ path: String, json: JSON? = nil) async throws -> JSON {
            let (status, body) = try await api.request(method, path, json: json)
            answers.add("\(method) \(path) \(status) \(body.text)")
            return body
        }
        func sandboxPost(_ path: String, _ json: JSON) async throws -> JSON {
            var request = HTTPClientRequest(url: sandboxURL + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: json.encoded()))
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = try JSON.parse(Data(buffer: try await response.body.collect(upTo: 1 << 20)))
            answers.add("sandbox \(path) \(body.text)")
            return body
        }
        func raw(_ path: String, headers: [(String, String)], body: String) async throws {
            var request = HTTPClientRequest(url: api.base + path)
            request.method = .POST
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(string: body))
            let response = try await client.execute(request, timeout: .seconds(10))
            let text = String(buffer: try await response.body.collect(upTo: 1 << 20))
            answers.add("POST \(path) \(response.status.code) \(text)")
            #expect(response.status.code == 401, "\(path): \(text)")
        }

        // Example 1 and 2's events, a minor's alert through Slack's API and a signed click.
        var runs: [String] = []
        var minorRun: String?
        for name in ["inquiry-minor.json", "inquiry-adult.json", "inquiry-blocked-ipv6.json"] {
            let answer = try await call(.POST, "/v1/events", json: try Repository.fixture("events/\(name)"))
            for run in answer["runs"]?.arrayValue ?? [] {
                guard let id = run["id"]?.stringValue else { continue }
                runs.append(id)
                if name == "inquiry-minor.json", run["workflow"] == "review-minors" { minorRun = id }
            }
        }
        let minor = try #require(minorRun, "runs: \(runs)")
        var message: JSON?
        for _ in 0 ..< 200 where message == nil {
            var request = HTTPClientRequest(url: sandboxURL + "/slack/messages")
            request.method = .GET
            let response = try await client.execute(request, timeout: .seconds(5))
            let messages = try JSON.parse(Data(buffer: try await response.body.collect(upTo: 4 << 20)))["data"]?.arrayValue ?? []
            message = messages.first
            if message == nil { try await Sleep.for(.milliseconds(50)) }
        }
        let ts = try #require(message?["ts"]?.stringValue, "no Slack message arrived")
        let click = try await sandboxPost("/slack/messages/\(ts)/click", ["action_id": "approve", "user": "ana"])
        #expect(click["gateway_status"] == 200, "\(click)")
        #expect(try await api.poll(run: minor) { $0["status"] == "completed" }["decision"] == "approved")

        // Example 3: four vendor reports with the API key, answered by signed callbacks.
        let kyb = try await call(.POST, "/v1/workflows/kyb-onboarding/runs", json: try Repository.fixture("inputs/kyb-clean.json"))
        let kybRun = try #require(kyb["id"]?.stringValue)
        #expect(try await api.poll(run: kybRun, timeout: 30) { $0["status"] == "completed" }["decision"] == "approved")

        // Persona's signed webhooks.
        let persona = try await sandboxPost("/persona/send", ["fixture": "inquiry-completed-minor.json"])
        #expect(persona["gateway_status"] == 202, "\(persona)")

        // The CRM: a bearer token and a signature; the first attempt fails, a retry succeeds.
        let crm = try await call(.POST, "/v1/events", json: ["specversion": "1.0", "id": "crm-1", "source": "/test", "type": "com.example.crm",
                                                             "data": ["inquiry": "inq_1"]])
        let crmRun = try #require(crm["runs"]?.arrayValue?.first?["id"]?.stringValue)
        let failed = try await api.poll(run: crmRun) { $0["status"] == "failed" }
        let delivery = try #require(failed["steps"]?.arrayValue?.first?["delivery_id"]?.stringValue, "\(failed)")
        _ = try await call(.POST, "/v1/deliveries/\(delivery)/retry")
        #expect(try await api.poll(run: crmRun) { $0["status"] == "completed" }["status"] == "completed")
        #expect(receiver.received.first { $0.method == "POST" }?.headers["Authorization"] == "Bearer \(secrets["CRM_TOKEN"]!)", "the token was sent")

        // Forged requests, refused: their refusals are recorded and must not echo a secret either.
        let body = #"{"data": {"id": "evt_forged"}}"#
        do {
            try await raw("/v1/callbacks/kyb", headers: [("webhook-id", "msg_1"), ("webhook-timestamp", String(Int(Date().timeIntervalSince1970))),
                                                         ("webhook-signature", "v1,Zm9yZ2Vk")], body: body)
            try await raw("/v1/sources/persona", headers: [("Persona-Signature", "t=\(Int(Date().timeIntervalSince1970)),v1=00")], body: body)
            try await raw("/v1/slack/interactions", headers: [("X-Slack-Request-Timestamp", String(Int(Date().timeIntervalSince1970))),
                                                              ("X-Slack-Signature", "v0=00")], body: "payload=%7B%7D")
            try await raw("/v1/events", headers: [("Authorization", "Bearer \(secrets["CRM_TOKEN"]!)")], body: body)
        }

        // Live checks of every connector, then every read.
        for connector in ["crm", "kyb", "slack-reviews", "persona-events"] {
            _ = try await call(.POST, "/v1/connectors/\(connector)/test")
        }
        for path in ["/v1/connectors", "/v1/workflows", "/v1/runs?limit=500", "/v1/deliveries?limit=500", "/v1/callbacks?limit=500",
                     "/v1/audit", "/v1/lists", "/v1/instances", "/openapi.json", "/v1/workflows/kyb-onboarding"] {
            _ = try await call(.GET, path)
        }
        for run in runs + [kybRun, crmRun] { _ = try await call(.GET, "/v1/runs/\(run)") }
        let deliveries = try await call(.GET, "/v1/deliveries?limit=500")["data"]?.arrayValue ?? []
        #expect(deliveries.count >= 7, "deliveries: \(deliveries.count)")
        for delivery in deliveries {
            if let id = delivery["id"]?.stringValue { _ = try await call(.GET, "/v1/deliveries/\(id)") }
        }
        var metrics = HTTPClientRequest(url: api.base + "/metrics")
        metrics.method = .GET
        let response = try await client.execute(metrics, timeout: .seconds(5))
        answers.add("GET /metrics " + String(buffer: try await response.body.collect(upTo: 4 << 20)))
    }

    /// Every value of every row of every table, as text, and the raw bytes of the database's files
    /// (which hold deleted rows and the write-ahead log too).
    static func databaseDump(_ path: String) throws -> String {
        var dump = ""
        let queue = try DatabaseQueue(path: path)
        try queue.read { db in
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            for table in tables {
                for row in try Row.fetchAll(db, sql: "SELECT * FROM \"\(table)\"") {
                    for (column, value) in row {
                        let text: String = switch value.storage {
                        case let .string(string): string
                        case let .blob(data): String(decoding: data, as: UTF8.self)
                        default: value.description
                        }
                        dump += "\(table).\(column)=\(text)\n"
                    }
                }
            }
        }
        try queue.close()
        for suffix in ["", "-wal"] {
            if let data = FileManager.default.contents(atPath: path + suffix) { dump += String(decoding: data, as: UTF8.self) }
        }
        #expect(dump.contains("kyb-onboarding"), "the dump holds the runs")
        return dump
    }

    /// Every answer the API gave, in order.
    final class AnswerLog: Sendable {
        private let lines = Mutex<[String]>([])
        func add(_ line: String) { lines.withLock { $0.append(line) } }
        var text: String { lines.withLock { $0.joined(separator: "\n") } }
    }
}
