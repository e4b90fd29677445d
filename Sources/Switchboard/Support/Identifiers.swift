import Foundation

/// A prefixed, time-ordered identifier (`run_01J...`): 48 bits of milliseconds and 80 random bits
/// in Crockford base32, so ids sort by creation time and serve as pagination cursors.
public protocol PrefixedID: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible
where RawValue == String {
    static var prefix: String { get }
    init(rawValue: String)
}

extension PrefixedID {
    public init(_ rawValue: String) { self.init(rawValue: rawValue) }

    /// A new identifier for the given instant.
    public static func generate(at date: Date = Date()) -> Self {
        Self(rawValue: prefix + "_" + TimeOrderedID.make(milliseconds: UInt64(max(0, date.timeIntervalSince1970 * 1000))))
    }

    public var description: String { rawValue }
}

public struct RunID: PrefixedID {
    public static let prefix = "run"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

public struct EventID: PrefixedID {
    public static let prefix = "evt"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

enum TimeOrderedID {
    private static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)

    static func make(milliseconds: UInt64) -> String {
        var bytes = [UInt8](repeating: 0, count: 26)
        var time = milliseconds
        for i in stride(from: 9, through: 0, by: -1) {
            bytes[i] = alphabet[Int(time & 31)]
            time >>= 5
        }
        var random = SystemRandomNumberGenerator()
        var high = random.next() as UInt64
        var low = random.next() as UInt64
        for i in 10 ..< 26 {
            if i < 18 {
                bytes[i] = alphabet[Int(high & 31)]
                high >>= 5
            } else {
                bytes[i] = alphabet[Int(low & 31)]
                low >>= 5
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
