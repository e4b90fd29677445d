import Foundation

/// A JSON document, decoded without loss: the shape events, inputs and outputs take.
public enum JSON: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([String: JSON])

    public subscript(key: String) -> JSON? {
        if case let .object(o) = self { return o[key] }
        return nil
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var numberValue: Double? {
        if case let .number(n) = self { return n }
        return nil
    }

    public var arrayValue: [JSON]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// Parses JSON text (RFC 8259); the error says where the text stops being JSON.
    public static func parse(_ data: Data) throws(JSONParseError) -> JSON {
        try JSONParser.parse(data)
    }

    /// Parses JSON text given as UTF-8 bytes, no deeper and no larger than `limits`.
    public static func parse(bytes: [UInt8], limits: JSONLimits = .default) throws(JSONParseError) -> JSON {
        try JSONParser.parse(bytes: bytes, limits: limits)
    }

    /// Parses JSON text from a string.
    public static func parse(_ text: String) throws(JSONParseError) -> JSON {
        try JSONParser.parse(Data(text.utf8))
    }

    /// Encodes compactly with sorted keys.
    public func encoded() -> Data { Data(bytes) }

    /// The compact encoding as bytes.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSONWriter.write(self, into: &out)
        return out
    }

    public var text: String { String(decoding: bytes, as: UTF8.self) }
}

extension JSON: Codable {
    public init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let b = try? container.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? container.decode(Double.self) {
            self = .number(d)
        } else if let s = try? container.decode(String.self) {
            self = .string(s)
        } else if let a = try? container.decode([JSON].self) {
            self = .array(a)
        } else {
            self = .object(try container.decode([String: JSON].self))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case let .bool(b): try container.encode(b)
        case let .number(d):
            if d.rounded() == d, abs(d) < 1e15 { try container.encode(Int64(d)) } else { try container.encode(d) }
        case let .string(s): try container.encode(s)
        case let .array(a): try container.encode(a)
        case let .object(o): try container.encode(o)
        }
    }
}

extension JSON: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByFloatLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSON...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSON)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { $1 }))
    }
}

extension CELValue {
    /// Maps JSON the way cel-go does: objects to string-keyed maps, arrays to lists, numbers to doubles.
    public init(json: JSON) {
        switch json {
        case .null: self = .null
        case let .bool(b): self = .bool(b)
        case let .number(d): self = .double(d)
        case let .string(s): self = .string(s)
        case let .array(a): self = .list(a.map(CELValue.init(json:)))
        case let .object(o):
            var map = CELMap(minimumCapacity: o.count)
            for (key, value) in o { map[.string(key)] = CELValue(json: value) }
            self = .map(map)
        }
    }

    /// The value as plain JSON: numbers as numbers, timestamps and durations as strings, bytes
    /// as base64, map keys as strings.
    public var json: JSON {
        switch self {
        case .null: return .null
        case let .bool(b): return .bool(b)
        case let .int(i): return .number(Double(i))
        case let .uint(u): return .number(Double(u))
        case let .double(d): return d.isFinite ? .number(d) : .string(Formatting.double(d))
        case let .string(s): return .string(s)
        case let .bytes(b): return .string(Data(b).base64EncodedString())
        case let .list(l): return .array(l.map(\.json))
        case let .map(m):
            var object: [String: JSON] = [:]
            for (key, value) in m {
                let name: String = if case let .string(s) = key { s } else { Formatting.literal(key) }
                object[name] = value.json
            }
            return .object(object)
        case let .timestamp(t): return .string(t.description)
        case let .duration(d): return .string(d.description)
        case let .type(t): return .string(t.name)
        case let .ip(ip): return .string(ip.description)
        case let .cidr(c): return .string(c.description)
        }
    }
}
