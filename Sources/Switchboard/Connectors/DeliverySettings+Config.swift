import CEL
import Foundation
import Mustache

extension DeliverySettings {
    /// Reads the keys every connector kind shares: retry, timeout, concurrency, rate_limit,
    /// circuit_breaker, allow_networks, and signing for kinds that sign.
    public static func parse(_ config: ConnectorConfig, defaultConcurrency: Int = 64,
                             defaultRateLimit: RateLimitSpec? = nil) throws(ConnectorError) -> DeliverySettings
    {
        var settings = DeliverySettings()
        settings.concurrency = defaultConcurrency
        settings.rateLimit = defaultRateLimit
        let s = config.settings
        func duration(_ value: JSON?, _ key: String) throws(ConnectorError) -> Duration? {
            guard let value else { return nil }
            guard let text = value.stringValue, let parsed = ConfigDuration.parse(text) else {
                throw ConnectorError(key: key, "'\(value.text)' is not a duration; write it like 250ms, 5s, 10m or 72h")
            }
            return parsed
        }
        if let retry = s["retry"] {
            if case let .number(n)? = retry["max_attempts"] { settings.retry.maxAttempts = Int(n) }
            if case let .number(n)? = retry["backoff"] { settings.retry.backoff = n }
            if let d = try duration(retry["initial_interval"], "retry.initial_interval") { settings.retry.initialInterval = d }
            if let d = try duration(retry["max_interval"], "retry.max_interval") { settings.retry.maxInterval = d }
            if let d = try duration(retry["max_age"], "retry.max_age") { settings.retry.maxAge = d }
        }
        if let timeout = s["timeout"] {
            if let d = try duration(timeout["connect"], "timeout.connect") { settings.connectTimeout = d }
            if let d = try duration(timeout["total"], "timeout.total") { settings.totalTimeout = d }
        }
        if case let .number(n)? = s["concurrency"] {
            guard n >= 1 else { throw ConnectorError(key: "concurrency", "must be at least 1") }
            settings.concurrency = Int(n)
        }
        if let rate = s["rate_limit"]?.stringValue { settings.rateLimit = RateLimitSpec(rate) }
        if let breaker = s["circuit_breaker"] {
            guard case let .object(fields) = breaker else {
                throw ConnectorError(key: "circuit_breaker", "write it as { failures: 10, open_for: 30s }")
            }
            if let unknown = fields.keys.sorted().first(where: { !["failures", "open_for"].contains($0) }) {
                throw ConnectorError(key: "circuit_breaker.\(unknown)", "unknown key; expected failures and open_for")
            }
            if let value = fields["failures"] {
                guard case let .number(n) = value, n >= 1, n.rounded() == n else {
                    throw ConnectorError(key: "circuit_breaker.failures", "must be a whole number of at least 1")
                }
                settings.breakerThreshold = Int(n)
            }
            if let d = try duration(fields["open_for"], "circuit_breaker.open_for") { settings.breakerOpenFor = d }
        }
        if case let .array(networks)? = s["allow_networks"] {
            settings.allowNetworks = networks.compactMap { $0.stringValue.flatMap(CIDR.init) }
        }
        if case let .bool(follow)? = s["redirects"] { settings.followRedirects = follow }
        if case let .array(names)? = s["secret_headers"] {
            settings.secretHeaders = Set(names.compactMap { $0.stringValue?.lowercased() })
        }
        return settings
    }

    /// Standard Webhooks signing from `signing: { secret }`, `{ secrets: [...] }` or `signing: off`.
    static func signing(_ value: JSON?) throws(ConnectorError) -> StandardWebhooks? {
        guard let value else { return nil }
        if value == .bool(false) || value.stringValue == "off" { return nil }
        var texts: [String] = []
        if let secret = value["secret"]?.stringValue { texts.append(secret) }
        if case let .array(list)? = value["secrets"] { texts += list.compactMap(\.stringValue) }
        guard !texts.isEmpty else { throw ConnectorError(key: "signing", "give secret: whsec_..., secrets: [...], or signing: off") }
        var secrets: [SigningSecret] = []
        for text in texts {
            do { secrets.append(try SigningSecret(text)) } catch {
                throw ConnectorError(key: "signing", error.message)
            }
        }
        return StandardWebhooks(secrets: secrets)
    }
}

extension ValueTemplate {
    /// A template from configuration data: `= expr` is CEL, a string with `{{` is Mustache.
    static func parse(_ json: JSON, key: String) throws(ConnectorError) -> ValueTemplate {
        switch json {
        case let .object(object):
            var fields: [String: ValueTemplate] = [:]
            for (name, value) in object { fields[name] = try parse(value, key: "\(key).\(name)") }
            return .object(fields)
        case let .array(items):
            var parsed: [ValueTemplate] = []
            for (index, item) in items.enumerated() { parsed.append(try parse(item, key: "\(key)[\(index)]")) }
            return .array(parsed)
        case let .string(text):
            switch form(of: text) {
            case let .expression(source):
                do {
                    let program = try ExpressionEnvironment.shared.compile(source)
                    return .expression(Expression(source: source, program: program, location: SourceLocation(file: key, line: 1, column: 1)))
                } catch {
                    throw ConnectorError(key: key, "expression does not compile: \(error)")
                }
            case .template:
                do {
                    return .template(source: text, try mustache(text))
                } catch {
                    throw ConnectorError(key: key, "template is not valid Mustache: \(error)")
                }
            case .literal:
                return .literal(json)
            }
        default:
            return .literal(json)
        }
    }
}
