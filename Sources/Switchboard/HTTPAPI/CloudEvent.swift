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
        if let encoded = object["data_base64"], encoded != .null,
           encoded.stringValue.flatMap({ Data(base64Encoded: $0) }) == nil
        {
            errors.append(.init(path: "data_base64", message: "attribute 'data_base64' must be a base64 string"))
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

extension CloudEvent {
    /// The media type of a batch of structured events (a JSON array).
    static let batchMediaType = "application/cloudevents-batch+json"

    /// An event in the HTTP binding's binary mode: its context attributes in `ce-*` headers
    /// (values percent-decoded), its `data` the body, whose `Content-Type` is the
    /// `datacontenttype`. A JSON body becomes JSON data, a text body a string, any other
    /// `data_base64`.
    static func binary(headers: [(String, String)], body: [UInt8]) -> Result<CloudEvent, CloudEventInvalid> {
        var object: [String: JSON] = [:]
        var contentType: String?
        for (name, value) in headers {
            let lower = name.lowercased()
            if lower == "content-type" { contentType = value }
            guard lower.hasPrefix("ce-"), lower.count > 3 else { continue }
            object[String(lower.dropFirst(3))] = .string(value.removingPercentEncoding ?? value)
        }
        if let contentType { object["datacontenttype"] = .string(contentType) }
        if !body.isEmpty {
            let type = (contentType ?? "application/json").lowercased()
            let media = type.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? type
            if media == "application/json" || media.hasSuffix("+json") || media == "text/json" {
                do { object["data"] = try JSON.parse(bytes: body, limits: .request) } catch {
                    return .failure(CloudEventInvalid(errors: [.init(path: "data", message: "the body is not valid JSON: \(error.message)")]))
                }
            } else if media.hasPrefix("text/") || media.hasSuffix("+xml") || media == "application/xml",
                      let text = String(validating: body, as: UTF8.self)
            {
                object["data"] = .string(text)
            } else {
                object["data_base64"] = .string(Data(body).base64EncodedString())
            }
        }
        return validate(.object(object))
    }
}
