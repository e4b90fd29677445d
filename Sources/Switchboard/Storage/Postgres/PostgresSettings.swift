import Foundation
import PostgresNIO

/// Where a PostgreSQL database is and how to reach it, read from a URL as libpq reads one:
/// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=disable|prefer|require&pool_size=N]`.
/// The password never appears in `description`.
public struct PostgresSettings: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    public enum TLSMode: String, Sendable { case disable, prefer, require }
    public var tls: TLSMode
    /// How many connections the pool keeps at most (`pool_size`, default 10).
    public var poolSize: Int

    public init(url text: String) throws {
        guard let url = URLComponents(string: text), let scheme = url.scheme, ["postgres", "postgresql"].contains(scheme) else {
            throw StoreError.unsupportedURL("a PostgreSQL URL looks like postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        }
        guard let host = url.host, !host.isEmpty else { throw StoreError.unsupportedURL("the PostgreSQL URL names no host") }
        self.host = host
        port = url.port ?? 5432
        username = url.percentEncodedUser.flatMap { $0.removingPercentEncoding } ?? "postgres"
        password = url.percentEncodedPassword.flatMap { $0.removingPercentEncoding }
        database = String(url.path.drop(while: { $0 == "/" }))
        if database.isEmpty { database = username }
        tls = .prefer
        poolSize = 10
        for item in url.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                switch item.value ?? "" {
                case "disable": tls = .disable
                case "allow", "prefer": tls = .prefer
                case "require", "verify-ca", "verify-full": tls = .require
                default: throw StoreError.unsupportedURL("sslmode must be disable, prefer or require, got '\(item.value ?? "")'")
                }
            case "pool_size":
                guard let size = item.value.flatMap(Int.init), (1 ... 1000).contains(size) else {
                    throw StoreError.unsupportedURL("pool_size must be a whole number from 1 to 1000, got '\(item.value ?? "")'")
                }
                poolSize = size
            default:
                break  // other libpq parameters (application_name, connect_timeout, ...) are not needed here
            }
        }
    }

    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    var clientConfiguration: PostgresClient.Configuration {
        let tlsSetting: PostgresClient.Configuration.TLS = switch tls {
        case .disable: .disable
        case .prefer: .prefer(.makeClientConfiguration())
        case .require: .require(.makeClientConfiguration())
        }
        var configuration = PostgresClient.Configuration(host: host, port: port, username: username, password: password,
                                                         database: database, tls: tlsSetting)
        configuration.options.maximumConnections = poolSize
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}
