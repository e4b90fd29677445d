import Foundation

/// The timestamp and duration accessors (`getFullYear`, `getHours`, ...), with optional time zone.
enum TimeFunctions {
    static let functions: [CELFunction] = [
        accessor("getFullYear") { $0.year },
        accessor("getMonth") { $0.month - 1 },
        accessor("getDayOfYear") { $0.dayOfYear },
        accessor("getDayOfMonth") { $0.day - 1 },
        accessor("getDate") { $0.day },
        accessor("getDayOfWeek") { $0.dayOfWeek },
        accessor("getHours", duration: { $0 / 3_600_000_000_000 }) { $0.hour },
        accessor("getMinutes", duration: { $0 / 60_000_000_000 }) { $0.minute },
        accessor("getSeconds", duration: { $0 / 1_000_000_000 }) { $0.second },
        CELFunction("getMilliseconds", style: .receiver, arities: [1, 2]) { args, _ throws(CELError) in
            switch args[0] {
            case let .timestamp(t) where args.count == 1 || isTimeZone(args[1]):
                return .int(t.nanos / 1_000_000)
            case let .duration(d) where args.count == 1:
                return .int(Int64(d.nanoseconds % 1_000_000_000 / 1_000_000))
            default: throw .noSuchOverload("getMilliseconds", args)
            }
        },
    ]

    private static func isTimeZone(_ value: CELValue) -> Bool {
        if case .string = value { return true }
        return false
    }

    private static func accessor(
        _ name: String, duration: (@Sendable (Int128) -> Int128)? = nil, _ field: @escaping @Sendable (CivilTime) -> Int
    ) -> CELFunction {
        CELFunction(name, style: .receiver, arities: [1, 2]) { args, _ throws(CELError) in
            switch args[0] {
            case let .timestamp(t):
                var offset = 0
                if args.count == 2 {
                    guard case let .string(zone) = args[1] else { throw .noSuchOverload(name, args) }
                    offset = try utcOffset(of: zone, at: t)
                }
                return .int(Int64(field(CivilTime(secondsSinceEpoch: t.seconds + Int64(offset)))))
            case let .duration(d) where args.count == 1:
                guard let duration else { throw .noSuchOverload(name, args) }
                return .int(Int64(duration(d.nanoseconds)))
            default:
                throw .noSuchOverload(name, args)
            }
        }
    }

    /// The offset from UTC, in seconds, of a zone (`UTC`, `America/New_York`, `+05:30`, `-02:00`) at an instant.
    static func utcOffset(of zone: String, at timestamp: CELTimestamp) throws(CELError) -> Int {
        let scalars = Array(zone.utf8)
        if let first = scalars.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") || (first >= 48 && first <= 57) {
            let sign = first == UInt8(ascii: "-") ? -1 : 1
            let body = first >= 48 && first <= 57 ? zone : String(zone.dropFirst())
            let parts = body.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let hours = Int(parts[0]), let minutes = Int(parts[1]), hours < 24, minutes < 60 else {
                throw .invalidArgument("invalid time zone '\(zone)'")
            }
            return sign * (hours * 3600 + minutes * 60)
        }
        guard let timeZone = TimeZone(identifier: zone) else { throw .invalidArgument("unknown time zone '\(zone)'") }
        return timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(timestamp.seconds)))
    }
}
