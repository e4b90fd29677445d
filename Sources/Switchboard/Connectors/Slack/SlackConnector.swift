import CEL
import Foundation

/// Slack (`kind: slack`): messages and review alerts whose Approve and Decline buttons decide
/// the case, through an incoming webhook or `chat.postMessage` with a bot token and a channel.
///
/// ```yaml
/// id: slack-reviews
/// kind: slack
/// webhook_url: ${SLACK_WEBHOOK_URL:-http://127.0.0.1:8091/sandbox/slack/webhook}
/// bot_token: ${SLACK_BOT_TOKEN:-}          # with a channel, chat.postMessage is used
/// channel: ${SLACK_CHANNEL:-}
/// signing_secret: ${SLACK_SIGNING_SECRET:-sandbox-signing-secret}
/// rate_limit: 1/s                          # the default: one message per second per channel
/// ```
public struct SlackConnector: Connector {
    public static let kind = "slack"
    public static let settingKeys = ["webhook_url", "bot_token", "channel", "signing_secret", "api_base_url"]

    /// Where messages go.
    enum Destination: Sendable {
        case webhook(url: String)
        case api(baseURL: String, token: String, channel: String)
    }

    public let id: String
    public let delivery: DeliverySettings
    let destination: Destination
    /// Verifies interactions (`POST /v1/slack/interactions`).
    public let interactionVerifier: InboundVerifier
    let publicURL: String
    let secretKey: GatewayKey

    static let message = ConnectorOperation(
        "message", inputs: [.init("text", .string), .init("blocks", .array), .init("channel", .string)],
        outputs: [.init("ok", .boolean), .init("channel", .string), .init("ts", .string)])
    static let reviewRequest = ConnectorOperation(
        "review_request",
        inputs: [.init("title", .string, required: true), .init("facts", .object), .init("text", .string), .init("link", .string),
                 .init("channel", .string)],
        outputs: [.init("ok", .boolean), .init("channel", .string), .init("ts", .string)])
    /// Replaces a message through its `response_url` (after a click); not for steps.
    static let updateMessage = "update_message"

    public var operations: [ConnectorOperation] { [Self.message, Self.reviewRequest] }

