import CEL
import Crypto
import Foundation

/// A connector of kind `source`: another system's signed webhooks, received at
/// `POST /v1/sources/{id}`, become CloudEvents that trigger workflows exactly as `POST /v1/events`
/// does. The signature authenticates the request (no API key); CEL expressions over `body` (the
/// parsed JSON) and `headers` (lower-case names) say what the event is:
///
/// ```yaml
/// id: persona
/// kind: source
/// scheme: timestamped-hmac              # standard-webhooks | slack-v0 | timestamped-hmac | hmac-sha256
/// header: Persona-Signature             # for timestamped-hmac and hmac-sha256
/// secrets: [ "${PERSONA_WEBHOOK_SECRET}" ]
/// tolerance: 5m
/// event:
///   id: body.data.id
///   type: body.data.attributes.name
///   source: "'persona'"
///   time: body.data.attributes['created-at']     # optional
///   subject: body.data.attributes.payload.data.id   # optional
///   data: "{'inquiry': {'id': body.data.attributes.payload.data.id}}"   # optional: the whole body
///                                               # (members that are null are left out)
/// ```
public struct SourceConnector: Connector {
    public static let kind = "source"
    public static let settingKeys = ["scheme", "header", "secret", "secrets", "tolerance", "event"]

    public let id: String
    public let delivery = DeliverySettings()
    let mapping: SourceMapping

    public var operations: [ConnectorOperation] { [] }
    public var source: (any EventSource)? { mapping }

    public init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) {
        id = config.id
        mapping = try SourceMapping(settings: config.settings)
    }

    public func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest {
        throw StepError(errorClass: "not_supported", message: "connector '\(id)' is an event source: it receives, it sends nothing")
    }

    public func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome {
        .failed(StepError(errorClass: "not_supported", message: "connector '\(id)' is an event source"))
    }
}

/// How a connector turns a signed inbound request into an event (`POST /v1/sources/{id}`).
public protocol EventSource: Sendable {
    /// The signature scheme and secrets requests must satisfy.
    var verifier: InboundVerifier { get }
    /// The CloudEvent a verified request carries; the error names the attribute whose expression failed.
    func event(body: [UInt8], headers: [(String, String)]) throws(SourceMappingError) -> CloudEvent
}

/// A request body an event source's mapping could not read (422).
public struct SourceMappingError: Error, Sendable, CustomStringConvertible {
    /// The attribute (`event.id`, `event.type`, ...) or `body`.
    public var field: String
    public var message: String
    public var description: String { "\(field): \(message)" }
}

/// The verifier and the CEL mapping of a `source` connector.
struct SourceMapping: EventSource {
    let verifier: InboundVerifier
    /// The attribute expressions, in the order the event is built.
    let attributes: [(name: String, program: CELProgram, required: Bool)]
    let data: CELProgram?

    static let environment = CELEnvironment(variables: ["body", "headers"])
    static let attributeKeys = ["id", "type", "source", "time", "subject", "data"]

    init(settings: [String: JSON]) throws(ConnectorError) {
        verifier = try InboundVerifier(settings: settings, key: "")
        guard case let .object(event)? = settings["event"] else {
            throw ConnectorError(key: "event", "give the event's id, type and source as CEL expressions over body and headers")
        }
        if let unknown = event.keys.sorted().first(where: { !Self.attributeKeys.contains($0) }) {
            throw ConnectorError(key: "event.\(unknown)", "unknown key; expected \(Self.attributeKeys.joined(separator: ", "))")
        }
        func compile(_ name: String) throws(ConnectorError) -> CELProgram? {
            guard let value = event[name] else { return nil }
            guard let source = value.stringValue else { throw ConnectorError(key: "event.\(name)", "must be a CEL expression") }
            do { return try Self.environment.compile(source) } catch {
                throw ConnectorError(key: "event.\(name)",
                                     "expression does not compile: \(error.message)" + (error.column.map { " (column \($0))" } ?? ""))
            }
        }
        var attributes: [(String, CELProgram, Bool)] = []
        for name in ["id", "type", "source"] {
            guard let program = try compile(name) else { throw ConnectorError(key: "event.\(name)", "required: a CEL expression over body and headers") }
            attributes.append((name, program, true))
        }
        for name in ["time", "subject"] {
            if let program = try compile(name) { attributes.append((name, program, false)) }
        }
        self.attributes = attributes
        data = try compile("data")
    }

    /// `value` with every object member whose value is null left out, so that a mapping can write
    /// `'ip_address': has(x) ? x : null` and a workflow's `has(data.inquiry.ip_address)` says
    /// whether the sender gave one.
    static func withoutNulls(_ value: JSON) -> JSON {
        switch value {
        case let .object(members): .object(members.compactMapValues { $0 == .null ? nil : withoutNulls($0) })
        case let .array(items): .array(items.map(withoutNulls))
        default: value
        }
    }

    func event(body: [UInt8], headers: [(String, String)]) throws(SourceMappingError) -> CloudEvent {
        let payload: JSON
        do { payload = try JSON.parse(bytes: body, limits: .request) } catch {
            throw SourceMappingError(field: "body", message: "the body is not JSON: \(error)")
        }
        var headerMap = CELMap()
        for (name, value) in headers { headerMap[.string(name.lowercased())] = .string(value) }
        let variables: [String: CELValue] = ["body": CELValue(json: payload), "headers": .map(headerMap)]
        var object: [String: JSON] = ["specversion": "1.0", "datacontenttype": "application/json"]
        for (name, program, required) in attributes {
            let value: CELValue
            do { value = try program.evaluate(variables) } catch {
                if !required { continue }  // an optional attribute the body does not have
                throw SourceMappingError(field: "event.\(name)", message: error.message)
            }
            switch value {
            case let .string(text) where !text.isEmpty: object[name] = .string(text)
            case let .int(n): object[name] = .string(String(n))
            case let .uint(n): object[name] = .string(String(n))
            case let .timestamp(time): object[name] = .string(time.description)
            case .null where !required: continue
            default:
                throw SourceMappingError(field: "event.\(name)", message: "must give a non-empty string, got \(value.json.text)")
            }
        }
        if let data {
            do { object["data"] = Self.withoutNulls(try data.evaluate(variables).json) } catch {
                throw SourceMappingError(field: "event.data", message: error.message)
            }
        } else {
            object["data"] = payload
        }
        switch CloudEvent.validate(.object(object)) {
        case let .success(event): return event
        case let .failure(invalid):
            let first = invalid.errors.first
            throw SourceMappingError(field: "event.\(first?.path ?? "")", message: first?.message ?? "not a valid CloudEvent")
        }
    }
}

extension InboundVerifier {
    /// What identifies one signed request, for replay protection: the message id of a scheme that
    /// has one, otherwise a hash of the signature itself (which covers its timestamp).
    func replayKey(verifiedID: String?, headers: (String) -> String?) -> String {
        if let verifiedID { return verifiedID }
        let signature: String? = switch scheme {
        case .standardWebhooks: headers("webhook-signature")
        case .slackV0: headers("x-slack-signature")
        case let .timestampedHMAC(header), let .hmacSHA256(header): headers(header.lowercased())
        }
        return "signature:" + Hex.encode(SHA256.hash(data: Data((signature ?? "").utf8)))
    }
}
