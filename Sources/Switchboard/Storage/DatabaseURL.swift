import Foundation

/// Where the store lives: `sqlite:PATH` (or a bare path) or `postgres://...`.
public enum DatabaseURL: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(String)

    /// The default: `./.switchboard/switchboard.sqlite`.
    public static let defaultValue = DatabaseURL.sqlite(path: ".switchboard/switchboard.sqlite")

    public init(_ text: String) throws {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(text)
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

    /// Opens the store and applies migrations (creating the database if it does not exist).
    public func open() async throws -> any Store {
        switch self {
        case let .sqlite(path):
            let store = try SQLiteStore(path: path)
            try await store.migrate()
            return store
        case .postgres:
            throw StoreError.unsupportedURL("the PostgreSQL store is not part of this build yet; use sqlite:PATH")
        }
    }
}
