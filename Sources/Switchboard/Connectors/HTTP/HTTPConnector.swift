import CEL
import Foundation

/// The generic HTTP connector (`kind: http`): calls a customer's system.
///
/// Its operation `request` takes `method` (default POST), `path` or `url`, `query`, `headers`
/// and `body` (JSON data, or a string sent as is). Named operations in the YAML are presets of
/// it whose values may be templates over the run context. Every request is signed per
/// Standard Webhooks unless `signing: off`.
public struct HTTPConnector: Connector {
    public static let kind = "http"
    public static let settingKeys = ["base_url", "auth", "headers", "signing", "operations", "redirects", "success_statuses",
                                     "secret_headers", "callbacks"]

    enum Auth: Sendable {
        case bearer(String)
        case basic(username: String, password: String)
        case header(name: String, value: String)
    }

    struct Preset: Sendable {
        var method: String
        var path: ValueTemplate?
        var url: ValueTemplate?
        var query: ValueTemplate?
        var headers: ValueTemplate?
        var body: ValueTemplate?
        var outputHeaders: [String]
    }

    public let id: String
    public let delivery: DeliverySettings
    let baseURL: String?
    let auth: Auth?
    let defaultHeaders: [(String, String)]
    let presets: [String: Preset]
    let successStatuses: Set<Int>?
    let inbound: HTTPCallbacks?

    /// Callbacks for `wait: callback` steps, when the file has `callbacks:`.
    public var callbacks: (any ConnectorCallbacks)? { inbound }

    public var operations: [ConnectorOperation] {
        ([Self.request] + presets.keys.sorted().map { ConnectorOperation($0, inputs: Self.request.inputs, outputs: Self.request.outputs) })
    }

    /// The built-in operation; presets take the same inputs, all optional.
    static let request = ConnectorOperation(
        "request",
        inputs: [.init("method", .string), .init("path", .string), .init("url", .string), .init("query", .object),
                 .init("headers", .object), .init("body", .any)],
        outputs: [.init("status", .integer), .init("body", .any), .init("headers", .object)])
    static let inputs = request.inputs.map(\.name)

