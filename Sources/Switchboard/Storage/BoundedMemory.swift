/// A map that keeps at most `capacity` entries, dropping the one first stored when full: the
/// storage of ``RecentEvents`` and ``RecentRuns``. Not synchronized; its owners hold it in a Mutex.
struct BoundedMemory<Key: Hashable, Value> {
    let capacity: Int
    private var entries: [Key: Value] = [:]
    /// Keys in the order they were first stored, oldest first, from `start` on. Keys removed since
    /// stay until their turn to go comes.
    private var order: [Key] = []
    private var start = 0

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { entries.count }

    subscript(key: Key) -> Value? { entries[key] }

    /// Stores `value`; a new key makes the oldest entries go while over capacity.
    mutating func store(_ value: Value, for key: Key) {
        guard entries.updateValue(value, forKey: key) == nil else { return }
        order.append(key)
        while entries.count > capacity, start < order.count {
            entries[order[start]] = nil
            start += 1
        }
        // Compact now and then, so that `order` stays a few times `capacity` long.
        if start >= capacity || order.count > 4 * capacity {
            order = order[start...].filter { entries[$0] != nil }
            start = 0
        }
    }

    mutating func remove(_ key: Key) {
        entries[key] = nil
    }
}
