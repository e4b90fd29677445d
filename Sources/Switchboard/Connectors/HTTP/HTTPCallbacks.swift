import CEL
import Crypto
import Foundation

/// Inbound callbacks of an http connector (`callbacks:` in its file), for `wait: callback` steps:
///
/// ```yaml
/// callbacks:
///   scheme: standard-webhooks          # | hmac-sha256 | timestamped-hmac | slack-v0
///   secret: ${CRM_CALLBACK_SECRET}      # or secrets: [...] while rotating
///   header: X-Signature                 # the header of hmac-sha256 and timestamped-hmac
///   correlation: body.order_id          # CEL over `body` and `headers`: what the waiting step expects
///   message_id: headers['x-delivery']   # optional; for schemes with no id, else a hash of the body
/// ```
struct HTTPCallbacks: ConnectorCallbacks {
    let verifier: InboundVerifier
    let correlation: CELProgram
    let messageID: CELProgram?

    static let environment = CELEnvironment(variables: ["body", "headers"])
    static let keys = ["scheme", "secret", "secrets", "header", "correlation", "message_id", "tolerance"]

    init(_ settings: JSON) throws(ConnectorError) {
        guard case let .object(fields) = settings else {
            throw ConnectorError(key: "callbacks", "must be a mapping with scheme, secret and correlation")
        }
        if let unknown = fields.keys.sorted().first(where: { !Self.keys.contains($0) }) {
            throw ConnectorError(key: "callbacks.\(unknown)", "unknown key; expected \(Self.keys.joined(separator: ", "))")
        }
        verifier = try InboundVerifier(settings: fields, key: "callbacks")
        guard let source = fields["correlation"]?.stringValue else {
            throw ConnectorError(key: "callbacks.correlation", "give a CEL expression over body and headers, such as body.order_id")
        }
        correlation = try Self.compile(source, key: "callbacks.correlation")
        messageID = try fields["message_id"]?.stringValue.map { text throws(ConnectorError) in try Self.compile(text, key: "callbacks.message_id") }
    }

    private static func compile(_ source: String, key: String) throws(ConnectorError) -> CELProgram {
        do { return try environment.compile(source) } catch {
            throw ConnectorError(key: key, "expression does not compile: \(error.message)" + (error.column.map { " (column \($0))" } ?? ""))
        }
    }

    func read(body: [UInt8], headers: [(String, String)], verifiedMessageID: String?) throws(StepError) -> CallbackMessage {
        let payload: JSON = (try? JSON.parse(bytes: body, limits: .request)) ?? .string(String(decoding: body, as: UTF8.self))
        var headerMap = CELMap()
        for (name, value) in headers { headerMap[.string(name.lowercased())] = .string(value) }
        let variables: [String: CELValue] = ["body": CELValue(json: payload), "headers": .map(headerMap)]
        func text(_ program: CELProgram, _ what: String) throws(StepError) -> String {
            let value: CELValue
            do { value = try program.evaluate(variables) } catch {
                throw StepError(errorClass: "invalid_callback", message: "\(what): \(error.message)")
            }
            switch value {
            case let .string(text) where !text.isEmpty: return text
            case let .int(n): return String(n)
            case let .uint(n): return String(n)
            case let .double(d) where d.rounded() == d: return String(Int64(d))
            default: throw StepError(errorClass: "invalid_callback", message: "\(what) must be a non-empty string, got \(value.json.text)")
            }
        }
        let correlation = try text(self.correlation, "correlation")
        var id = verifiedMessageID ?? "sha256:" + Hex.encode(SHA256.hash(data: body))
        if verifiedMessageID == nil, let messageID { id = try text(messageID, "message_id") }
        return CallbackMessage(messageID: id, correlation: correlation, payload: payload)
    }

    func outcome(operation: String, payload: JSON) -> ConnectorOutcome { .done(payload) }
}