    public init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) {
        id = config.id
        let s = config.settings
        var delivery = try DeliverySettings.parse(config, defaultConcurrency: 64)
        delivery.signing = try DeliverySettings.signing(s["signing"])
        if s["signing"] == nil {
            throw ConnectorError(key: "signing", "an http connector signs every request: give signing: { secret: whsec_... } or signing: off")
        }
        self.delivery = delivery
        baseURL = s["base_url"]?.stringValue
        if let base = baseURL, URL(string: base)?.host == nil {
            throw ConnectorError(key: "base_url", "'\(base)' is not an absolute http(s) URL")
        }
        if let authValue = s["auth"] {
            if let token = authValue["bearer"]?.stringValue {
                auth = .bearer(token)
            } else if let basic = authValue["basic"], let user = basic["username"]?.stringValue,
                      let password = basic["password"]?.stringValue
            {
                auth = .basic(username: user, password: password)
            } else if let name = authValue["header"]?.stringValue, let value = authValue["value"]?.stringValue {
                auth = .header(name: name, value: value)
            } else {
                throw ConnectorError(key: "auth", "use { bearer: TOKEN }, { basic: { username, password } } or { header: NAME, value: VALUE }")
            }
        } else {
            auth = nil
        }
        if case let .object(headers)? = s["headers"] {
            defaultHeaders = headers.keys.sorted().compactMap { key in headers[key]?.stringValue.map { (key, $0) } }
        } else {
            defaultHeaders = []
        }
        if case let .array(statuses)? = s["success_statuses"] {
            successStatuses = Set(statuses.compactMap { $0.numberValue.map { Int($0) } })
        } else {
            successStatuses = nil
        }
        var presets: [String: Preset] = [:]
        if case let .object(operations)? = s["operations"] {
            for (name, spec) in operations {
                guard case .object = spec else { throw ConnectorError(key: "operations.\(name)", "must be a mapping") }
                if name == "request" { throw ConnectorError(key: "operations.request", "'request' is built in; name the preset otherwise") }
                let method = (spec["method"]?.stringValue ?? "POST").uppercased()
                if spec["path"] == nil && spec["url"] == nil && baseURL == nil {
                    throw ConnectorError(key: "operations.\(name)", "needs a path (with base_url) or a url")
                }
                presets[name] = Preset(
                    method: method,
                    path: try Self.template(spec["path"], key: "operations.\(name).path"),
                    url: try Self.template(spec["url"], key: "operations.\(name).url"),
                    query: try Self.template(spec["query"], key: "operations.\(name).query"),
                    headers: try Self.template(spec["headers"], key: "operations.\(name).headers"),
                    body: try Self.template(spec["body"], key: "operations.\(name).body"),
                    outputHeaders: (spec["output_headers"]?.arrayValue ?? []).compactMap { $0.stringValue?.lowercased() })
            }
        }
        self.presets = presets
        inbound = try s["callbacks"].map { value throws(ConnectorError) in try HTTPCallbacks(value) }
    }

    private static func template(_ json: JSON?, key: String) throws(ConnectorError) -> ValueTemplate? {
        guard let json else { return nil }
        return try ValueTemplate.parse(json, key: key)
    }

    public func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest {
        var fields: [String: JSON] = [:]
        // A body that is a received document passed on whole (`= event`) is sent as it arrived.
        var receivedBody: String?
        if let preset = presets[operation] {
            fields["method"] = .string(preset.method)
            if let t = preset.path { fields["path"] = try run.evaluate(t) }
            if let t = preset.url { fields["url"] = try run.evaluate(t) }
            if let t = preset.query { fields["query"] = try run.evaluate(t) }
            if let t = preset.headers { fields["headers"] = try run.evaluate(t) }
            if let t = preset.body {
                fields["body"] = try run.evaluate(t)
                receivedBody = run.receivedText(of: t)
            }
        } else if operation != "request" {
            throw StepError(errorClass: "invalid_operation", message: "connector '\(id)' has no operation '\(operation)'")
        }
        if case let .object(given) = input {
            for key in given.keys.sorted() where !Self.inputs.contains(key) {
                throw StepError(errorClass: "invalid_input",
                                message: "unknown input '\(key)' for \(id).\(operation); expected \(Self.inputs.joined(separator: ", "))")
            }
            for (key, value) in given { fields[key] = value }  // the step's `with` wins over the preset
            if given["body"] != nil { receivedBody = run.receivedText(ofInput: "body") }
        }
        let method = (fields["method"]?.stringValue ?? "POST").uppercased()
        var url: String
        if let full = fields["url"]?.stringValue {
            url = full
        } else if let base = baseURL {
            let path = fields["path"]?.stringValue ?? ""
            url = base.hasSuffix("/") && path.hasPrefix("/") ? base + path.dropFirst() : base + path
        } else {
            throw StepError(errorClass: "invalid_request", message: "connector '\(id)' has no base_url: give `url`")
        }
        if case let .object(query)? = fields["query"], !query.isEmpty {
            var components = URLComponents(string: url)
            var items = components?.queryItems ?? []
            for key in query.keys.sorted() {
                let value = query[key]!
                items.append(URLQueryItem(name: key, value: value.stringValue ?? value.text))
            }
            components?.queryItems = items
            url = components?.string ?? url
        }
        guard let parsed = URL(string: url), let scheme = parsed.scheme, scheme == "http" || scheme == "https", parsed.host != nil else {
            throw StepError(errorClass: "invalid_request", message: "'\(url)' is not an absolute http(s) URL")
        }
        var headers = defaultHeaders
        if case let .object(extra)? = fields["headers"] {
            for key in extra.keys.sorted() {
                guard let value = extra[key] else { continue }
                headers.removeAll { $0.0.lowercased() == key.lowercased() }
                headers.append((key, value.stringValue ?? value.text))
            }
        }
        var body: String?
        switch fields["body"] {
        case nil, .null?: body = nil
        case let .string(text)?:
            body = text
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "text/plain; charset=utf-8")) }
        case let value?:
            body = receivedBody ?? value.text
            if !headers.contains(where: { $0.0.lowercased() == "content-type" }) { headers.append(("Content-Type", "application/json")) }
        }
        return OutboundRequest(method: method, url: url, headers: headers, body: body)
    }

    public func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome {
        let success = successStatuses?.contains(response.status) ?? (200 ... 299).contains(response.status)
        guard success else {
            return .failed(StepError(errorClass: "http_status", message: "the endpoint answered \(response.status)"))
        }
        let body: JSON = if response.body.isEmpty {
            .null
        } else {
            (try? JSON.parse(bytes: response.body)) ?? .string(String(decoding: response.body, as: UTF8.self))
        }
        var output: [String: JSON] = ["status": .number(Double(response.status)), "body": body]
        let wanted = presets[operation]?.outputHeaders ?? []
        if !wanted.isEmpty {
            var headers: [String: JSON] = [:]
            for name in wanted { if let value = response.header(name) { headers[name] = .string(value) } }
            output["headers"] = .object(headers)
        }
        return .done(.object(output))
    }

    /// `HEAD base_url`, with the connector's credentials: reachability and authentication.
    public func testRequest() -> OutboundRequest? {
        guard let baseURL else { return nil }
        return OutboundRequest(method: "HEAD", url: baseURL, headers: defaultHeaders)
    }

    public func authenticate(_ headers: inout [(String, String)], url: String) {
        switch auth {
        case let .bearer(token)?: headers.append(("Authorization", "Bearer \(token)"))
        case let .basic(user, password)?:
            headers.append(("Authorization", "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()))
        case let .header(name, value)?: headers.append((name, value))
        case nil: break
        }
    }
}
