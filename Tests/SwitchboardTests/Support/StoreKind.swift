import Foundation
import Logging
import PostgresNIO
import Testing
@testable import Switchboard

/// The stores a contract test runs against: SQLite always, PostgreSQL when
/// `SWITCHBOARD_TEST_POSTGRES_URL` names a server (then it must be reachable: a test fails, not
/// skips, when it is not).
enum StoreKind: String, Sendable, CustomTestStringConvertible {
    case sqlite, postgres

    static let postgresURL = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }

    static var available: [StoreKind] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    var testDescription: String { rawValue }

    /// Runs `body` with a new, migrated, empty store of this kind, removed afterwards.
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        var logger = Logger(label: "test.store")
        logger.logLevel = .warning
        switch self {
        case .sqlite:
            let directory = try TemporaryDirectory()
            let store = try SQLiteStore(path: directory.file("db.sqlite"))
            try await store.migrate()
            try await store.migrate()  // migrating twice is harmless
            try await body(store)
        case .postgres:
            let server = try PostgresSettings(url: try #require(Self.postgresURL))
            let name = "switchboard_test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
            try await Self.admin(server, logger: logger, "CREATE DATABASE \(name)")
            var settings = server
            settings.database = name
            do {
                try await DatabaseURL.postgres(settings).withStore(logger: logger) { store in
                    try await store.migrate()  // migrating twice is harmless
                    try await body(store)
                }
            } catch {
                try? await Self.admin(server, logger: logger, "DROP DATABASE \(name) WITH (FORCE)")
                throw error
            }
            try await Self.admin(server, logger: logger, "DROP DATABASE \(name) WITH (FORCE)")
        }
    }

    /// Runs one statement on the server's own database, on a connection of its own.
    static func admin(_ settings: PostgresSettings, logger: Logger, _ sql: String) async throws {
        _ = try await adminRows(settings, sql, logger: logger)
    }

    /// The rows of one query on `settings`' database, on a connection of its own.
    static func adminRows(_ settings: PostgresSettings, _ sql: String, logger: Logger = Logger(label: "test")) async throws -> [PostgresRow] {
        var configuration = PostgresConnection.Configuration(host: settings.host, port: settings.port, username: settings.username,
                                                             password: settings.password, database: settings.database, tls: .disable)
        configuration.options.connectTimeout = .seconds(5)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        let rows: [PostgresRow]
        do {
            rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        return rows
    }
}
