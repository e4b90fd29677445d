import Foundation

/// The typed JSON encoding of CEL values used by the conformance data and `switchboard eval --jsonl`:
/// `{"int": "-5"}`, `{"double": 1.5}`, `{"list": [...]}`, `{"map": [[key, value], ...]}`, ...
public enum TypedJSON {
    /// Decodes a typed value.
    public static func decode(_ json: JSON) throws(CELError) -> CELValue {
        guard case let .object(object) = json, object.count == 1, let (tag, body) = object.first else {
            throw .invalidArgument("a typed value is an object with one key, such as {\"int\": \"1\"}")
        }
        func bad() -> CELError { .invalidArgument("malformed typed value for '\(tag)': \(body.text)") }
        switch (tag, body) {
        case ("null", _): return .null
        case let ("bool", .bool(b)): return .bool(b)
        case let ("int", .string(s)): guard let i = Int64(s) else { throw bad() }; return .int(i)
        case let ("int", .number(d)): guard let i = Int64(exactly: d) else { throw bad() }; return .int(i)
        case let ("uint", .string(s)): guard let u = UInt64(s) else { throw bad() }; return .uint(u)
        case let ("uint", .number(d)): guard let u = UInt64(exactly: d) else { throw bad() }; return .uint(u)
        case let ("double", .number(d)): return .double(d)
        case let ("double", .string(s)):
            switch s {
            case "NaN": return .double(.nan)
            case "Infinity": return .double(.infinity)
            case "-Infinity": return .double(-.infinity)
            default: guard let d = Double(s) else { throw bad() }; return .double(d)
            }
        case let ("string", .string(s)): return .string(s)
        case let ("bytes", .string(s)):
            guard let data = Data(base64Encoded: s) else { throw bad() }
            return .bytes(Array(data))
        case let ("list", .array(items)):
            var list: [CELValue] = []
            for item in items { list.append(try decode(item)) }
            return .list(list)
        case let ("map", .array(pairs)):
            var map = CELMap()
            for pair in pairs {
                guard case let .array(kv) = pair, kv.count == 2 else { throw bad() }
                map[try decode(kv[0])] = try decode(kv[1])
            }
            return .map(map)
        case let ("timestamp", .string(s)): return .timestamp(try CELTimestamp.parse(s))
        case let ("duration", .string(s)): return .duration(try CELDuration.parse(s))
        case let ("type", .string(s)): return .type(CELType.named[s] ?? CELType(s))
        default: throw bad()
        }
    }

    /// Encodes a value; IP and CIDR values (which have no tag) are written as strings.
    public static func encode(_ value: CELValue) -> JSON {
        switch value {
        case .null: return ["null": .null]
        case let .bool(b): return ["bool": .bool(b)]
        case let .int(i): return ["int": .string(String(i))]
        case let .uint(u): return ["uint": .string(String(u))]
        case let .double(d):
            if d.isNaN { return ["double": "NaN"] }
            if d.isInfinite { return ["double": .string(d < 0 ? "-Infinity" : "Infinity")] }
            return ["double": .number(d)]
        case let .string(s): return ["string": .string(s)]
        case let .bytes(b): return ["bytes": .string(Data(b).base64EncodedString())]
        case let .list(l): return ["list": .array(l.map(encode))]
        case let .map(m): return ["map": .array(m.map { .array([encode($0.key), encode($0.value)]) })]
        case let .timestamp(t): return ["timestamp": .string(t.description)]
        case let .duration(d): return ["duration": .string(d.description)]
        case let .type(t): return ["type": .string(t.name)]
        case let .ip(ip): return ["string": .string(ip.description)]
        case let .cidr(c): return ["string": .string(c.description)]
        }
    }

    /// Whether two values match as the conformance data defines it: same type tag, NaN matches
    /// NaN, maps in any order.
    public static func matches(_ a: CELValue, _ b: CELValue) -> Bool {
        switch (a, b) {
        case let (.double(x), .double(y)): return (x.isNaN && y.isNaN) || x == y
        case (.int, .int), (.uint, .uint), (.null, .null), (.bool, .bool), (.string, .string), (.bytes, .bytes),
             (.timestamp, .timestamp), (.duration, .duration), (.type, .type):
            return a == b
        case let (.list(x), .list(y)):
            return x.count == y.count && zip(x, y).allSatisfy { matches($0, $1) }
        case let (.map(x), .map(y)):
            guard x.count == y.count else { return false }
            for (key, value) in x {
                guard let other = y[key], matches(value, other) else { return false }
            }
            return true
        default: return false
        }
    }
}
