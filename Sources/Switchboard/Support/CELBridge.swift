import CEL
import Foundation

/// Conversions between Foundation dates and CEL timestamps.
enum CELTimestampBridge {
    static func parse(_ text: String) throws -> Date {
        let timestamp = try CELTimestamp.parse(text)
        return Date(microseconds: Microseconds(timestamp.nanosecondsSinceEpoch / 1000))
    }

    static func date(_ timestamp: CELTimestamp) -> Date {
        Date(microseconds: Microseconds(timestamp.nanosecondsSinceEpoch / 1000))
    }

    static func timestamp(_ date: Date) -> CELTimestamp {
        CELTimestamp(nanosecondsSinceEpoch: Int128(date.microseconds) * 1000) ?? CELTimestamp(secondsSinceEpoch: 0)!
    }
}
