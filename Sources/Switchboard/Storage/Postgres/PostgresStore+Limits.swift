import Foundation
import PostgresNIO

/// The counters instances share (``SharedLimits``): a row per token bucket, a row per slot, a row
/// per versioned value. Each operation is one statement.
extension PostgresStore: SharedLimits {
    public var sharedLimits: (any SharedLimits)? { self }

    public func takeToken(_ name: String, capacity: Double, perSecond: Double) async throws -> Duration {
        // One statement: the row lock is waited for, never skipped, so no two takers spend one token.
        // Tokens go below zero: each taker owes its place in the line and waits for it.
        let rows = try await rows("""
            INSERT INTO limit_buckets AS b (name, tokens, updated_at) VALUES (\(name), \(capacity - 1), clock_timestamp())
            ON CONFLICT (name) DO UPDATE SET
              tokens = LEAST(\(capacity), b.tokens + EXTRACT(EPOCH FROM clock_timestamp() - b.updated_at) * \(perSecond)) - 1,
              updated_at = clock_timestamp()
            RETURNING tokens
            """)
        let tokens = try rows.first.map { try $0.decode(Double.self) } ?? 0
        return tokens >= 0 ? .zero : .milliseconds(Int64((-tokens / perSecond * 1000).rounded(.up)))
    }

    public func takeSlot(_ name: String, limit: Int, holder: InstanceID, hold: Duration) async throws -> Int? {
        let key = "\(name)\u{0}\(limit)"
        if !slotsMade.withLock({ $0.contains(key) }) {
            try await rows("""
                INSERT INTO limit_slots (name, slot) SELECT \(name), generate_series(0, \(limit - 1)) ON CONFLICT DO NOTHING
                """)
            slotsMade.withLock { _ = $0.insert(key) }
        }
        // Slots are distinct rows: skipping one another takes right now is what is wanted.
        let taken = try await rows("""
            UPDATE limit_slots SET holder = \(holder.rawValue),
              expires_at = clock_timestamp() + make_interval(secs => \(hold.timeInterval))
            WHERE name = \(name) AND slot = (
              SELECT slot FROM limit_slots
              WHERE name = \(name) AND slot < \(limit) AND (holder IS NULL OR expires_at < clock_timestamp())
              LIMIT 1 FOR UPDATE SKIP LOCKED)
            RETURNING slot
            """)
        return try taken.first.map { try $0.decode(Int.self) }
    }

    public func releaseSlot(_ name: String, slot: Int, holder: InstanceID) async throws {
        try await rows("""
            UPDATE limit_slots SET holder = NULL, expires_at = NULL
            WHERE name = \(name) AND slot = \(slot) AND holder = \(holder.rawValue)
            """)
    }

    public func releaseSlots(heldBy holder: InstanceID) async throws {
        try await rows("UPDATE limit_slots SET holder = NULL, expires_at = NULL WHERE holder = \(holder.rawValue)")
    }

    public func sharedValue(_ name: String) async throws -> SharedValue? {
        try await rows("SELECT text, version FROM shared_values WHERE name = \(name)").first.map { row in
            let (text, version) = try row.decode((String, Int64).self)
            return SharedValue(text: text, version: version)
        }
    }

    public func replaceSharedValue(_ name: String, with text: String, expecting version: Int64?) async throws -> Bool {
        let written = if let version {
            try await rows("""
                UPDATE shared_values SET text = \(text), version = version + 1
                WHERE name = \(name) AND version = \(version) RETURNING version
                """)
        } else {
            try await rows("""
                INSERT INTO shared_values (name, text, version) VALUES (\(name), \(text), 1)
                ON CONFLICT (name) DO NOTHING RETURNING version
                """)
        }
        return !written.isEmpty
    }
}
