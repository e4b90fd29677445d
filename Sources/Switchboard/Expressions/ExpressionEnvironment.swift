import CEL
import Foundation

/// The CEL environment workflows compile against: the run context's variables and
/// Switchboard's functions `age(date)` and `inList(name, value)`.
public enum ExpressionEnvironment {
    /// Variables a workflow expression may use.
    public static let variables = ["event", "data", "input", "steps", "run", "now"]

    /// The environment, built once.
    public static let shared: CELEnvironment = {
        var env = CELEnvironment(variables: variables)
        env.register(age)
        env.register(inList)
        return env
    }()

    /// `age(date)`: whole years from a `YYYY-MM-DD` date or a timestamp to the run's start, in UTC.
    /// A birthday on the day counts.
    static let age = CELFunction("age", style: .global, arities: [1]) { args, context throws(CELError) in
        guard let now = context.now else { throw CELError(.host, "age() needs the run's start time") }
        let birth: (year: Int, month: Int, day: Int)
        switch args[0] {
        case let .string(text):
            guard let date = parseDate(text) else {
                throw CELError(.invalidArgument, "age(): '\(text)' is not a date of the form YYYY-MM-DD")
            }
            birth = date
        case let .timestamp(t):
            let (y, m, d) = civil(t)
            birth = (y, m, d)
        default:
            throw CELError.noSuchOverloadPublic("age", args)
        }
        let (year, month, day) = civil(now)
        var years = year - birth.year
        if (month, day) < (birth.month, birth.day) { years -= 1 }
        return .int(Int64(years))
    }

    /// `inList(name, value)`: whether a value is on a list (exact; CIDR for IP lists; case-insensitive
    /// for email lists). A list that does not exist contains nothing.
    static let inList = CELFunction("inList", style: .global, arities: [2]) { args, context throws(CELError) in
        guard case let .string(name) = args[0] else { throw CELError.noSuchOverloadPublic("inList", args) }
        guard let lists = context.host as? ListIndexSnapshot else { return .bool(false) }
        switch args[1] {
        case let .string(value): return .bool(lists.contains(list: name, value))
        case let .ip(ip): return .bool(lists.contains(list: name, ip: ip))
        case .null: return .bool(false)
        default: throw CELError.noSuchOverloadPublic("inList", args)
        }
    }

    static func parseDate(_ text: String) -> (year: Int, month: Int, day: Int)? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]), (1 ... 12).contains(m), d >= 1
        else { return nil }
        let days = [31, (y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard d <= days[m - 1] else { return nil }
        return (y, m, d)
    }

    static func civil(_ t: CELTimestamp) -> (Int, Int, Int) {
        var time = time_t(t.seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        return (Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday))
    }
}

extension CELError {
    /// A "no matching overload" error for host functions.
    public static func noSuchOverloadPublic(_ function: String, _ args: [CELValue]) -> CELError {
        let types = args.map { $0.celType.name }.joined(separator: ", ")
        return CELError(.noSuchOverload, "found no matching overload for '\(function)' applied to '(\(types))'")
    }
}
