import CEL
import Foundation
import Testing
@testable import Switchboard

/// `POST /v1/connectors/{id}/test` against the sandbox: a harmless live call, read in words.
@Suite("Connector checks against the sandbox", .timeLimit(.minutes(3)))
struct ConnectorCheckTests {
    @Test("the shipped connectors pass against the sandbox; GET /v1/connectors shows kinds, operations and redacted secrets")
    func shipped() async throws {
        try await SandboxHarness.run { harness in
            let slack = try await harness.api.request(.POST, "/v1/connectors/slack-reviews/test").body
            #expect(slack["ok"] == true, "\(slack)")
            #expect(slack["detail"]?.stringValue?.contains("webhook URL is valid") == true)
            let kyb = try await harness.api.request(.POST, "/v1/connectors/kyb/test").body
            #expect(kyb["ok"] == true, "\(kyb)")
            let listed = try await harness.api.request(.GET, "/v1/connectors").body["data"]?.arrayValue ?? []
            let kybListed = listed.first { $0["id"] == "kyb" }
            #expect(kybListed?["kind"] == "kyb")
            #expect(kybListed?["settings"]?["api_key"] == "••••")
            #expect(kybListed?["settings"]?["callback_secret"] == "••••")
            #expect(kybListed?["operations"]?.arrayValue?.compactMap { $0["name"]?.stringValue }
                == ["business_watchlist", "business_adverse_media", "business_lookup", "tin_check"])
            #expect(listed.first { $0["id"] == "slack-reviews" }?["settings"]?["signing_secret"] == "••••")
            #expect(listed.first { $0["id"] == "slack-reviews" }?["limits"]?["rate_limit"] == "1/1s")
        }
    }

    @Test("a wrong API key, a wrong bot token and an unknown channel are named")
    func wrongCredentials() async throws {
        try await SandboxHarness.run(environment: ["KYB_API_KEY": "wrong", "SLACK_BOT_TOKEN": "xoxb-wrong", "SLACK_CHANNEL": "reviews"]) { harness in
            let kyb = try await harness.api.request(.POST, "/v1/connectors/kyb/test").body
            #expect(kyb["status"] == "unauthorized", "\(kyb)")
            #expect(kyb["detail"]?.stringValue?.contains("check api_key") == true)
            let slack = try await harness.api.request(.POST, "/v1/connectors/slack-reviews/test").body
            #expect(slack["status"] == "unauthorized", "\(slack)")
        }
        try await SandboxHarness.run(environment: ["SLACK_BOT_TOKEN": "xoxb-sandbox-token", "SLACK_CHANNEL": "nowhere"]) { harness in
            let slack = try await harness.api.request(.POST, "/v1/connectors/slack-reviews/test").body
            #expect(slack["status"] == "bad_channel", "\(slack)")
            #expect(slack["detail"]?.stringValue?.contains("channel") == true)
        }
        try await SandboxHarness.run(environment: ["SLACK_BOT_TOKEN": "xoxb-sandbox-token", "SLACK_CHANNEL": "reviews"]) { harness in
            let slack = try await harness.api.request(.POST, "/v1/connectors/slack-reviews/test").body
            #expect(slack["ok"] == true, "\(slack)")
            // With a bot token the alert goes through chat.postMessage to the channel.
            let run = try await SlackReviewTests.minor(harness, id: "inq_bot")
            let message = try await SlackReviewTests.alert(harness, inquiry: "inq_bot")
            #expect(message["via"] == "chat.postMessage")
            #expect(message["channel"] == "reviews")
            let alert = try await harness.api.poll(run: run) { run in
                (run["steps"]?.arrayValue ?? []).contains { $0["id"] == "alert" && $0["status"] == "completed" }
            }
            #expect((alert["steps"]?.arrayValue ?? []).first { $0["id"] == "alert" }?["output"]?["ts"] == message["ts"])
        }
    }
}
