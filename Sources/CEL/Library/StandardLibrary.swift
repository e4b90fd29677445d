import Foundation

/// The functions every ``CELEnvironment`` starts with: CEL's standard definitions, the strings
/// extension (lowerAscii, upperAscii, trim, split, join) and the network extension.
enum StandardLibrary {
    static var functions: [CELFunction] {
        core + conversions + TimeFunctions.functions + StringFunctions.functions + NetworkFunctions.functions
    }

    static let core: [CELFunction] = [
        CELFunction("size", style: .both, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case let .string(s): return .int(Int64(s.unicodeScalars.count))
            case let .bytes(b): return .int(Int64(b.count))
            case let .list(l): return .int(Int64(l.count))
            case let .map(m): return .int(Int64(m.count))
            default: throw .noSuchOverload("size", args)
            }
        },
        stringPredicate("contains") { $0.contains($1) },
        stringPredicate("startsWith") { $0.utf8.starts(with: $1.utf8) },
        stringPredicate("endsWith") { $0.utf8.reversed().starts(with: $1.utf8.reversed()) },
        CELFunction("matches", style: .both, arities: [2]) { args, _ throws(CELError) in
            guard case let .string(text) = args[0], case let .string(pattern) = args[1] else {
                throw .noSuchOverload("matches", args)
            }
            return .bool(try RegexCache.shared.matches(text, pattern: pattern))
        },
        CELFunction("dyn", style: .global, arities: [1]) { args, _ in args[0] },
        CELFunction("type", style: .global, arities: [1]) { args, _ in .type(args[0].celType) },
    ]

    static func stringPredicate(_ name: String, _ test: @escaping @Sendable (String, String) -> Bool) -> CELFunction {
        CELFunction(name, style: .receiver, arities: [2]) { args, _ throws(CELError) in
            guard case let .string(a) = args[0], case let .string(b) = args[1] else { throw .noSuchOverload(name, args) }
            if b.isEmpty { return .bool(true) }
            return .bool(test(a, b))
        }
    }

    static let conversions: [CELFunction] = [
        CELFunction("int", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .int: return args[0]
            case let .uint(u):
                guard u <= UInt64(Int64.max) else { throw .range("int(\(u)u): range error") }
                return .int(Int64(u))
            case let .double(d):
                guard d.isFinite, d > -9_223_372_036_854_775_808.0, d < 9_223_372_036_854_775_808.0 else {
                    throw .range("int(\(Formatting.double(d))): range error")
                }
                return .int(Int64(d.rounded(.towardZero)))
            case let .string(s):
                guard let i = Int64(s) else { throw .invalidArgument("int('\(s)'): not an integer") }
                return .int(i)
            case let .timestamp(t): return .int(t.seconds)
            default: throw .noSuchOverload("int", args)
            }
        },
        CELFunction("uint", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .uint: return args[0]
            case let .int(i):
                guard i >= 0 else { throw .range("uint(\(i)): range error") }
                return .uint(UInt64(i))
            case let .double(d):
                guard d.isFinite, d > -1, d < 18_446_744_073_709_551_616.0 else {
                    throw .range("uint(\(Formatting.double(d))): range error")
                }
                return .uint(UInt64(d.rounded(.towardZero)))
            case let .string(s):
                guard let u = UInt64(s) else { throw .invalidArgument("uint('\(s)'): not an unsigned integer") }
                return .uint(u)
            default: throw .noSuchOverload("uint", args)
            }
        },
        CELFunction("double", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .double: return args[0]
            case let .int(i): return .double(Double(i))
            case let .uint(u): return .double(Double(u))
            case let .string(s):
                guard let d = parseDouble(s) else { throw .invalidArgument("double('\(s)'): not a number") }
                return .double(d)
            default: throw .noSuchOverload("double", args)
            }
        },
        CELFunction("string", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .string: return args[0]
            case let .int(i): return .string(String(i))
            case let .uint(u): return .string(String(u))
            case let .double(d): return .string(Formatting.double(d))
            case let .bool(b): return .string(String(b))
            case let .bytes(b):
                guard let s = String(validating: b, as: UTF8.self) else {
                    throw .invalidArgument("string(bytes): invalid UTF-8")
                }
                return .string(s)
            case let .timestamp(t): return .string(t.description)
            case let .duration(d): return .string(d.description)
            case let .ip(ip): return .string(ip.description)
            case let .cidr(c): return .string(c.description)
            default: throw .noSuchOverload("string", args)
            }
        },
        CELFunction("bytes", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .bytes: return args[0]
            case let .string(s): return .bytes(Array(s.utf8))
            default: throw .noSuchOverload("bytes", args)
            }
        },
        CELFunction("bool", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .bool: return args[0]
            case let .string(s):
                switch s {
                case "1", "t", "true", "TRUE", "True": return .bool(true)
                case "0", "f", "false", "FALSE", "False": return .bool(false)
                default: throw .invalidArgument("Type conversion error: bool('\(s)')")
                }
            default: throw .noSuchOverload("bool", args)
            }
        },
        CELFunction("timestamp", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .timestamp: return args[0]
            case let .string(s): return .timestamp(try CELTimestamp.parse(s))
            case let .int(i):
                guard let t = CELTimestamp(secondsSinceEpoch: i) else { throw .range("timestamp(\(i)): range error") }
                return .timestamp(t)
            default: throw .noSuchOverload("timestamp", args)
            }
        },
        CELFunction("duration", style: .global, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case .duration: return args[0]
            case let .string(s): return .duration(try CELDuration.parse(s))
            default: throw .noSuchOverload("duration", args)
            }
        },
    ]

    /// Parses a double as Go's ParseFloat does for CEL: decimal and exponent forms, `NaN`, `Inf`.
    static func parseDouble(_ text: String) -> Double? {
        switch text.lowercased() {
        case "nan": return .nan
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default:
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
            return Double(text)
        }
    }
}

/// Compiled regular expressions for `matches()`, shared and bounded in size.
///
/// The engine is ICU (NSRegularExpression), not RE2: patterns that RE2 refuses, such as
/// backreferences and lookaround, are accepted here; `\C` and RE2's `(?P<name>...)` are not.
final class RegexCache: @unchecked Sendable {
    static let shared = RegexCache()
    private let lock = NSLock()
    private var cache: [String: NSRegularExpression] = [:]
    private let capacity = 256
    private let maxPatternLength = 10_000

    func regex(_ pattern: String) throws(CELError) -> NSRegularExpression {
        lock.lock()
        if let cached = cache[pattern] {
            lock.unlock()
            return cached
        }
        lock.unlock()
        guard pattern.utf8.count <= maxPatternLength else {
            throw CELError(.limit, "regular expression is longer than \(maxPatternLength) bytes")
        }
        let compiled: NSRegularExpression
        do { compiled = try NSRegularExpression(pattern: pattern) } catch {
            throw .invalidArgument("invalid regular expression '\(pattern)'")
        }
        lock.lock()
        if cache.count >= capacity { cache.removeAll(keepingCapacity: true) }
        cache[pattern] = compiled
        lock.unlock()
        return compiled
    }

    func matches(_ text: String, pattern: String) throws(CELError) -> Bool {
        if pattern.isEmpty { return true }  // ICU refuses an empty pattern; RE2 matches everything
        let regex = try regex(pattern)
        let range = NSRange(text.startIndex ..< text.endIndex, in: text)
        return regex.firstMatch(in: text, range: range) != nil
    }
}
