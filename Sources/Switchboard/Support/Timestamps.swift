import Foundation

/// Microseconds since the epoch: how the store keeps instants, exact and sortable.
public typealias Microseconds = Int64

extension Date {
    var microseconds: Microseconds { Microseconds((timeIntervalSince1970 * 1_000_000).rounded()) }
    init(microseconds: Microseconds) { self.init(timeIntervalSince1970: Double(microseconds) / 1_000_000) }
    /// This date as the store gives it back: to the microsecond.
    var storedPrecision: Date { Date(microseconds: microseconds) }

    /// RFC 3339 in UTC with milliseconds, as the API writes times.
    var rfc3339: String {
        let micros = microseconds
        let seconds = Int(floor(Double(micros) / 1_000_000))
        let millis = Int((micros - Int64(seconds) * 1_000_000) / 1000)
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        // Formatted by hand: String(format:) is slow on Linux.
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func digits(_ value: Int, _ count: Int) {
            var divisor = 1
            for _ in 1 ..< count { divisor *= 10 }
            var rest = value
            while divisor > 0 {
                bytes.append(UInt8(48 + (rest / divisor) % 10))
                rest %= divisor
                divisor /= 10
            }
        }
        digits(Int(parts.tm_year) + 1900, 4); bytes.append(45)
        digits(Int(parts.tm_mon) + 1, 2); bytes.append(45)
        digits(Int(parts.tm_mday), 2); bytes.append(84)
        digits(Int(parts.tm_hour), 2); bytes.append(58)
        digits(Int(parts.tm_min), 2); bytes.append(58)
        digits(Int(parts.tm_sec), 2); bytes.append(46)
        digits(millis, 3); bytes.append(90)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Parses RFC 3339 (any offset, optional fraction).
    init?(rfc3339 text: String) {
        guard let timestamp = try? CELTimestampBridge.parse(text) else { return nil }
        self = timestamp
    }
}

/// A source of the current time, injected so that tests control it.
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The system clock.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// Parses durations as configuration writes them: `250ms`, `5s`, `10m`, `72h`, `1h30m`.
public enum ConfigDuration {
    public static func parse(_ text: String) -> Duration? {
        var total: Int64 = 0
        var number: Int64? = nil
        var unit = ""
        var sawAny = false
        func flush() -> Bool {
            guard let n = number else { return unit.isEmpty }
            let ms: Int64
            switch unit {
            case "ms": ms = n
            case "s": ms = n * 1000
            case "m": ms = n * 60_000
            case "h": ms = n * 3_600_000
            case "d": ms = n * 86_400_000
            default: return false
            }
            total += ms
            number = nil
            unit = ""
            sawAny = true
            return true
        }
        for c in text.trimmingCharacters(in: .whitespaces) {
            if let digit = c.wholeNumberValue, c.isASCII {
                if !unit.isEmpty { guard flush() else { return nil } }
                let (r, o) = (number ?? 0).multipliedReportingOverflow(by: 10)
                guard !o, r < 1_000_000_000_000 else { return nil }
                number = r + Int64(digit)
            } else if c.isLetter {
                guard number != nil else { return nil }
                unit.append(c)
            } else {
                return nil
            }
        }
        guard flush(), sawAny else { return nil }
        return .milliseconds(total)
    }

    /// The duration written back in the shortest configuration form.
    public static func format(_ duration: Duration) -> String {
        let ms = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }
}

extension Duration {
    var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
