/// A CEL map: keys are int, uint, bool or string, and numerically equal keys are the same key,
/// so `{1u: 'a'}[1]` and `{1: 'a'}[1.0]` find the entry. Iteration follows insertion order.
public struct CELMap: Sendable, Sequence {
    /// A normalised map key: an int and a uint of the same value are one key.
    public enum Key: Hashable, Sendable {
        case int(Int64)
        case bigUInt(UInt64)  // only values above Int64.max
        case bool(Bool)
        case string(String)

        /// The key for a value, or nil when the value's type cannot be a map key.
        public init?(_ value: CELValue) {
            switch value {
            case let .int(v): self = .int(v)
            case let .uint(v): self = v <= UInt64(Int64.max) ? .int(Int64(v)) : .bigUInt(v)
            case let .bool(v): self = .bool(v)
            case let .string(v): self = .string(v)
            default: return nil
            }
        }

        /// The key a lookup with this value finds, including a whole double; nil when none can match.
        init?(lookup value: CELValue) {
            if case let .double(d) = value {
                guard d.rounded(.towardZero) == d else { return nil }
                if d >= -9_223_372_036_854_775_808.0 && d < 9_223_372_036_854_775_808.0 {
                    self = .int(Int64(d))
                } else if d >= 0 && d < 18_446_744_073_709_551_616.0 {
                    self = .bigUInt(UInt64(d))
                } else {
                    return nil
                }
                return
            }
            self.init(value)
        }
    }

    private var storage: [Key: Int] = [:]
    private var entries: [(key: CELValue, value: CELValue)] = []

    public init() {}

    /// Creates a map with capacity for `count` entries.
    public init(minimumCapacity count: Int) {
        storage.reserveCapacity(count)
        entries.reserveCapacity(count)
    }

    public var count: Int { entries.count }
    public var isEmpty: Bool { entries.isEmpty }

    /// The map's keys, in insertion order.
    public var keys: [CELValue] { entries.map(\.key) }

    /// Looks a value up by a CEL value, matching numbers across int, uint and double.
    public subscript(key: CELValue) -> CELValue? {
        get {
            guard let normalised = Key(lookup: key), let index = storage[normalised] else { return nil }
            return entries[index].value
        }
        set {
            guard let normalised = Key(key) else { return }
            if let index = storage[normalised] {
                if let newValue { entries[index].value = newValue } else { remove(normalised, at: index) }
            } else if let newValue {
                storage[normalised] = entries.count
                entries.append((key, newValue))
            }
        }
    }

    /// Looks a value up by a string key, the common case of JSON data.
    @inline(__always)
    public subscript(string key: String) -> CELValue? {
        guard let index = storage[.string(key)] else { return nil }
        return entries[index].value
    }

    /// Inserts an entry; false when the key was already present (CEL map literals refuse it).
    mutating func insertNew(key: CELValue, normalised: Key, value: CELValue) -> Bool {
        if storage[normalised] != nil { return false }
        storage[normalised] = entries.count
        entries.append((key, value))
        return true
    }

    private mutating func remove(_ key: Key, at index: Int) {
        entries.remove(at: index)
        storage[key] = nil
        for (otherKey, otherIndex) in storage where otherIndex > index { storage[otherKey] = otherIndex - 1 }
    }

    public func makeIterator() -> some IteratorProtocol<(key: CELValue, value: CELValue)> {
        entries.makeIterator()
    }
}
