import CEL
import Foundation

/// A connector kind: translates a step's inputs into requests and responses into outputs.
/// Connectors do no I/O; the delivery engine sends what they describe, and the callback inbox
/// hands them the verified callbacks they wait for.
///
/// ```swift
/// struct TicketingConnector: Connector {
///     static let kind = "ticketing"
///     static let settingKeys = ["base_url", "api_token"]
///     let id: String
///     let delivery: DeliverySettings
///     var operations: [ConnectorOperation] { [.init("create_ticket", inputs: [.init("title", .string, required: true)])] }
///     init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) { ... }
///     func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest { ... }
///     func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome { ... }
/// }
/// ConnectorRegistry.shared.register(TicketingConnector.self)
/// ```
///
/// docs/writing-a-connector.md walks through a complete one (`Tests/.../TicketingConnector.swift`).
public protocol Connector: Sendable {
    /// The `kind:` that selects this type in a connector file.
    static var kind: String { get }
    /// The keys a connector file of this kind may have besides the common ones (`id`, `kind`,
    /// `description`, `retry`, `rate_limit`, `timeout`, `concurrency`, `allow_networks`).
    static var settingKeys: [String] { get }
    /// Builds an instance from its configuration; errors name the key that is wrong.
    init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError)
    var id: String { get }
    /// The operations a step may use, with their inputs, so that `switchboard validate` checks a
    /// step's `with:` before anything runs.
    var operations: [ConnectorOperation] { get }
    /// How the delivery engine sends this connector's requests.
    var delivery: DeliverySettings { get }
    /// The request for an operation, from the step's evaluated inputs.
    func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest
    /// What a response means for the step: its output, a failure, another request, or a wait
    /// for a callback. `response.stage` is the stage of the request it answers.
    func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome
    /// Adds credentials at send time; they are never stored or logged.
    func authenticate(_ headers: inout [(String, String)], url: String)
    /// A harmless request that checks reachability and credentials (`POST /v1/connectors/{id}/test`);
    /// nil when the kind has none.
    func testRequest() -> OutboundRequest?
    /// What the answer to ``testRequest()`` means, in words.
    func testVerdict(_ response: ConnectorResponse) -> ConnectorTestResult
    /// How this connector's inbound callbacks (`POST /v1/callbacks/{id}`) are verified and read;
    /// nil when it takes none.
    var callbacks: (any ConnectorCallbacks)? { get }
    /// How this connector turns signed inbound webhooks into events (`POST /v1/sources/{id}`); nil
    /// when it takes none.
    var source: (any EventSource)? { get }
    /// How long a step waits for this connector's callback when the step sets no `timeout`.
    var callbackTimeout: Duration { get }
    /// The polling fallback while a step waits for a callback: how often to ask, or nil when the
    /// vendor offers no way to ask.
    var pollInterval: Duration? { get }
    /// The request that asks the vendor how the awaited result stands; its response comes back to
    /// ``outcome(operation:response:)`` with the stage `poll`, and may again await the callback.
    func pollRequest(operation: String, correlation: String) -> OutboundRequest?
}

extension Connector {
    public func authenticate(_ headers: inout [(String, String)], url: String) {}
    public func testRequest() -> OutboundRequest? { nil }
    public func testVerdict(_ response: ConnectorResponse) -> ConnectorTestResult {
        ConnectorTestResult.fromStatus(response.status)
    }
    public var callbacks: (any ConnectorCallbacks)? { nil }
    public var source: (any EventSource)? { nil }
    public var callbackTimeout: Duration { .seconds(3600) }
    public var pollInterval: Duration? { nil }
    public func pollRequest(operation: String, correlation: String) -> OutboundRequest? { nil }

    /// The operation named `name`, if this connector has it.
    public func operation(_ name: String) -> ConnectorOperation? { operations.first { $0.name == name } }
}

/// What a connector does with its inbound callbacks: how they are verified, and what they say.
public protocol ConnectorCallbacks: Sendable {
    /// The signature scheme and secrets callbacks must satisfy.
    var verifier: InboundVerifier { get }
    /// Reads a verified callback: its message id (for replay protection) and correlation id (the
    /// vendor's report id, to find the waiting step). Throws when the body cannot be read.
    func read(body: [UInt8], headers: [(String, String)], verifiedMessageID: String?) throws(StepError) -> CallbackMessage
    /// What a callback means for the step of `operation` that waits for it.
    func outcome(operation: String, payload: JSON) -> ConnectorOutcome
}

/// A verified callback, as its connector reads it.
public struct CallbackMessage: Sendable {
    /// The sender's id of this message; a second message with the same id is a replay.
    public var messageID: String
    /// What ties it to a waiting step (a vendor's report id).
    public var correlation: String
    /// The callback's data, handed to ``ConnectorCallbacks/outcome(operation:payload:)`` once matched.
    public var payload: JSON

    public init(messageID: String, correlation: String, payload: JSON) {
        self.messageID = messageID
        self.correlation = correlation
        self.payload = payload
    }
}

/// The outcome of a connector's live check.
public struct ConnectorTestResult: Sendable, Equatable {
    public var ok: Bool
    /// `ok`, `unreachable`, `unauthorized`, `forbidden`, `not_found`, `refused_address`, `bad_channel`, `error`, `not_supported`.
    public var status: String
    public var detail: String

