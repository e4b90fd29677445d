import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// Event sources: signed webhooks at POST /v1/sources/{id} become events. Signatures are made by
/// libraries we did not write (the Python `standardwebhooks` and `slack_sdk` packages, Python's
/// `hmac` for the two plain HMAC schemes), then taken apart one way at a time, on the sources'
/// route and on the callbacks' (`POST /v1/callbacks/{id}`), which check signatures the same way.
@Suite("Event sources: signed webhooks become events", .timeLimit(.minutes(3)))
struct EventSourceTests {
    /// Each scheme's connector: its name, its two secrets (a rotation) and its signature header.
    struct Scheme: Sendable, CustomTestStringConvertible {
        var name: String
        var secrets: [String]
        var header: String
        var timestamped: Bool { name != "hmac-sha256" }
        var testDescription: String { name }
        var connector: String { "src-" + name }
        /// The http connector that takes callbacks signed by this scheme.
        var callbackConnector: String { "cb-" + name }
    }

    /// The two routes that take signed requests from outside.
    enum Endpoint: String, Sendable, CaseIterable, CustomTestStringConvertible {
        case sources, callbacks
        var testDescription: String { "/v1/\(rawValue)" }
        func connector(_ scheme: Scheme) -> String { self == .sources ? scheme.connector : scheme.callbackConnector }
        /// How a valid request is recorded at GET /v1/callbacks: an event ingested, or a callback
        /// kept for its step.
        var acceptedStatus: String { self == .sources ? "accepted" : "pending" }
    }

    static let schemes = [
        Scheme(name: "standard-webhooks", secrets: ["whsec_Zmlyc3Qtc291cmNlLXNlY3JldA==", "whsec_c2Vjb25kLXNvdXJjZS1zZWNyZXQ="],
               header: "webhook-signature"),
        Scheme(name: "slack-v0", secrets: ["first-slack-secret", "second-slack-secret"], header: "X-Slack-Signature"),
        Scheme(name: "timestamped-hmac", secrets: ["wbhsec_first", "wbhsec_second"], header: "X-Source-Signature"),
        Scheme(name: "hmac-sha256", secrets: ["first-hmac-secret", "second-hmac-secret"], header: "X-Hub-Signature-256"),
    ]

