import Foundation

/// A value of the Common Expression Language.
///
/// JSON data maps onto it the way cel-go maps JSON: objects become ``map(_:)`` with string keys,
/// arrays become ``list(_:)``, and every number becomes ``double(_:)``.
///
/// ```swift
/// let value: CELValue = .map(["score": .double(0.9)])
/// ```
public enum CELValue: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case list([CELValue])
    case map(CELMap)
    case timestamp(CELTimestamp)
    case duration(CELDuration)
    case type(CELType)
    case ip(IPAddress)
    case cidr(CIDR)

    /// The CEL type of this value, as `type(value)` returns it.
    public var celType: CELType {
        switch self {
        case .null: .null
        case .bool: .bool
        case .int: .int
        case .uint: .uint
        case .double: .double
        case .string: .string
        case .bytes: .bytes
        case .list: .list
        case .map: .map
        case .timestamp: .timestamp
        case .duration: .duration
        case .type: .type
        case .ip: .ip
        case .cidr: .cidr
        }
    }
}

extension CELValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByNilLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(nilLiteral: ()) { self = .null }
    public init(arrayLiteral elements: CELValue...) { self = .list(elements) }
    public init(dictionaryLiteral elements: (String, CELValue)...) {
        var map = CELMap()
        for (key, value) in elements { map[.string(key)] = value }
        self = .map(map)
    }
}

extension CELValue: Equatable {
    /// CEL equality: numbers compare across int, uint and double; values of different types are
    /// unequal; NaN is unequal to everything; lists and maps compare element-wise.
    public static func == (lhs: CELValue, rhs: CELValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.string(a), .string(b)): return a.utf8.elementsEqual(b.utf8)
        case let (.bytes(a), .bytes(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.uint(a), .uint(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case (.int, .uint), (.int, .double), (.uint, .int), (.uint, .double), (.double, .int), (.double, .uint):
            return NumericOrder.compare(lhs, rhs) == .orderedSame
        case let (.list(a), .list(b)):
            guard a.count == b.count else { return false }
            for index in a.indices where a[index] != b[index] { return false }
            return true
        case let (.map(a), .map(b)):
            guard a.count == b.count else { return false }
            for (key, value) in a {
                guard let other = b[key], other == value else { return false }
            }
            return true
        case let (.timestamp(a), .timestamp(b)): return a == b
        case let (.duration(a), .duration(b)): return a == b
        case let (.type(a), .type(b)): return a == b
        case let (.ip(a), .ip(b)): return a == b
        case let (.cidr(a), .cidr(b)): return a == b
        default: return false
        }
    }
}

/// Ordering across CEL's three numeric types, exact for every int64 and uint64.
enum NumericOrder {
    /// Compares two numeric values; nil when either is not a number or a NaN is involved.
    static func compare(_ lhs: CELValue, _ rhs: CELValue) -> ComparisonResult? {
        switch (lhs, rhs) {
        case let (.int(a), .int(b)): return order(a, b)
        case let (.uint(a), .uint(b)): return order(a, b)
        case let (.double(a), .double(b)):
            if a.isNaN || b.isNaN { return nil }
            return order(a, b)
        case let (.int(a), .uint(b)): return a < 0 ? .orderedAscending : order(UInt64(a), b)
        case let (.uint(a), .int(b)): return b < 0 ? .orderedDescending : order(a, UInt64(b))
        case let (.int(a), .double(b)): return compare(int: a, double: b)
        case let (.double(a), .int(b)): return compare(int: b, double: a).map(reverse)
        case let (.uint(a), .double(b)): return compare(uint: a, double: b)
        case let (.double(a), .uint(b)): return compare(uint: b, double: a).map(reverse)
        default: return nil
        }
    }

    private static func order<T: Comparable>(_ a: T, _ b: T) -> ComparisonResult {
        a < b ? .orderedAscending : (a > b ? .orderedDescending : .orderedSame)
    }

    private static func reverse(_ result: ComparisonResult) -> ComparisonResult {
        switch result {
        case .orderedAscending: .orderedDescending
        case .orderedDescending: .orderedAscending
        case .orderedSame: .orderedSame
        }
    }

    // CEL compares int and uint with double by converting the integer to double, as cel-go does:
    // 9223372036854775807 is not less than 9223372036854775808.0.
    private static func compare(int a: Int64, double b: Double) -> ComparisonResult? {
        b.isNaN ? nil : order(Double(a), b)
    }

    private static func compare(uint a: UInt64, double b: Double) -> ComparisonResult? {
        b.isNaN ? nil : order(Double(a), b)
    }
}