    public init(ok: Bool, status: String, detail: String) {
        self.ok = ok
        self.status = status
        self.detail = detail
    }

    /// A reading of an HTTP status any kind can use.
    public static func fromStatus(_ code: Int) -> ConnectorTestResult {
        switch code {
        case 200 ..< 400: ConnectorTestResult(ok: true, status: "ok", detail: "the service answered \(code)")
        case 401: ConnectorTestResult(ok: false, status: "unauthorized", detail: "401: the credentials were refused; check auth")
        case 403: ConnectorTestResult(ok: false, status: "forbidden", detail: "403: the credentials lack permission")
        case 404: ConnectorTestResult(ok: false, status: "not_found", detail: "404: check base_url")
        default: ConnectorTestResult(ok: false, status: "error", detail: "the service answered \(code)")
        }
    }
}

/// What a connector may use to build itself.
public struct ConnectorBuildContext: Sendable {
    /// The address vendors and Slack call back (`--public-url`).
    public var publicURL: String
    /// The gateway's own key, for values it hands out and checks later (Slack buttons).
    public var secretKey: GatewayKey

    public init(publicURL: String = "http://127.0.0.1:8080", secretKey: GatewayKey = .ephemeral()) {
        self.publicURL = publicURL.hasSuffix("/") ? String(publicURL.dropLast()) : publicURL
        self.secretKey = secretKey
    }

    /// The callback address of a connector: `<public-url>/v1/callbacks/<id>`.
    public func callbackURL(for connector: String) -> String {
        publicURL + "/v1/callbacks/" + connector
    }
}

/// A response as the connector sees it: the body is at most 1 MiB.
public struct ConnectorResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var truncated: Bool
    /// The ``OutboundRequest/stage`` of the request this answers.
    public var stage: String?

    public init(status: Int, headers: [(String, String)] = [], body: [UInt8] = [], truncated: Bool = false, stage: String? = nil) {
        self.status = status
        self.headers = headers
        self.body = body
        self.truncated = truncated
        self.stage = stage
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    /// The body as JSON, or nil when it is empty or not JSON.
    public var json: JSON? { body.isEmpty ? nil : try? JSON.parse(Data(body)) }
}

/// What a response or a callback means for its step.
public enum ConnectorOutcome: Sendable {
    /// The step's output.
    case done(JSON)
    /// The step fails with this error.
    case failed(StepError)
    /// Send another request for the same step (a vendor that needs two calls); its response
    /// comes back to ``Connector/outcome(operation:response:)`` with its stage.
    case next(OutboundRequest)
    /// Wait for a callback carrying this correlation id (an asynchronous report).
    case awaitCallback(correlation: String)
    /// Nothing changes yet (a callback announcing progress, not the result).
    case pending
}

/// The run context, as connectors see it for templates in their presets.
public struct RunContextView: Sendable {
    /// The run the step belongs to.
    public let runID: RunID
    /// The step that sends the request.
    public let stepID: String
    let render: @Sendable (ValueTemplate) throws(StepError) -> JSON
    let received: @Sendable (ValueTemplate) -> String?
    /// The texts of the step's inputs that pass a received document on whole (`body: = event`).
    let receivedInputs: [String: String]

    init(runID: RunID, stepID: String, receivedInputs: [String: String] = [:],
         render: @escaping @Sendable (ValueTemplate) throws(StepError) -> JSON,
         received: @escaping @Sendable (ValueTemplate) -> String? = { _ in nil })
    {
        self.runID = runID
        self.stepID = stepID
        self.receivedInputs = receivedInputs
        self.render = render
        self.received = received
    }

    public func evaluate(_ template: ValueTemplate) throws(StepError) -> JSON { try render(template) }

    /// The JSON text of input `key` exactly as it was received, when the step passes a received
    /// document on whole (`with: { body: "= event" }`); nil otherwise. A connector that sends the
    /// input as JSON sends this text instead of encoding the value: the receiver gets the bytes
    /// the gateway received, and nothing is encoded again.
    public func receivedText(ofInput key: String) -> String? { receivedInputs[key] }

    /// ``receivedText(ofInput:)`` for a template of the connector's own (a preset's `body: = event`).
    public func receivedText(of template: ValueTemplate) -> String? { received(template) }
}

/// How the delivery engine sends a connector's requests.
public struct DeliverySettings: Sendable {
    public var retry = RetryPolicy()
    public var connectTimeout: Duration = .seconds(5)
    public var totalTimeout: Duration = .seconds(30)
    public var concurrency = 64
    public var rateLimit: RateLimitSpec?
    /// Consecutive failed attempts that open the circuit breaker, and how long it stays open
    /// (`circuit_breaker: { failures: 10, open_for: 30s }`).
    public var breakerThreshold = 10
    public var breakerOpenFor: Duration = .seconds(30)
    /// Standard Webhooks signing; nil sends unsigned requests.
    public var signing: StandardWebhooks?
    public var allowNetworks: [CIDR] = []
    public var followRedirects = false
    /// Header names shown as `••••` in the delivery log, besides the standard ones.
    public var secretHeaders: Set<String> = []

    public init() {}
}

/// A connector configuration problem, naming the key.
public struct ConnectorError: Error, Sendable, CustomStringConvertible {
    public var key: String
    public var message: String
    public init(key: String, _ message: String) {
        self.key = key
        self.message = message
    }
    public var description: String { "\(key): \(message)" }
}
