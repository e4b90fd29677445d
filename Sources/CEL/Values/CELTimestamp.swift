import Foundation

/// A point in time with nanosecond precision, between 0001-01-01 and 9999-12-31 UTC.
public struct CELTimestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// Nanoseconds since 1970-01-01T00:00:00Z.
    public let nanosecondsSinceEpoch: Int128

    static let minSeconds: Int128 = -62_135_596_800  // 0001-01-01T00:00:00Z
    static let maxSeconds: Int128 = 253_402_300_799  // 9999-12-31T23:59:59Z

    /// Creates a timestamp; nil outside CEL's range of years 1 to 9999.
    public init?(nanosecondsSinceEpoch nanos: Int128) {
        guard nanos >= Self.minSeconds * 1_000_000_000, nanos < (Self.maxSeconds + 1) * 1_000_000_000 else {
            return nil
        }
        self.nanosecondsSinceEpoch = nanos
    }

    /// Creates a timestamp from whole seconds since the epoch; nil outside CEL's range.
    public init?(secondsSinceEpoch seconds: Int64) {
        self.init(nanosecondsSinceEpoch: Int128(seconds) * 1_000_000_000)
    }

    /// Creates a timestamp from a Foundation date, truncated to the microsecond.
    public init?(_ date: Date) {
        let micros = (date.timeIntervalSince1970 * 1_000_000).rounded(.down)
        guard micros.isFinite, abs(micros) < 1e18 else { return nil }
        self.init(nanosecondsSinceEpoch: Int128(Int64(micros)) * 1000)
    }

    public var seconds: Int64 { Int64(floorDiv(nanosecondsSinceEpoch, 1_000_000_000)) }
    public var nanos: Int64 { Int64(floorMod(nanosecondsSinceEpoch, 1_000_000_000)) }

    public static func < (lhs: CELTimestamp, rhs: CELTimestamp) -> Bool {
        lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch
    }

    /// RFC 3339 in UTC, with as many fraction digits as needed.
    public var description: String {
        let civil = CivilTime(secondsSinceEpoch: seconds)
        var text = String(format: "%04d-%02d-%02dT%02d:%02d:%02d", civil.year, civil.month, civil.day, civil.hour,
                          civil.minute, civil.second)
        if nanos != 0 {
            var fraction = String(nanos)
            fraction = String(repeating: "0", count: 9 - fraction.count) + fraction
            while fraction.hasSuffix("0") { fraction.removeLast() }
            text += "." + fraction
        }
        return text + "Z"
    }

    /// Parses an RFC 3339 timestamp (`2009-02-13T23:31:30.123Z`, `...+01:00`).
    public static func parse(_ text: String) throws(CELError) -> CELTimestamp {
        let bytes = Array(text.utf8)
        var position = 0
        func digits(_ count: Int) throws(CELError) -> Int {
            guard position + count <= bytes.count else { throw .invalidArgument("timestamp '\(text)' is not RFC 3339") }
            var value = 0
            for _ in 0 ..< count {
                let byte = bytes[position]
                guard byte >= 48 && byte <= 57 else { throw .invalidArgument("timestamp '\(text)' is not RFC 3339") }
                value = value * 10 + Int(byte - 48)
                position += 1
            }
            return value
        }
        func expect(_ characters: String) throws(CELError) {
            guard position < bytes.count, characters.utf8.contains(bytes[position]) else {
                throw .invalidArgument("timestamp '\(text)' is not RFC 3339")
            }
            position += 1
        }
        let year = try digits(4); try expect("-")
        let month = try digits(2); try expect("-")
        let day = try digits(2); try expect("Tt ")
        let hour = try digits(2); try expect(":")
        let minute = try digits(2); try expect(":")
        let second = try digits(2)
        var fraction: Int128 = 0
        if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
            position += 1
            var count = 0
            while position < bytes.count, bytes[position] >= 48, bytes[position] <= 57 {
                if count < 9 { fraction = fraction * 10 + Int128(bytes[position] - 48) }
                count += 1
                position += 1
            }
            guard count > 0 else { throw .invalidArgument("timestamp '\(text)' is not RFC 3339") }
            for _ in count ..< 9 where count < 9 { fraction *= 10 }
        }
        var offset = 0
        guard position < bytes.count else { throw .invalidArgument("timestamp '\(text)' has no time zone offset") }
        switch bytes[position] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            position += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[position] == UInt8(ascii: "-") ? -1 : 1
            position += 1
            let hours = try digits(2); try expect(":")
            let minutes = try digits(2)
            offset = sign * (hours * 3600 + minutes * 60)
        default:
            throw .invalidArgument("timestamp '\(text)' has no time zone offset")
        }
        guard position == bytes.count, (1 ... 12).contains(month), day >= 1,
              day <= CivilTime.daysInMonth(year: year, month: month), hour < 24, minute < 60, second < 61
        else { throw .invalidArgument("timestamp '\(text)' is not a valid RFC 3339 time") }
        guard year >= 1 else { throw .range("timestamp '\(text)' is before year 1") }
        let days = CivilTime.daysFromCivil(year: year, month: month, day: day)
        let seconds = Int128(days) * 86_400 + Int128(hour * 3600 + minute * 60 + second - offset)
        guard let timestamp = CELTimestamp(nanosecondsSinceEpoch: seconds * 1_000_000_000 + fraction) else {
            throw .range("timestamp '\(text)' is out of range")
        }
        return timestamp
    }
}

