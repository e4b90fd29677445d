import Foundation

/// CEL's built-in operators over values, with the spec's overflow, range and overload errors.
enum Operators {
    enum Unary: Sendable { case not, negate }
    enum Binary: Sendable {
        case add, subtract, multiply, divide, modulo
        case equal, notEqual, less, lessOrEqual, greater, greaterOrEqual
        case `in`, index

        var symbol: String {
            switch self {
            case .add: "+"
            case .subtract: "-"
            case .multiply: "*"
            case .divide: "/"
            case .modulo: "%"
            case .equal: "=="
            case .notEqual: "!="
            case .less: "<"
            case .lessOrEqual: "<="
            case .greater: ">"
            case .greaterOrEqual: ">="
            case .in: "in"
            case .index: "[]"
            }
        }
    }

    static let binaryByFunction: [String: Binary] = [
        "_+_": .add, "_-_": .subtract, "_*_": .multiply, "_/_": .divide, "_%_": .modulo,
        "_==_": .equal, "_!=_": .notEqual, "_<_": .less, "_<=_": .lessOrEqual, "_>_": .greater,
        "_>=_": .greaterOrEqual, "@in": .in, "_[_]": .index,
    ]

    static func apply(_ op: Unary, _ value: CELValue) throws(CELError) -> CELValue {
        switch (op, value) {
        case let (.not, .bool(b)): return .bool(!b)
        case let (.negate, .int(v)):
            guard v != .min else { throw .overflow("-\(v)") }
            return .int(-v)
        case let (.negate, .double(v)): return .double(-v)
        default: throw .noSuchOverload(op == .not ? "!_" : "-_", [value])
        }
    }

    @inline(__always)
    static func apply(_ op: Binary, _ a: CELValue, _ b: CELValue) throws(CELError) -> CELValue {
        switch op {
        case .equal: return .bool(a == b)
        case .notEqual: return .bool(a != b)
        case .less, .lessOrEqual, .greater, .greaterOrEqual: return try compare(op, a, b)
        case .add: return try add(a, b)
        case .subtract: return try subtract(a, b)
        case .multiply, .divide, .modulo: return try multiplicative(op, a, b)
        case .in: return try membership(a, b)
        case .index: return try index(a, b)
        }
    }

