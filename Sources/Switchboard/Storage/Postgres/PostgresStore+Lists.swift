import CEL
import Foundation
import PostgresNIO

/// The lists `inList()` reads, and the API keys, in ``PostgresStore``.
extension PostgresStore {
    // MARK: Lists

    public func putList(_ list: ListRecord, audit: AuditEntry?) async throws {
        try await transaction { [self] connection in
            if let audit { try await insert(audit, on: connection) }
            try await connection.query("LOCK TABLE lists IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            try await connection.query("DELETE FROM list_items WHERE list_name = \(list.name)", logger: logger)
            try await connection.query("""
                INSERT INTO lists (name, kind, revision) VALUES (\(list.name), \(list.kind.rawValue),
                  (SELECT COALESCE(MAX(revision), 0) + 1 FROM lists))
                ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, revision = excluded.revision
                """, logger: logger)
            for (position, item) in list.items.enumerated() {
                try await connection.query("""
                    INSERT INTO list_items (list_name, item, position) VALUES (\(list.name), \(item), \(position))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
        }
    }

    public func addListItems(_ name: String, items: [String], audit: AuditEntry?) async throws -> Bool {
        try await transaction { [self] connection in
            try await connection.query("LOCK TABLE lists IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            let updated = try await rows("""
                UPDATE lists SET revision = (SELECT MAX(revision) + 1 FROM lists) WHERE name = \(name) RETURNING name
                """, on: connection)
            guard !updated.isEmpty else { return false }
            if let audit { try await insert(audit, on: connection) }
            for item in items {
                try await connection.query("""
                    INSERT INTO list_items (list_name, item, position)
                    VALUES (\(name), \(item), (SELECT COALESCE(MAX(position), -1) + 1 FROM list_items WHERE list_name = \(name)))
                    ON CONFLICT DO NOTHING
                    """, logger: logger)
            }
            return true
        }
    }

    public func removeListItem(_ name: String, item: String, audit: AuditEntry?) async throws -> Bool {
        try await transaction { [self] connection in
            let removed = try await rows("""
                DELETE FROM list_items WHERE list_name = \(name) AND item = \(item) RETURNING item
                """, on: connection)
            guard !removed.isEmpty else { return false }
            if let audit { try await insert(audit, on: connection) }
            try await connection.query("LOCK TABLE lists IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            try await connection.query("UPDATE lists SET revision = (SELECT MAX(revision) + 1 FROM lists) WHERE name = \(name)",
                                       logger: logger)
            return true
        }
    }

    public func deleteList(_ name: String, audit: AuditEntry?) async throws -> Bool {
        try await transaction { [self] connection in
            let deleted = try await rows("DELETE FROM lists WHERE name = \(name) RETURNING name", on: connection)
            if !deleted.isEmpty, let audit { try await insert(audit, on: connection) }
            // Count deletions, so that listsRevision() changes even when the newest list went.
            try await connection.query("UPDATE meta SET value = value + 1 WHERE key = 'lists_deleted'", logger: logger)
            return !deleted.isEmpty
        }
    }

    public func list(_ name: String) async throws -> ListRecord? {
        guard let row = try await rows("SELECT name, kind, revision FROM lists WHERE name = \(name)").first else { return nil }
        return try await list(from: row)
    }

    public func lists() async throws -> [ListRecord] {
        var lists: [ListRecord] = []
        for row in try await rows("SELECT name, kind, revision FROM lists ORDER BY name") { lists.append(try await list(from: row)) }
        return lists
    }

    private func list(from row: PostgresRow) async throws -> ListRecord {
        let (name, kind, revision) = try row.decode((String, String, Int64).self)
        let items = try await rows("SELECT item FROM list_items WHERE list_name = \(name) ORDER BY position")
            .map { try $0.decode(String.self) }
        return ListRecord(name: name, kind: ListKind(rawValue: kind) ?? .string, items: items, revision: revision)
    }

    public func listsRevision() async throws -> Int64 {
        let row = try await rows("""
            SELECT (SELECT COALESCE(MAX(revision), 0) FROM lists), (SELECT value FROM meta WHERE key = 'lists_deleted')
            """).first
        guard let (revision, deletions) = try row?.decode((Int64, Int64).self) else { return 0 }
        return revision &* 1_000_003 &+ deletions
    }

    // MARK: API keys

    public func createAPIKey(_ key: APIKeyRecord, audit: AuditEntry?) async throws {
        try await transaction { [self] connection in
            try await connection.query("LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE", logger: logger)
            if try await !rows("SELECT 1 FROM api_keys WHERE name = \(key.name) AND revoked_at IS NULL", on: connection).isEmpty {
                throw StoreError.duplicate("an active API key named '\(key.name)' already exists")
            }
            try await connection.query("DELETE FROM api_keys WHERE name = \(key.name)", logger: logger)
            try await connection.query("""
                INSERT INTO api_keys (name, hash, scopes, created_at, expires_at)
                VALUES (\(key.name), \(key.hash), \(Self.encode(key.scopes)), \(key.createdAt.microseconds),
                        \(key.expiresAt?.microseconds))
                """, logger: logger)
            if let audit { try await insert(audit, on: connection) }
        }
    }

    public func apiKeys() async throws -> [APIKeyRecord] {
        try await rows("SELECT name, hash, scopes, created_at, revoked_at, expires_at FROM api_keys ORDER BY name").map(Self.apiKey(from:))
    }

    public func revokeAPIKey(named name: String, audit: AuditEntry?) async throws -> Bool {
        try await transaction { [self] connection in
            let revoked = try await rows("""
                UPDATE api_keys SET revoked_at = \(Date().microseconds) WHERE name = \(name) AND revoked_at IS NULL RETURNING name
                """, on: connection)
            guard !revoked.isEmpty else { return false }
            if let audit { try await insert(audit, on: connection) }
            return true
        }
    }

    public func apiKey(hash: String) async throws -> APIKeyRecord? {
        try await rows("SELECT name, hash, scopes, created_at, revoked_at, expires_at FROM api_keys WHERE hash = \(hash)").first
            .map(Self.apiKey(from:))
    }
}