/// A signed span of time with nanosecond precision, within the range of a signed 64-bit count of
/// nanoseconds (about ±292 years), as cel-go's durations.
public struct CELDuration: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let nanoseconds: Int128

    static let limit = Int128(Int64.max)

    /// Creates a duration; nil outside the range of Int64 nanoseconds.
    public init?(nanoseconds: Int128) {
        guard nanoseconds >= Int128(Int64.min), nanoseconds <= Self.limit else { return nil }
        self.nanoseconds = nanoseconds
    }

    public static func < (lhs: CELDuration, rhs: CELDuration) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Seconds with a fraction where needed: `1.5s`, `-0.000000001s`, `3600s`.
    public var description: String {
        let magnitude = nanoseconds.magnitude
        var text = nanoseconds < 0 ? "-" : ""
        text += String(magnitude / 1_000_000_000)
        let fraction = magnitude % 1_000_000_000
        if fraction != 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 9 - digits.count) + digits
            while digits.hasSuffix("0") { digits.removeLast() }
            text += "." + digits
        }
        return text + "s"
    }

    /// Parses a Go-style duration: `1h30m`, `1.5s`, `-250ms`, `10us`, `3ns`.
    public static func parse(_ text: String) throws(CELError) -> CELDuration {
        var scalars = Array(text.unicodeScalars)[...]
        var negative = false
        if let first = scalars.first, first == "-" || first == "+" {
            negative = first == "-"
            scalars = scalars.dropFirst()
        }
        if scalars.count == 1, scalars.first == "0" { return CELDuration(nanoseconds: 0)! }
        guard !scalars.isEmpty else { throw .invalidArgument("duration '\(text)' is empty") }
        var total: Int128 = 0
        while !scalars.isEmpty {
            var whole: Int128 = 0
            var fraction: Int128 = 0
            var fractionScale: Int128 = 1
            var sawDigit = false
            while let c = scalars.first, c.value >= 48, c.value <= 57 {
                whole = whole * 10 + Int128(c.value - 48)
                guard whole < 1 << 100 else { throw .range("duration '\(text)' is out of range") }
                sawDigit = true
                scalars = scalars.dropFirst()
            }
            if scalars.first == "." {
                scalars = scalars.dropFirst()
                while let c = scalars.first, c.value >= 48, c.value <= 57 {
                    if fractionScale < 1_000_000_000_000_000_000 {
                        fraction = fraction * 10 + Int128(c.value - 48)
                        fractionScale *= 10
                    }
                    sawDigit = true
                    scalars = scalars.dropFirst()
                }
            }
            guard sawDigit else { throw .invalidArgument("duration '\(text)' is not a duration") }
            var unit = ""
            while let c = scalars.first, c != ".", !(c.value >= 48 && c.value <= 57) {
                unit.unicodeScalars.append(c)
                scalars = scalars.dropFirst()
            }
            let scale: Int128
            switch unit {
            case "ns": scale = 1
            case "us", "µs", "μs": scale = 1000
            case "ms": scale = 1_000_000
            case "s": scale = 1_000_000_000
            case "m": scale = 60_000_000_000
            case "h": scale = 3_600_000_000_000
            default: throw .invalidArgument("duration '\(text)' has unknown unit '\(unit)'")
            }
            total += whole * scale + fraction * scale / fractionScale
            guard total <= limit * 2 else { throw .range("duration '\(text)' is out of range") }
        }
        guard let duration = CELDuration(nanoseconds: negative ? -total : total) else {
            throw .range("duration '\(text)' is out of range")
        }
        return duration
    }
}

/// Calendar arithmetic in the proleptic Gregorian calendar (Howard Hinnant's algorithms).
struct CivilTime {
    var year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int
    var dayOfWeek: Int  // 0 = Sunday
    var dayOfYear: Int  // 0-based

    init(secondsSinceEpoch seconds: Int64) {
        let days = Int(floorDiv(Int128(seconds), 86_400))
        let secondOfDay = Int(floorMod(Int128(seconds), 86_400))
        (year, month, day) = Self.civilFromDays(days)
        hour = secondOfDay / 3600
        minute = secondOfDay / 60 % 60
        second = secondOfDay % 60
        dayOfWeek = Int(floorMod(Int128(days + 4), 7))
        dayOfYear = days - Self.daysFromCivil(year: year, month: 1, day: 1)
    }

    static func isLeap(_ year: Int) -> Bool { year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

@inline(__always) func floorDiv(_ a: Int128, _ b: Int128) -> Int128 {
    let q = a / b
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q
}

@inline(__always) func floorMod(_ a: Int128, _ b: Int128) -> Int128 {
    let r = a % b
    return r != 0 && (r < 0) != (b < 0) ? r + b : r
}
