import CEL
import Foundation

/// A CloudEvents 1.0 event in structured JSON mode, validated.
public struct CloudEvent: Sendable {
    public var id: String
    public var source: String
    public var type: String
    public var raw: JSON
    /// The event's JSON text as it arrived, stored as is (nil when the event was built in code).
    public var text: String?

    /// Validates the required context attributes; every problem is listed.
    public static func validate(_ json: JSON) -> Result<CloudEvent, CloudEventInvalid> {
        guard case let .object(object) = json else {
            return .failure(CloudEventInvalid(errors: [Problem.FieldError(path: "", message: "a CloudEvent must be a JSON object")]))
        }
        var errors: [Problem.FieldError] = []
        func requiredString(_ name: String) -> String? {
            switch object[name] {
            case nil, .null?:
                errors.append(.init(path: name, message: "required attribute '\(name)' is missing"))
            case let .string(s)? where !s.isEmpty:
                return s
            case .string?:
                errors.append(.init(path: name, message: "attribute '\(name)' must not be empty"))
            default:
                errors.append(.init(path: name, message: "attribute '\(name)' must be a string"))
            }
            return nil
        }
        let specversion = requiredString("specversion")
        if let specversion, specversion != "1.0" {
            errors.append(.init(path: "specversion", message: "specversion must be \"1.0\", got \"\(specversion)\""))
        }
        let id = requiredString("id")
        let source = requiredString("source")
        let type = requiredString("type")
        for optional in ["subject", "datacontenttype", "dataschema"] {
            if let value = object[optional], value != .null, value.stringValue == nil {
                errors.append(.init(path: optional, message: "attribute '\(optional)' must be a string"))
            }
        }
        if let time = object["time"], time != .null {
            if time.stringValue.flatMap({ Date(rfc3339: $0) }) == nil {
                errors.append(.init(path: "time", message: "attribute 'time' must be an RFC 3339 timestamp"))
            }
        }
        if object["data"] != nil, object["data_base64"] != nil {
            errors.append(.init(path: "data_base64", message: "an event carries 'data' or 'data_base64', not both"))
        }
        guard errors.isEmpty, let id, let source, let type else { return .failure(CloudEventInvalid(errors: errors)) }
        return .success(CloudEvent(id: id, source: source, type: type, raw: json, text: nil))
    }
}

/// Every problem with an event's attributes.
public struct CloudEventInvalid: Error, Sendable {
    public var errors: [Problem.FieldError]
}
