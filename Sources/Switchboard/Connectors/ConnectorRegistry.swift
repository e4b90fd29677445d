import Foundation
import Synchronization

/// The connector kinds this process knows, by `kind:` name, as swift-jobs' `JobRegistry` knows
/// jobs. Built-in kinds are registered in one place (``ConnectorRegistry/shared``); a third party
/// registers its own the same way, before the configuration is loaded:
///
/// ```swift
/// ConnectorRegistry.shared.register(TicketingConnector.self)
/// ```
public final class ConnectorRegistry: Sendable {
    typealias Factory = @Sendable (ConnectorConfig, ConnectorBuildContext) throws -> any Connector

    private struct Entry: Sendable {
        var settingKeys: [String]
        var factory: Factory
    }

    private let entries = Mutex<[String: Entry]>([:])

    public init() {}

    /// The registry with the built-in kinds: http, slack, kyb and source.
    public static let shared: ConnectorRegistry = {
        let registry = ConnectorRegistry()
        registry.register(HTTPConnector.self)
        registry.register(SlackConnector.self)
        registry.register(KYBConnector.self)
        registry.register(SourceConnector.self)
        return registry
    }()

    /// Registers a kind. Registering a kind twice is a programming error.
    public func register<C: Connector>(_ type: C.Type) {
        entries.withLock { entries in
            precondition(entries[C.kind] == nil, "connector kind '\(C.kind)' is registered twice")
            entries[C.kind] = Entry(settingKeys: C.settingKeys) { config, context in try C(config: config, context: context) }
        }
    }

    /// Every registered kind, sorted.
    public var kinds: [String] { entries.withLock { Array($0.keys).sorted() } }

    /// The keys a kind accepts besides the common ones; nil for an unknown kind.
    public func settingKeys(of kind: String) -> [String]? { entries.withLock { $0[kind]?.settingKeys } }

    /// Builds a connector; nil when no such kind is registered.
    public func make(_ config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) -> (any Connector)? {
        guard let factory = entries.withLock({ $0[config.kind]?.factory }) else { return nil }
        do {
            return try factory(config, context)
        } catch let error as ConnectorError {
            throw error
        } catch {
            throw ConnectorError(key: "kind", "\(error)")
        }
    }
}