    private static func compare(_ op: Binary, _ a: CELValue, _ b: CELValue) throws(CELError) -> CELValue {
        let order: ComparisonResult?
        switch (a, b) {
        case (.int, _), (.uint, _), (.double, _):
            switch b {
            case .int, .uint, .double: break
            default: throw .noSuchOverload("_\(op.symbol)_", [a, b])
            }
            order = NumericOrder.compare(a, b)
        case let (.string(x), .string(y)): order = lexicographic(x.utf8, y.utf8)
        case let (.bytes(x), .bytes(y)): order = lexicographic(x, y)
        case let (.bool(x), .bool(y)): order = x == y ? .orderedSame : (!x ? .orderedAscending : .orderedDescending)
        case let (.timestamp(x), .timestamp(y)): order = x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending)
        case let (.duration(x), .duration(y)): order = x == y ? .orderedSame : (x < y ? .orderedAscending : .orderedDescending)
        default: throw .noSuchOverload("_\(op.symbol)_", [a, b])
        }
        guard let order else { return .bool(false) }  // NaN
        switch op {
        case .less: return .bool(order == .orderedAscending)
        case .lessOrEqual: return .bool(order != .orderedDescending)
        case .greater: return .bool(order == .orderedDescending)
        default: return .bool(order != .orderedAscending)
        }
    }

    private static func lexicographic<S: Sequence>(_ x: S, _ y: S) -> ComparisonResult where S.Element == UInt8 {
        var i = x.makeIterator()
        var j = y.makeIterator()
        while true {
            switch (i.next(), j.next()) {
            case (nil, nil): return .orderedSame
            case (nil, _): return .orderedAscending
            case (_, nil): return .orderedDescending
            case let (p?, q?): if p != q { return p < q ? .orderedAscending : .orderedDescending }
            }
        }
    }

    private static func add(_ a: CELValue, _ b: CELValue) throws(CELError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (r, o) = x.addingReportingOverflow(y)
            if o { throw .overflow("\(x) + \(y)") }
            return .int(r)
        case let (.uint(x), .uint(y)):
            let (r, o) = x.addingReportingOverflow(y)
            if o { throw .overflow("\(x)u + \(y)u") }
            return .uint(r)
        case let (.double(x), .double(y)): return .double(x + y)
        case let (.string(x), .string(y)): return .string(x + y)
        case let (.bytes(x), .bytes(y)): return .bytes(x + y)
        case let (.list(x), .list(y)): return .list(x + y)
        case let (.timestamp(t), .duration(d)), let (.duration(d), .timestamp(t)):
            guard let r = CELTimestamp(nanosecondsSinceEpoch: t.nanosecondsSinceEpoch + d.nanoseconds) else {
                throw .range("timestamp out of range: \(t) + \(d)")
            }
            return .timestamp(r)
        case let (.duration(x), .duration(y)):
            guard let r = CELDuration(nanoseconds: x.nanoseconds + y.nanoseconds) else {
                throw .range("duration out of range: \(x) + \(y)")
            }
            return .duration(r)
        default: throw .noSuchOverload("_+_", [a, b])
        }
    }

    private static func subtract(_ a: CELValue, _ b: CELValue) throws(CELError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            let (r, o) = x.subtractingReportingOverflow(y)
            if o { throw .overflow("\(x) - \(y)") }
            return .int(r)
        case let (.uint(x), .uint(y)):
            let (r, o) = x.subtractingReportingOverflow(y)
            if o { throw .overflow("\(x)u - \(y)u") }
            return .uint(r)
        case let (.double(x), .double(y)): return .double(x - y)
        case let (.timestamp(x), .timestamp(y)):
            guard let r = CELDuration(nanoseconds: x.nanosecondsSinceEpoch - y.nanosecondsSinceEpoch) else {
                throw .range("duration out of range: \(x) - \(y)")
            }
            return .duration(r)
        case let (.timestamp(t), .duration(d)):
            guard let r = CELTimestamp(nanosecondsSinceEpoch: t.nanosecondsSinceEpoch - d.nanoseconds) else {
                throw .range("timestamp out of range: \(t) - \(d)")
            }
            return .timestamp(r)
        case let (.duration(x), .duration(y)):
            guard let r = CELDuration(nanoseconds: x.nanoseconds - y.nanoseconds) else {
                throw .range("duration out of range: \(x) - \(y)")
            }
            return .duration(r)
        default: throw .noSuchOverload("_-_", [a, b])
        }
    }

    private static func multiplicative(_ op: Binary, _ a: CELValue, _ b: CELValue) throws(CELError) -> CELValue {
        switch (a, b) {
        case let (.int(x), .int(y)):
            switch op {
            case .multiply:
                let (r, o) = x.multipliedReportingOverflow(by: y)
                if o { throw .overflow("\(x) * \(y)") }
                return .int(r)
            case .divide:
                if y == 0 { throw CELError(.divisionByZero, "division by zero") }
                if x == .min && y == -1 { throw .overflow("\(x) / \(y)") }
                return .int(x / y)
            default:
                if y == 0 { throw CELError(.divisionByZero, "modulus by zero") }
                if x == .min && y == -1 { throw .overflow("\(x) % \(y)") }
                return .int(x % y)
            }
        case let (.uint(x), .uint(y)):
            switch op {
            case .multiply:
                let (r, o) = x.multipliedReportingOverflow(by: y)
                if o { throw .overflow("\(x)u * \(y)u") }
                return .uint(r)
            case .divide:
                if y == 0 { throw CELError(.divisionByZero, "division by zero") }
                return .uint(x / y)
            default:
                if y == 0 { throw CELError(.divisionByZero, "modulus by zero") }
                return .uint(x % y)
            }
        case let (.double(x), .double(y)) where op != .modulo:
            return .double(op == .multiply ? x * y : x / y)
        default:
            throw .noSuchOverload("_\(op.symbol)_", [a, b])
        }
    }

    private static func membership(_ element: CELValue, _ container: CELValue) throws(CELError) -> CELValue {
        switch container {
        case let .list(list): return .bool(list.contains(element))
        case let .map(map): return .bool(map[element] != nil)
        default: throw .noSuchOverload("@in", [element, container])
        }
    }

    private static func index(_ container: CELValue, _ key: CELValue) throws(CELError) -> CELValue {
        switch container {
        case let .list(list):
            let position: Int
            switch key {
            case let .int(i): position = Int(i)
            case let .uint(u): position = u > UInt64(Int.max) ? -1 : Int(u)
            case let .double(d) where d.rounded(.towardZero) == d && abs(d) < 9.2e18: position = Int(d)
            default: throw CELError(.invalidArgument, "invalid_argument: list index \(Formatting.literal(key)) is not an integer")
            }
            guard position >= 0 && position < list.count else {
                throw CELError(.indexOutOfRange, "invalid_argument: index \(position) out of range in list of size \(list.count)")
            }
            return list[position]
        case let .map(map):
            guard let value = map[key] else {
                switch key {
                case .int, .uint, .double, .bool, .string: break
                default: throw CELError(.noSuchKey, "no such key: unsupported key type '\(key.celType)'")
                }
                throw CELError(.noSuchKey, "no such key: \(Formatting.literal(key))")
            }
            return value
        default:
            throw .noSuchOverload("_[_]", [container, key])
        }
    }
}
