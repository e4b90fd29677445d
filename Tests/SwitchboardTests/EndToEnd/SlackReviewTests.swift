import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import Testing
@testable import Switchboard

/// Example 2 end to end: a minor's inquiry produces a review alert at the Slack stand-in, and a
/// signed click decides the run; forged, stale or misplaced clicks change nothing.
@Suite("Example 2: Slack review alerts decided with a click", .timeLimit(.minutes(3)))
struct SlackReviewTests {
    /// Posts a minor's inquiry with its own ids; returns the review-minors run id.
    static func minor(_ harness: SandboxHarness, id: String) async throws -> String {
        var event = try Repository.fixture("events/inquiry-minor.json")
        if case var .object(o) = event {
            o["id"] = .string("evt-\(id)")
            o["data"] = ["inquiry": ["id": .string(id), "birthdate": "2012-06-01", "name_first": "Tim", "ip_address": "192.0.2.11"]]
            event = .object(o)
        }
        let reply = try await harness.api.request(.POST, "/v1/events", json: event)
        return try #require((reply.body["runs"]?.array ?? []).first { $0["workflow"] == "review-minors" }?["id"]?.stringValue)
    }

    static func alert(_ harness: SandboxHarness, inquiry: String) async throws -> JSON {
        try #require(try await harness.waitForSlackMessage { message in
            (message["blocks"]?.arrayValue?.first?["text"]?["text"]?.stringValue ?? "").contains(inquiry)
        })
    }

    /// Posts an interaction to the gateway as Slack would, signed with `secret` at `timestamp`.
    static func interact(_ harness: SandboxHarness, payload: JSON, secret: String = "sandbox-signing-secret",
                         timestamp: Int64 = Int64(Date().timeIntervalSince1970)) async throws -> Int {
        try await interactWithAnswer(harness, payload: payload, secret: secret, timestamp: timestamp).0
    }

    static func interactWithAnswer(_ harness: SandboxHarness, payload: JSON, secret: String = "sandbox-signing-secret",
                                   timestamp: Int64 = Int64(Date().timeIntervalSince1970)) async throws -> (Int, JSON) {
        let body = Array(FormEncoding.encode([("payload", payload.text)]).utf8)
        var request = HTTPClientRequest(url: harness.gatewayURL + "/v1/slack/interactions")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        for (name, value) in InboundVerifier.sign(.slackV0, secret: try SigningSecret(secret), body: body, timestamp: timestamp) {
            request.headers.add(name: name, value: value)
        }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await harness.api.client.execute(request, timeout: .seconds(5))
        let answer = try await response.body.collect(upTo: 1 << 16)
        if response.status.code >= 400 {
            #expect(response.headers.first(name: "content-type") == "application/problem+json", "refusals are problem details")
        }
        return (Int(response.status.code), (try? JSON.parse(Data(buffer: answer))) ?? .null)
    }

    @Test("the alert carries the facts and buttons; a click decides the run and updates the message; a second click says so")
    func clickDecides() async throws {
        try await SandboxHarness.run { harness in
            let run = try await Self.minor(harness, id: "inq_click")
            let message = try await Self.alert(harness, inquiry: "inq_click")
            let ts = try #require(message["ts"]?.stringValue)
            let blocks = message["blocks"]?.arrayValue ?? []
            #expect(blocks.map { $0["type"]?.stringValue ?? "" } == ["header", "section", "context", "actions"])
            let fields = blocks[1]["fields"]?.arrayValue?.compactMap { $0["text"]?.stringValue } ?? []
            #expect(fields.contains("*Reason*\nunder 18"))
            #expect(blocks[2]["elements"]?.arrayValue?.first?["text"]?.stringValue?.contains("/console/runs/\(run)") == true)

            let click = try await harness.sandboxPost("/slack/messages/\(ts)/click", ["action_id": "approve", "user": "ana"])
            #expect(click["gateway_status"] == 200, "\(click)")
            let done = try await harness.api.poll(run: run) { $0["status"] == "completed" }
            #expect(done["decision"] == "approved")
            let review = (done["steps"]?.arrayValue ?? []).first { $0["id"] == "review" }
            #expect(review?["output"]?["reviewer"] == "ana")
            #expect(review?["output"]?["source"] == "slack")
            let audit = try await harness.store.auditLog(AuditQuery(action: "review.decided"))
            #expect(audit.map(\.actorKind) == [.slack] && audit.first?.actorName == "ana" && audit.first?.target == "run:\(run)")

            // The message is replaced through response_url: no more buttons, and who decided.
            let updated = try #require(try await harness.waitForSlackMessage { $0["ts"]?.stringValue == ts && $0["replaced"] == true })
            #expect(updated["text"]?.stringValue?.hasPrefix("Approved by ana") == true)
            #expect(!(updated["blocks"]?.arrayValue ?? []).contains { $0["type"] == "actions" })

            // A second click on the original buttons (another reviewer's screen) changes nothing and says so.
            let actions = try #require(blocks.first { $0["type"] == "actions" })
            let decline = try #require(actions["elements"]?.arrayValue?.first { $0["action_id"] == "decline" }?["value"])
            let second = try await Self.interactWithAnswer(harness, payload: [
                "type": "block_actions", "user": ["id": "UBOB", "username": "bob"],
                "actions": [["action_id": "decline", "block_id": actions["block_id"] ?? .null, "value": decline]],
                "response_url": .string("\(harness.sandboxURL)/slack/response/\(ts)"),
            ])
            #expect(second.0 == 200)
            #expect(second.1["text"]?.stringValue?.contains("already decided: approved by ana") == true, "\(second.1)")
            #expect(try await harness.api.request(.GET, "/v1/runs/\(run)").body["decision"] == "approved")
            let noticed = try await harness.waitForSlackMessage { ($0["notices"]?.arrayValue ?? []).count == 1 }
            #expect(noticed?["notices"]?.arrayValue?.first?.stringValue?.contains("already decided") == true)
        }
    }

    @Test("a minor's Persona webhook, sent by the sandbox's Persona stand-in, reaches Slack as a review alert that a click decides")
    func personaToSlack() async throws {
        try await SandboxHarness.run { harness in
            let fixtures = try await harness.sandboxGet("/persona/fixtures")
            #expect(fixtures["data"]?.array.contains("inquiry-completed-minor.json") == true)
            let sent = try await harness.sandboxPost("/persona/send", ["fixture": "inquiry-completed-minor.json"])
            #expect(sent["gateway_status"] == 202, "\(sent)")
            let run = try #require(sent["gateway_answer"]?["runs"]?.array.first { $0["workflow"] == "review-minors" }?["id"]?.stringValue)
            let message = try await Self.alert(harness, inquiry: "inq_PersonaMinor01")
            let ts = try #require(message["ts"]?.stringValue)
            let click = try await harness.sandboxPost("/slack/messages/\(ts)/click", ["action_id": "decline", "user": "ana"])
            #expect(click["gateway_status"] == 200, "\(click)")
            let done = try await harness.api.poll(run: run) { $0["status"] == "completed" }
            #expect(done["decision"] == "declined")
            // Sent again, the same recorded body is a new event (a new id), not a replay.
            let again = try await harness.sandboxPost("/persona/send", ["fixture": "inquiry-completed-minor.json"])
            #expect(again["gateway_status"] == 202, "\(again)")
            let unknown = try await harness.sandboxPost("/persona/send", ["fixture": "nothing.json"])
            #expect(unknown["gateway_status"] == 404)
        }
    }

    @Test("a bad signature or a stale timestamp gets 401; a forged value or one from another run's message gets 403")
    func refusedClicks() async throws {
        try await SandboxHarness.run { harness in
            let runA = try await Self.minor(harness, id: "inq_a")
            let runB = try await Self.minor(harness, id: "inq_b")
            let messageA = try await Self.alert(harness, inquiry: "inq_a")
            let messageB = try await Self.alert(harness, inquiry: "inq_b")
            let actionsA = try #require(messageA["blocks"]?.arrayValue?.first { $0["type"] == "actions" })
            let approveA = try #require(actionsA["elements"]?.arrayValue?.first?["value"]?.stringValue)
            func payload(block: JSON, value: String) -> JSON {
                ["type": "block_actions", "user": ["id": "UEVE", "username": "eve"],
                 "actions": [["action_id": "approve", "block_id": block, "value": .string(value)]],
                 "response_url": .string("\(harness.sandboxURL)/slack/response/none")]
            }
            let good = payload(block: actionsA["block_id"] ?? .null, value: approveA)
            #expect(try await Self.interact(harness, payload: good, secret: "not-the-secret") == 401)
            #expect(try await Self.interact(harness, payload: good, timestamp: Int64(Date().timeIntervalSince1970) - 600) == 401)
            #expect(try await Self.interact(harness, payload: payload(block: actionsA["block_id"] ?? .null,
                                                                      value: approveA.replacingOccurrences(of: ".approve.", with: ".decline."))) == 403)
            // Run B's approve value clicked in run A's message.
            let stolen = try await harness.sandbox.click(
                ts: messageA["ts"]!.stringValue!, actionID: "approve", user: "eve",
                value: messageB["blocks"]?.arrayValue?.first { $0["type"] == "actions" }?["elements"]?.arrayValue?.first?["value"]?.stringValue)
            #expect(stolen.0 == 403)
            for run in [runA, runB] {
                let state = try await harness.api.request(.GET, "/v1/runs/\(run)").body
                #expect(state["status"] == "waiting")
                #expect(state["decision"] == "needs_review")
            }
            let refused = try await harness.api.request(.GET, "/v1/callbacks?status=rejected").body["data"]?.arrayValue ?? []
            #expect(refused.count == 4)
        }
    }
}
