import CEL
import Foundation

/// A configured connector instance (`connectors/<id>.yaml`): its kind and settings.
///
/// Kind-specific settings are kept as data here; each connector kind decodes and checks its own.
public struct ConnectorConfig: Sendable {
    public var id: String
    public var kind: String
    /// Every key of the file except `id` and `kind`, after environment substitution.
    public var settings: [String: JSON]
    public var file: String
    /// The line of each top-level key, for problems found later.
    public var keyLines: [String: Int] = [:]

    public init(id: String, kind: String, settings: [String: JSON], file: String, keyLines: [String: Int] = [:]) {
        self.id = id
        self.kind = kind
        self.settings = settings
        self.file = file
        self.keyLines = keyLines
    }

    /// Keys common to every kind.
    static let commonKeys = ["id", "kind", "description", "retry", "rate_limit", "timeout", "concurrency", "allow_networks",
                             "circuit_breaker"]
    /// Setting names whose values are secrets: never logged, never returned by the API.
    static let secretMarkers = ["secret", "token", "password", "api_key", "bearer", "value"]

    static func load(_ node: YAMLNode, _ collector: inout ProblemCollector, registry: ConnectorRegistry) -> ConnectorConfig? {
        guard let mapping = node.mapping else {
            collector.error(node, "a connector file must be a mapping with at least 'id' and 'kind'")
            return nil
        }
        guard let id = node["id"]?.scalar, !id.isEmpty else {
            collector.error(node, "missing key 'id' in connector")
            return nil
        }
        guard let kind = node["kind"]?.scalar else {
            collector.error(node, "missing key 'kind' in connector '\(id)'; expected one of: \(registry.kinds.joined(separator: ", "))")
            return nil
        }
        guard let specific = registry.settingKeys(of: kind) else {
            collector.error(node["kind"]!, "unknown connector kind '\(kind)'; expected one of: \(registry.kinds.joined(separator: ", "))")
            return nil
        }
        collector.checkKeys(node, allowed: commonKeys + specific, context: "connector '\(id)' (kind \(kind))")
        if let retry = node["retry"] {
            collector.checkKeys(retry, allowed: ["max_attempts", "initial_interval", "backoff", "max_interval", "max_age"],
                                context: "retry")
            for key in ["initial_interval", "max_interval", "max_age"] {
                if let value = retry[key], ConfigDuration.parse(value.scalar ?? "") == nil {
                    collector.error(value, "'\(value.scalar ?? "")' is not a duration; write it like 250ms, 5s, 10m or 72h")
                }
            }
        }
        if let rate = node["rate_limit"], RateLimitSpec(rate.scalar ?? "") == nil {
            collector.error(rate, "rate_limit '\(rate.scalar ?? "")' must be written N/s, N/m or N/h")
        }
        if let networks = node["allow_networks"] {
            for item in networks.sequence ?? [networks] where CIDR(item.scalar ?? "") == nil {
                collector.error(item, "allow_networks entry '\(item.scalar ?? "")' is not a CIDR range such as 10.20.0.0/16")
            }
        }
        var settings: [String: JSON] = [:]
        var lines: [String: Int] = [:]
        for entry in mapping where entry.key != "id" && entry.key != "kind" {
            settings[entry.key] = entry.value.json
            lines[entry.key] = entry.keyNode.line
        }
        return ConnectorConfig(id: id, kind: kind, settings: settings, file: node.file, keyLines: lines)
    }

    /// The settings with every secret replaced by `••••`.
    public var redactedSettings: JSON {
        func redact(_ key: String, _ value: JSON) -> JSON {
            let lower = key.lowercased()
            if Self.secretMarkers.contains(where: { lower.contains($0) }), value != .null { return "••••" }
            switch value {
            case let .object(o): return .object(Dictionary(uniqueKeysWithValues: o.map { ($0.key, redact($0.key, $0.value)) }))
            case let .array(a): return .array(a.map { redact(key, $0) })
            default: return value
            }
        }
        return .object(Dictionary(uniqueKeysWithValues: settings.map { ($0.key, redact($0.key, $0.value)) }))
    }
}

/// A rate limit written `N/s`, `N/m` or `N/h`.
public struct RateLimitSpec: Sendable, Equatable {
    public var count: Int
    public var per: Duration

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let count = Int(parts[0].trimmingCharacters(in: .whitespaces)), count > 0 else { return nil }
        switch parts[1].trimmingCharacters(in: .whitespaces) {
        case "s": per = .seconds(1)
        case "m": per = .seconds(60)
        case "h": per = .seconds(3600)
        default: return nil
        }
        self.count = count
    }
}
