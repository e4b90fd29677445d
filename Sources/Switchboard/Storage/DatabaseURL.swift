import Foundation
import Logging

/// Where the store lives: `sqlite:PATH` (or a bare path) or `postgres://...`.
public enum DatabaseURL: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(PostgresSettings)

    /// The default: `./.switchboard/switchboard.sqlite`.
    public static let defaultValue = DatabaseURL.sqlite(path: ".switchboard/switchboard.sqlite")

    public init(_ text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(try PostgresSettings(url: text))
        } else if text.hasPrefix("sqlite:") {
            let path = String(text.dropFirst("sqlite:".count))
            guard !path.isEmpty else { throw StoreError.unsupportedURL("sqlite: needs a file path, as in sqlite:./data/switchboard.sqlite") }
            self = .sqlite(path: path.hasPrefix("//") ? String(path.dropFirst(2)) : path)
        } else if text.contains("://") {
            throw StoreError.unsupportedURL("unsupported database URL '\(text.split(separator: ":").first ?? "")://...'; use sqlite:PATH or postgres://...")
        } else {
            self = .sqlite(path: text)
        }
    }

    /// Opens the store, applies its migrations (creating an SQLite file if it does not exist), and
    /// runs `body` with it; a PostgreSQL store's connections live until `body` returns.
    public func withStore<Result: Sendable>(logger: Logger, _ body: (any Store) async throws -> Result) async throws -> Result {
        switch self {
        case let .sqlite(path):
            let store = try SQLiteStore(path: path)
            try await store.migrate()
            return try await body(store)
        case let .postgres(settings):
            let store = PostgresStore(settings: settings, logger: logger)
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await store.run() }
                defer { group.cancelAll() }
                try await store.migrate()
                return try await body(store)
            }
        }
    }
}