    public init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) {
        id = config.id
        let s = config.settings
        delivery = try DeliverySettings.parse(config, defaultConcurrency: 4, defaultRateLimit: RateLimitSpec("1/s"))
        func text(_ key: String) -> String? {
            guard let value = s[key]?.stringValue?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
            return value
        }
        if let token = text("bot_token"), let channel = text("channel") {
            let base = text("api_base_url") ?? "https://slack.com/api"
            destination = .api(baseURL: base.hasSuffix("/") ? String(base.dropLast()) : base, token: token, channel: channel)
        } else if let url = text("webhook_url") {
            guard let parsed = URL(string: url), parsed.scheme == "https" || parsed.scheme == "http", parsed.host != nil else {
                throw ConnectorError(key: "webhook_url", "'\(url)' is not an absolute http(s) URL")
            }
            destination = .webhook(url: url)
        } else if text("bot_token") != nil {
            throw ConnectorError(key: "channel", "a bot_token needs a channel to post to")
        } else {
            throw ConnectorError(key: "webhook_url", "give webhook_url, or bot_token and channel")
        }
        guard let secret = text("signing_secret") else {
            throw ConnectorError(key: "signing_secret", "is required: Slack signs every button click with it")
        }
        do {
            interactionVerifier = InboundVerifier(scheme: .slackV0, secrets: [try SigningSecret(secret)])
        } catch {
            throw ConnectorError(key: "signing_secret", error.message)
        }
        publicURL = context.publicURL
        secretKey = context.secretKey
    }

    public func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest {
        var payload: [String: JSON]
        switch operation {
        case Self.message.name:
            try Self.message.check(input, connector: id)
            guard input["text"] != nil || input["blocks"] != nil else {
                throw StepError(errorClass: "invalid_input", message: "\(id).message needs text or blocks")
            }
            payload = [:]
            if let text = input["text"] { payload["text"] = text }
            if let blocks = input["blocks"] { payload["blocks"] = blocks }
        case Self.reviewRequest.name:
            try Self.reviewRequest.check(input, connector: id)
            let review = try input.decode(ReviewRequest.self, for: "\(id).review_request")
            let link = review.link ?? "\(publicURL)/console/runs/\(run.runID)"
            payload = ["text": .string(review.text ?? review.title),
                       "blocks": SlackReviewMessage.blocks(title: review.title, facts: input["facts"] ?? .null, link: link,
                                                           reference: SlackReviewMessage.Reference(run: run.runID, step: run.stepID),
                                                           key: secretKey)]
        default:
            throw StepError(errorClass: "invalid_operation", message: "connector '\(id)' has no operation '\(operation)'")
        }
        switch destination {
        case let .webhook(url):
            return OutboundRequest(method: "POST", url: url, headers: [("Content-Type", "application/json")],
                                   body: JSON.object(payload).text)
        case let .api(baseURL, _, channel):
            payload["channel"] = input["channel"] ?? .string(channel)
            return OutboundRequest(method: "POST", url: baseURL + "/chat.postMessage",
                                   headers: [("Content-Type", "application/json; charset=utf-8")], body: JSON.object(payload).text)
        }
    }

    struct ReviewRequest: Decodable {
        var title: String
        var text: String?
        var link: String?
    }

    public func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome {
        let text = String(decoding: response.body.prefix(200), as: UTF8.self)
        guard (200 ... 299).contains(response.status) else {
            return .failed(StepError(errorClass: "http_status", message: "Slack answered \(response.status) \(text)"))
        }
        if case .api = destination, operation != Self.updateMessage {
            guard let body = response.json, body["ok"] == .bool(true) else {
                let error = response.json?["error"]?.stringValue ?? text
                return .failed(StepError(errorClass: "slack_error", message: "Slack refused the message: \(error)"))
            }
            return .done(["ok": true, "channel": body["channel"] ?? .null, "ts": body["ts"] ?? .null])
        }
        return .done(["ok": true, "channel": .null, "ts": .null])
    }

    public func authenticate(_ headers: inout [(String, String)], url: String) {
        if case let .api(baseURL, token, _) = destination, url.hasPrefix(baseURL) {
            headers.append(("Authorization", "Bearer \(token)"))
        }
    }

    /// With a bot token: `conversations.info` on the channel (checks the token and the channel).
    /// With a webhook: an empty message, which Slack refuses as `no_text` when the URL is valid.
    public func testRequest() -> OutboundRequest? {
        switch destination {
        case let .webhook(url):
            return OutboundRequest(method: "POST", url: url, headers: [("Content-Type", "application/json")], body: "{}")
        case let .api(baseURL, _, channel):
            return OutboundRequest(method: "POST", url: baseURL + "/conversations.info",
                                   headers: [("Content-Type", "application/x-www-form-urlencoded")],
                                   body: FormEncoding.encode([("channel", channel)]))
        }
    }

    public func testVerdict(_ response: ConnectorResponse) -> ConnectorTestResult {
        let text = String(decoding: response.body.prefix(200), as: UTF8.self)
        switch destination {
        case .webhook:
            switch response.status {
            case 400 where ["no_text", "invalid_payload", "missing_text_or_fallback_or_attachments"].contains(text):
                return ConnectorTestResult(ok: true, status: "ok", detail: "the webhook URL is valid (an empty test message was refused as '\(text)')")
            case 403, 404, 410:
                let said = text.isEmpty ? "" : " (\(text))"
                return ConnectorTestResult(ok: false, status: "not_found", detail: "\(response.status)\(said): the webhook URL is not valid or was revoked")
            case 200 ..< 300:
                return ConnectorTestResult(ok: true, status: "ok", detail: "the webhook answered \(response.status)")
            default:
                return ConnectorTestResult.fromStatus(response.status)
            }
        case .api:
            guard response.status == 200, let body = response.json else { return ConnectorTestResult.fromStatus(response.status) }
            if body["ok"] == .bool(true) { return ConnectorTestResult(ok: true, status: "ok", detail: "the token works and the channel exists") }
            let error = body["error"]?.stringValue ?? "unknown_error"
            switch error {
            case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
                return ConnectorTestResult(ok: false, status: "unauthorized", detail: "Slack refused the bot token (\(error))")
            case "channel_not_found", "not_in_channel":
                return ConnectorTestResult(ok: false, status: "bad_channel", detail: "the channel is wrong or the bot is not in it (\(error))")
            default:
                return ConnectorTestResult(ok: false, status: "error", detail: "Slack answered \(error)")
            }
        }
    }
}