    /// A configuration with one source connector per scheme and a workflow its events start.
    static func configuration() throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        for scheme in schemes {
            try directory.write("connectors/\(scheme.connector).yaml", """
                id: \(scheme.connector)
                kind: source
                scheme: \(scheme.name)
                header: \(scheme.header)
                secrets: [ "\(scheme.secrets[0])", "\(scheme.secrets[1])" ]
                event:
                  id: body.id
                  type: "'source.test'"
                  source: "'\(scheme.connector)'"
                  data: "{'n': body.n, 'missing': has(body.absent) ? body.absent : null}"
                """)
            try directory.write("connectors/\(scheme.callbackConnector).yaml", """
                id: \(scheme.callbackConnector)
                kind: http
                base_url: http://127.0.0.1:9
                signing: off
                callbacks:
                  scheme: \(scheme.name)
                  header: \(scheme.header)
                  secrets: [ "\(scheme.secrets[0])", "\(scheme.secrets[1])" ]
                  correlation: body.id
                  message_id: body.id
                """)
        }
        try directory.write("workflows/sourced.yaml", """
            id: sourced
            trigger: { event: source.test }
            steps:
              - { id: mark, action: tag, with: { tag: "sourced" } }
            """)
        return directory
    }

    /// One request to sign, and the headers Python signed it with.
    struct Signing: Sendable {
        var secret: String
        var body: String
        var timestamp: Int64
        var messageID: String
    }

    /// Signs every request with the published libraries (one Python process for all).
    static func sign(_ scheme: Scheme, _ requests: [Signing]) async throws -> [HTTPFields] {
        let script = """
            import sys, json, hmac, hashlib, datetime
            scheme, header, jobs = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
            out = []
            for job in jobs:
                secret, body, ts, msg_id = job["secret"], job["body"], str(job["timestamp"]), job["id"]
                if scheme == "standard-webhooks":
                    import standardwebhooks
                    when = datetime.datetime.fromtimestamp(int(ts), tz=datetime.timezone.utc)
                    signature = standardwebhooks.Webhook(secret).sign(msg_id, when, body)
                    out.append([["webhook-id", msg_id], ["webhook-timestamp", ts], ["webhook-signature", signature]])
                elif scheme == "slack-v0":
                    from slack_sdk.signature import SignatureVerifier
                    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
                    out.append([["X-Slack-Request-Timestamp", ts], ["X-Slack-Signature", signature]])
                elif scheme == "timestamped-hmac":
                    digest = hmac.new(secret.encode(), (ts + "." + body).encode(), hashlib.sha256).hexdigest()
                    out.append([[header, "t=" + ts + ",v1=" + digest]])
                else:
                    out.append([[header, "sha256=" + hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()]])
            print(json.dumps(out))
            """
        let jobs: JSON = .array(requests.map { ["secret": .string($0.secret), "body": .string($0.body),
                                                 "timestamp": .number(Double($0.timestamp)), "id": .string($0.messageID)] })
        let (status, output) = try await SignatureTests.python(script, scheme.name, scheme.header, jobs.text)
        try #require(status == 0, "python: \(output) (scripts/install-dependencies installs standardwebhooks and slack_sdk)")
        return try JSON.parse(output).array.map { pairs in
            var fields: HTTPFields = [.contentType: "application/json"]
            for pair in pairs.array { fields[HTTPField.Name(pair.array[0].stringValue!)!] = pair.array[1].stringValue! }
            return fields
        }
    }

    @Test("each scheme: both secrets of a rotation accepted; a wrong secret, a changed body or timestamp, a stale or future timestamp, a missing or malformed header and a replay refused with 401, recorded, nothing ingested",
          arguments: schemes, Endpoint.allCases)
    func refusals(_ scheme: Scheme, _ endpoint: Endpoint) async throws {
        let directory = try Self.configuration()
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        let now = Int64(Date().timeIntervalSince1970)
        @Sendable func body(_ n: Int) -> String { #"{"id":"evt-\#(scheme.name)-\#(n)","n":\#(n)}"# }
        let wrongSecret = scheme.name == "standard-webhooks" ? "whsec_bm90LXRoZS1zZWNyZXQ=" : "not-the-secret"
        var jobs = [Signing(secret: scheme.secrets[0], body: body(1), timestamp: now, messageID: "msg_1"),
                    Signing(secret: scheme.secrets[1], body: body(2), timestamp: now, messageID: "msg_2"),
                    Signing(secret: wrongSecret, body: body(3), timestamp: now, messageID: "msg_3")]
        if scheme.timestamped {
            jobs.append(Signing(secret: scheme.secrets[0], body: body(4), timestamp: now - 600, messageID: "msg_4"))
            jobs.append(Signing(secret: scheme.secrets[0], body: body(5), timestamp: now + 600, messageID: "msg_5"))
        }
        let signed = try await Self.sign(scheme, jobs)
        let connector = endpoint.connector(scheme)
        let path = "/v1/\(endpoint.rawValue)/\(connector)"
        try await gateway.test { api in
            func post(_ body: String, _ headers: HTTPFields) async throws -> APIClient.Reply {
                try await api.request(.post, path, body: body, headers: headers, authenticated: false)
            }
            let first = try await post(body(1), signed[0])
            #expect(first.status == .accepted, "\(first.body)")
            if endpoint == .sources { #expect(first.json["runs"]?.array.first?["workflow"] == "sourced") }
            let second = try await post(body(2), signed[1])
            #expect(second.status == .accepted, "the second secret of a rotation: \(second.body)")

            var refused: [(String, APIClient.Reply)] = []
            refused.append(("wrong secret", try await post(body(3), signed[2])))
            refused.append(("changed body", try await post(body(1).replacingOccurrences(of: "\"n\":1", with: "\"n\":7"), signed[0])))
            if scheme.timestamped {
                refused.append(("stale timestamp", try await post(body(4), signed[3])))
                refused.append(("future timestamp", try await post(body(5), signed[4])))
                var moved = signed[1]
                let later = String(now + 1)
                switch scheme.name {
                case "standard-webhooks": moved[HTTPField.Name("webhook-timestamp")!] = later
                case "slack-v0": moved[HTTPField.Name("X-Slack-Request-Timestamp")!] = later
                default:
                    let value = moved[HTTPField.Name(scheme.header)!]!
                    moved[HTTPField.Name(scheme.header)!] = value.replacingOccurrences(of: "t=\(now)", with: "t=\(later)")
                }
                refused.append(("changed timestamp", try await post(body(2), moved)))
            }
            var missing = signed[0]
            missing[HTTPField.Name(scheme.header)!] = nil
            refused.append(("missing header", try await post(body(1), missing)))
            var malformed = signed[0]
            malformed[HTTPField.Name(scheme.header)!] = "v9=not hex at all"
            refused.append(("malformed header", try await post(body(1), malformed)))
            for (what, reply) in refused {
                #expect(reply.status == .unauthorized, "\(what): \(reply.status) \(reply.body)")
                #expect(reply.headers[.contentType] == "application/problem+json", "\(what)")
            }
            let replay = try await post(body(1), signed[0])
            #expect(replay.status == .unauthorized, "a replay: \(replay.body)")
            #expect(replay.body.contains("received before"))

            let runs = try await api.request(.get, "/v1/runs?workflow=sourced").json["data"]?.array ?? []
            #expect(runs.count == (endpoint == .sources ? 2 : 0), "only the two valid requests started runs")
            let recorded = try await api.request(.get, "/v1/callbacks?connector=\(connector)&limit=100").json["data"]?.array ?? []
            let statuses = recorded.compactMap { $0["status"]?.stringValue }
            #expect(statuses.filter { $0 == endpoint.acceptedStatus }.count == 2, "\(statuses)")
            #expect(statuses.filter { $0 == "rejected" }.count == refused.count, "every refusal recorded: \(statuses)")
            #expect(statuses.filter { $0 == "replayed" }.count == 1)
            #expect(!recorded.map(\.text).joined().contains(scheme.secrets[0]), "no secret in the record")
        }
    }

    @Test("a body the mapping cannot read gets 422 naming the expression; an unknown source 404; a null member is left out")
    func unreadable() async throws {
        let directory = try Self.configuration()
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        let scheme = Self.schemes[3]
        let now = Int64(Date().timeIntervalSince1970)
        let bodies = [#"{"n": 1}"#, "not json", #"{"id": "evt-ok", "n": 2}"#]
        let signed = try await Self.sign(scheme, bodies.map { Signing(secret: scheme.secrets[0], body: $0, timestamp: now, messageID: "m") })
        try await gateway.test { api in
            let noID = try await api.request(.post, "/v1/sources/\(scheme.connector)", body: bodies[0], headers: signed[0], authenticated: false)
            #expect(noID.status == .unprocessableContent, "\(noID.body)")
            #expect(noID.json["errors"]?.array.first?["path"] == "event.id")
            let notJSON = try await api.request(.post, "/v1/sources/\(scheme.connector)", body: bodies[1], headers: signed[1], authenticated: false)
            #expect(notJSON.status == .unprocessableContent)
            #expect(notJSON.json["errors"]?.array.first?["path"] == "body")
            let unknown = try await api.request(.post, "/v1/sources/nobody", body: bodies[2], headers: signed[2], authenticated: false)
            #expect(unknown.status == .notFound)
            let ok = try await api.request(.post, "/v1/sources/\(scheme.connector)", body: bodies[2], headers: signed[2], authenticated: false)
            #expect(ok.status == .accepted, "\(ok.body)")
            let run = try #require(ok.json["runs"]?.array.first?["id"]?.stringValue)
            let snapshot = try #require(try await gateway.store.loadRun(RunID(run)))
            let data = snapshot.run.event?["data"]
            #expect(data == ["n": 2], "the null member is left out: \(data?.text ?? "nil")")
            let invalid = try await api.request(.get, "/v1/callbacks?connector=\(scheme.connector)&status=invalid").json["data"]?.array ?? []
            #expect(invalid.count == 2)
        }
    }

    @Test("Persona: every recorded webhook, signed as Persona signs, gives the decision the examples promise")
    func persona() async throws {
        let gateway = try await TestGateway()
        try await gateway.seedBlockedIPs()
        let folder = Repository.root.appendingPathComponent("fixtures/sources/persona")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".json") }.sorted()
        #expect(names.count == 6)
        let bodies = try names.map { try String(contentsOf: folder.appendingPathComponent($0), encoding: .utf8) }
        let now = Int64(Date().timeIntervalSince1970)
        let persona = Scheme(name: "timestamped-hmac", secrets: ["wbhsec_sandbox"], header: "Persona-Signature")
        let signed = try await Self.sign(persona, bodies.map { Signing(secret: "wbhsec_sandbox", body: $0, timestamp: now, messageID: "") })
        try await gateway.test { api in
            var outcomes: [String: [String: String]] = [:]  // fixture → workflow → status/decision
            for (index, name) in names.enumerated() {
                let reply = try await api.request(.post, "/v1/sources/persona", body: bodies[index], headers: signed[index], authenticated: false)
                #expect(reply.status == .accepted, "\(name): \(reply.body)")
                for run in reply.json["runs"]?.array ?? [] {
                    let id = try #require(run["id"]?.stringValue)
                    let finished = try await api.waitForRun(id) { $0.status.isFinished || $0.status == .waiting }
                    let summary = (finished["status"]?.stringValue ?? "") + "/" + (finished["decision"]?.stringValue ?? "none")
                    outcomes[name, default: [:]][run["workflow"]?.stringValue ?? ""] = summary
                }
            }
            #expect(outcomes["inquiry-completed-blocked-ip.json"]?["decline-blocked-ip"] == "completed/declined")
            #expect(outcomes["inquiry-completed-blocked-range.json"]?["decline-blocked-ip"] == "completed/declined")
            #expect(outcomes["inquiry-completed-minor.json"]?["review-minors"] == "waiting/needs_review", "a minor waits for review")
            #expect(outcomes["inquiry-completed-minor.json"]?["decline-blocked-ip"] == "completed/none")
            #expect(outcomes["inquiry-completed-adult.json"]?["decline-blocked-ip"] == "completed/none")
            #expect(outcomes["inquiry-completed-adult.json"]?["review-minors"] == "completed/none")
            #expect(outcomes["inquiry-completed-no-session.json"]?["decline-blocked-ip"] == "completed/none")
            #expect(outcomes["inquiry-approved.json"] == ["reverify-approved": "completed/none"],
                    "an approval schedules its yearly reverification")

            // The mapped event: Persona's names in snake case, the session's IP address, no nulls.
            let runs = try await api.request(.get, "/v1/runs?workflow=review-minors").json["data"]?.array ?? []
            let minor = try #require(runs.first { $0["status"] == "waiting" }?["id"]?.stringValue)
            let event = try #require(try await gateway.store.loadRun(RunID(minor))?.run.event)
            #expect(event["id"] == "evt_Persona0Minor0001" && event["source"] == "persona" && event["type"] == "inquiry.completed")
            #expect(event["data"]?["inquiry"] == ["id": "inq_PersonaMinor01", "status": "completed", "template_id": "itmpl_onboarding",
                                                  "name_first": "Tim", "name_last": "Young", "birthdate": "2012-06-01",
                                                  "email_address": "tim@example.com", "country_code": "US",
                                                  "created_at": "2026-11-26T09:52:11.000Z", "completed_at": "2026-11-26T10:00:00.000Z",
                                                  "ip_address": "192.0.2.11"])
        }
    }
}
