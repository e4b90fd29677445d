import CEL
import Foundation
import Synchronization

/// A connector kind: translates a step's inputs into requests and responses into outputs.
/// Connectors do no I/O; the delivery engine sends what they describe.
///
/// ```swift
/// struct TicketingConnector: Connector {
///     static let kind = "ticketing"
///     let id: String
///     let delivery: DeliverySettings
///     var operations: [String] { ["create_ticket"] }
///     init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) { ... }
///     func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest { ... }
///     func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome { ... }
/// }
/// ConnectorRegistry.shared.register(TicketingConnector.self)
/// ```
public protocol Connector: Sendable {
    /// The `kind:` that selects this type in a connector file.
    static var kind: String { get }
    /// Builds an instance from its configuration; errors name the key that is wrong.
    init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError)
    var id: String { get }
    /// Operation names a step may use.
    var operations: [String] { get }
    /// How the delivery engine sends this connector's requests.
    var delivery: DeliverySettings { get }
    /// The request for an operation, from the step's evaluated inputs.
    func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest
    /// What a response means for the step.
    func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome
    /// Adds credentials at send time; they are never stored or logged.
    func authenticate(_ headers: inout [(String, String)])
    /// A harmless request that checks reachability and credentials (`POST /v1/connectors/{id}/test`);
    /// nil when the kind has none.
    func testRequest() -> OutboundRequest?
    /// What the answer to ``testRequest()`` means, in words.
    func testVerdict(_ response: ConnectorResponse) -> ConnectorTestResult
}

extension Connector {
    public func authenticate(_ headers: inout [(String, String)]) {}
    public func testRequest() -> OutboundRequest? { nil }
    public func testVerdict(_ response: ConnectorResponse) -> ConnectorTestResult {
        ConnectorTestResult.fromStatus(response.status)
    }
}

/// The outcome of a connector's live check.
public struct ConnectorTestResult: Sendable, Equatable {
    public var ok: Bool
    /// `ok`, `unreachable`, `unauthorized`, `forbidden`, `not_found`, `refused_address`, `error`, `not_supported`.
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
    /// The address vendors call back.
    public var publicURL: String
    public init(publicURL: String = "http://127.0.0.1:8080") { self.publicURL = publicURL }
}

/// A response as the connector sees it: the body is at most 1 MiB.
public struct ConnectorResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    public var truncated: Bool

    public func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// What a response means.
public enum ConnectorOutcome: Sendable {
    /// The step's output.
    case done(JSON)
    /// The step fails with this error.
    case failed(StepError)
}

/// The run context, as connectors see it for templates in their presets.
public struct RunContextView: Sendable {
    let render: @Sendable (ValueTemplate) throws(StepError) -> JSON

    public func evaluate(_ template: ValueTemplate) throws(StepError) -> JSON { try render(template) }
}

/// How the delivery engine sends a connector's requests.
public struct DeliverySettings: Sendable {
    public var retry = RetryPolicy()
    public var connectTimeout: Duration = .seconds(5)
    public var totalTimeout: Duration = .seconds(30)
    public var concurrency = 64
    public var rateLimit: RateLimitSpec?
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

/// The connector kinds this process knows, by `kind:` name. Built-in kinds are registered in
/// one place (``ConnectorRegistry/shared``); a third party registers its own the same way.
public final class ConnectorRegistry: Sendable {
    public typealias Factory = @Sendable (ConnectorConfig, ConnectorBuildContext) throws -> any Connector

    private let factories = Mutex<[String: Factory]>([:])

    public init() {}

    /// The registry with the built-in kinds.
    public static let shared: ConnectorRegistry = {
        let registry = ConnectorRegistry()
        registry.register(HTTPConnector.self)
        return registry
    }()

    /// Registers a kind. Registering a kind twice is a programming error.
    public func register<C: Connector>(_ type: C.Type) {
        factories.withLock { factories in
            precondition(factories[C.kind] == nil, "connector kind '\(C.kind)' is registered twice")
            factories[C.kind] = { config, context in try C(config: config, context: context) }
        }
    }

    public var kinds: [String] { factories.withLock { Array($0.keys).sorted() } }

    /// Builds a connector; nil when no such kind is registered.
    public func make(_ config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) -> (any Connector)? {
        guard let factory = factories.withLock({ $0[config.kind] }) else { return nil }
        do {
            return try factory(config, context)
        } catch let error as ConnectorError {
            throw error
        } catch {
            throw ConnectorError(key: "kind", "\(error)")
        }
    }
}
