import Foundation

/// How `switchboard sandbox` runs. The defaults match the shipped connectors in `connectors/`.
public struct SandboxSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8091
    /// Where the Slack stand-in sends button clicks: the gateway.
    public var gatewayURL = "http://127.0.0.1:8080"
    /// The API key the KYB vendor accepts.
    public var apiKey = "sandbox-api-key"
    /// The secret the KYB vendor signs callbacks with (Standard Webhooks).
    public var callbackSecret = "whsec_c3dpdGNoYm9hcmQtc2FuZGJveC1jYWxsYmFja3M="
    /// How long the KYB vendor takes before it calls back.
    public var callbackDelay: Duration = .seconds(1)
    /// The Slack app's signing secret, with which the stand-in signs clicks.
    public var slackSigningSecret = "sandbox-signing-secret"
    /// The bot token the stand-in's `chat.postMessage` accepts.
    public var slackBotToken = "xoxb-sandbox-token"
    /// The channels the stand-in knows.
    public var slackChannels = ["reviews", "kyb-reviews", "general"]
    /// The secret the Persona stand-in signs webhooks with (`PERSONA_WEBHOOK_SECRET`'s default in
    /// `connectors/persona-events.yaml`).
    public var personaWebhookSecret = "wbhsec_sandbox"
    /// The folder of recorded Persona webhook bodies the stand-in sends.
    public var personaFixtures = "fixtures/sources/persona"

    public init() {}

    /// The base URL the sandbox answers on.
    public var baseURL: String { "http://\(host):\(port)/sandbox" }
}

/// What the KYB vendor is told to do wrong (POST /sandbox/kyb/control): answer the next
/// `failCount` orders with `failStatus` (429 carries `Retry-After: retryAfter`), or answer slowly.
public struct SandboxFailurePlan: Sendable, Equatable {
    public var failStatus = 500
    public var failCount = 0
    public var retryAfter = 1
    public var slow: Duration = .zero
    /// Whether finished reports are called back (off shows the polling fallback).
    public var callbacks = true

    public init() {}
}
