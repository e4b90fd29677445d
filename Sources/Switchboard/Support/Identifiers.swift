import Foundation
import Synchronization

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
        Self(rawValue: TimeOrderedID.make(prefix: prefix, milliseconds: UInt64(max(0, date.timeIntervalSince1970 * 1000))))
    }

    /// The least identifier of the instant `date`: every identifier made at or after it sorts at
    /// or after this, every one made before sorts before. Time filters on tables keyed by these
    /// identifiers are ranges of the key (`id >= lowerBound(since) AND id < lowerBound(until)`).
    public static func lowerBound(at date: Date) -> Self {
        Self(rawValue: String(TimeOrderedID.make(prefix: prefix, milliseconds: UInt64(max(0, date.timeIntervalSince1970 * 1000)))
            .dropLast(16)))
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

    /// `<prefix>_` and 26 characters, written straight into the string (one allocation per id).
    static func make(prefix: String, milliseconds: UInt64) -> String {
        let prefixBytes = prefix.utf8.count
        return String(unsafeUninitializedCapacity: prefixBytes + 27) { buffer in
            var at = buffer.initialize(fromContentsOf: prefix.utf8)
            buffer[at] = UInt8(ascii: "_")
            at += 1
            var time = milliseconds
            for i in stride(from: at + 9, through: at, by: -1) {
                buffer[i] = alphabet[Int(time & 31)]
                time >>= 5
            }
            var (high, low) = IDRandom.next()
            for i in at + 10 ..< at + 18 {
                buffer[i] = alphabet[Int(high & 31)]
                high >>= 5
            }
            for i in at + 18 ..< at + 26 {
                buffer[i] = alphabet[Int(low & 31)]
                low >>= 5
            }
            return at + 26
        }
    }
}

/// The random part of ids: xoshiro256** seeded from the system's generator, so that making an
/// id costs no system call. Ids need to be unique, not secret (API keys use the system generator).
enum IDRandom {
    private static let state = Mutex<(UInt64, UInt64, UInt64, UInt64)>({
        var system = SystemRandomNumberGenerator()
        return (system.next(), system.next(), system.next(), system.next() | 1)
    }())

    static func next() -> (UInt64, UInt64) {
        state.withLock { s in (step(&s), step(&s)) }
    }

    private static func step(_ s: inout (UInt64, UInt64, UInt64, UInt64)) -> UInt64 {
        let result = rotate(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotate(s.3, 45)
        return result
    }

    private static func rotate(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
