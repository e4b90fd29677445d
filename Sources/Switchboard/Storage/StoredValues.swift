import CEL
import Foundation

/// How values are written into and read from a store's text columns, the same for every store.
extension Store {
    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try JSONEncoder().encode(value), as: UTF8.self)
    }

    // Hot-path encoders that avoid JSONEncoder and write the text directly (members in key order,
    // as `JSON.text` would).
    static func encode(_ strings: [String]) -> String {
        if strings.isEmpty { return "[]" }
        var writer = JSONArrayWriter()
        for string in strings { writer.element(string) }
        return writer.text
    }
    static func encode(_ trigger: RunTrigger) -> String {
        var writer = JSONObjectWriter(capacity: 64)
        writer.member("api", trigger.api)
        if let eventID = trigger.eventID { writer.member("event_id", eventID.rawValue) }
        if let scheduledAt = trigger.scheduledAt { writer.member("scheduled_at", scheduledAt.rfc3339) }
        if let parent = trigger.parent {
            writer.member("parent", object: { object in
                object.member("run_id", parent.run.rawValue)
                object.member("step", parent.step)
                object.member("depth", parent.depth)
                object.member("wait", parent.wait)
            })
        }
        return writer.text
    }
    static func encode(_ runs: [RunReference]) -> String {
        var writer = JSONArrayWriter(capacity: 64)
        for run in runs { writer.element(object: run.write(into:)) }
        return writer.text
    }

    // Hot-path decoders with the CEL module's JSON parser: Foundation's JSONDecoder costs several
    // times more, and these run inside the single writer's transactions.
    static func strings(_ text: String?) throws -> [String] {
        guard let text, case let .array(items) = try JSON.parse(Data(text.utf8)) else { return [] }
        return items.compactMap(\.stringValue)
    }

    static func trigger(_ text: String?) throws -> RunTrigger {
        guard let text else { return RunTrigger() }
        let json = try JSON.parse(Data(text.utf8))
        return RunTrigger(eventID: json["event_id"]?.stringValue.map(EventID.init), api: json["api"] == .bool(true),
                          scheduledAt: json["scheduled_at"]?.stringValue.flatMap { Date(rfc3339: $0) },
                          parent: json["parent"].flatMap { parent -> ParentRun? in
                              guard let run = parent["run_id"]?.stringValue, let step = parent["step"]?.stringValue else { return nil }
                              return ParentRun(run: RunID(run), step: step, depth: Int(parent["depth"]?.numberValue ?? 1),
                                               wait: parent["wait"] == .bool(true))
                          })
    }

    /// A request as stored: its body goes in a column of its own (a column of its own).
    static func encodeWithoutBody(_ request: OutboundRequest) -> String {
        var writer = JSONObjectWriter()
        writer.member("headers", array: { headers in
            for header in request.headers {
                headers.element(array: { pair in for part in header { pair.element(part) } })
            }
        })
        writer.member("method", request.method)
        if let stage = request.stage { writer.member("stage", stage) }
        writer.member("url", request.url)
        return writer.text
    }

    /// A request from its stored JSON and body column; rows written before v6 have the body in the JSON.
    static func request(_ text: String?, body: String?) throws -> OutboundRequest {
        guard let text, case let .object(object) = try JSON.parse(Data(text.utf8)),
              let method = object["method"]?.stringValue, let url = object["url"]?.stringValue
        else { throw StoreError.corrupt("delivery without a readable request") }
        var request = OutboundRequest(method: method, url: url, body: body ?? object["body"]?.stringValue,
                                      stage: object["stage"]?.stringValue)
        request.headers = (object["headers"]?.arrayValue ?? []).map { ($0.arrayValue ?? []).compactMap(\.stringValue) }
        return request
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String?) throws -> T? {
        guard let text else { return nil }
        return try JSONDecoder().decode(T.self, from: Data(text.utf8))
    }

    static func json(_ text: String?) throws -> JSON? {
        guard let text else { return nil }
        return try JSON.parse(Data(text.utf8))
    }
}
