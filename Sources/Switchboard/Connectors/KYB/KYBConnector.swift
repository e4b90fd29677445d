import CEL
import Foundation

/// KYB report vendors (`kind: kyb`): business watchlist, adverse media, business lookup and TIN
/// check, through a vendor adapter (`vendor: sandbox | middesk`).
///
/// A report step sends the vendor's order request, then waits for the vendor's signed callback
/// at `POST /v1/callbacks/<connector id>`, matched by the vendor's report id; its output is the
/// normalized result (``KYBOutput``), whatever the vendor.
///
/// ```yaml
/// id: kyb
/// kind: kyb
/// vendor: ${KYB_VENDOR:-sandbox}
/// base_url: ${KYB_BASE_URL:-http://127.0.0.1:8091/sandbox/kyb}
/// api_key: ${KYB_API_KEY:-sandbox-api-key}
/// callback_secret: ${KYB_CALLBACK_SECRET:-whsec_...}
/// report_timeout: 10m
/// ```
public struct KYBConnector: Connector {
    public static let kind = "kyb"
    public static let settingKeys = ["vendor", "base_url", "api_key", "callback_secret", "report_timeout", "poll_interval"]

    /// The vendor adapters, by `vendor:` name.
    public static let vendors: [String: any KYBVendor.Type] = [
        SandboxKYBVendor.name: SandboxKYBVendor.self,
        MiddeskVendor.name: MiddeskVendor.self,
    ]

    public let id: String
    public let delivery: DeliverySettings
    public let vendor: any KYBVendor
    public let callbackTimeout: Duration
    /// How often a waiting report is polled (`poll_interval`, default 1m; `off` turns polling off).
    public let pollInterval: Duration?

    public var operations: [ConnectorOperation] { KYBReport.allCases.map(\.operation) }

    public init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) {
        id = config.id
        let s = config.settings
        delivery = try DeliverySettings.parse(config, defaultConcurrency: 16)
        let name = s["vendor"]?.stringValue ?? SandboxKYBVendor.name
        guard let type = Self.vendors[name] else {
            throw ConnectorError(key: "vendor", "unknown vendor '\(name)'; expected one of: \(Self.vendors.keys.sorted().joined(separator: ", "))")
        }
        func required(_ key: String) throws(ConnectorError) -> String {
            guard let value = s[key]?.stringValue, !value.isEmpty else { throw ConnectorError(key: key, "is required for a kyb connector") }
            return value
        }
        let baseURL = try required("base_url")
        guard let url = URL(string: baseURL), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw ConnectorError(key: "base_url", "'\(baseURL)' is not an absolute http(s) URL")
        }
        let settings = KYBVendorSettings(
            baseURL: baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL, apiKey: try required("api_key"),
            callbackSecret: try required("callback_secret"), callbackURL: context.callbackURL(for: config.id))
        vendor = try type.init(settings: settings)
        if let text = s["report_timeout"]?.stringValue {
            guard let timeout = ConfigDuration.parse(text) else {
                throw ConnectorError(key: "report_timeout", "'\(text)' is not a duration; write it like 30s, 10m or 72h")
            }
            callbackTimeout = timeout
        } else {
            callbackTimeout = .seconds(600)
        }
        switch s["poll_interval"] {
        case nil: pollInterval = .seconds(60)
        case .bool(false)?: pollInterval = nil
        case let value?:
            let text = value.stringValue ?? value.text
            if text == "off" {
                pollInterval = nil
            } else if let interval = ConfigDuration.parse(text), interval >= .seconds(1) {
                pollInterval = interval
            } else {
                throw ConnectorError(key: "poll_interval", "'\(text)' must be a duration of at least 1s (like 30s or 5m), or off")
            }
        }
    }

    public func pollRequest(operation: String, correlation: String) -> OutboundRequest? {
        KYBReport(rawValue: operation).flatMap { vendor.pollRequest($0, reportID: correlation) }
    }

    public func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest {
        guard let report = KYBReport(rawValue: operation) else {
            throw StepError(errorClass: "invalid_operation", message: "connector '\(id)' has no operation '\(operation)'")
        }
        try report.operation.check(input, connector: id)
        let business = try input.decode(KYBBusiness.self, for: "\(id).\(operation)")
        guard !business.businessName.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw StepError(errorClass: "invalid_input", message: "\(id).\(operation): business_name is empty")
        }
        return vendor.request(report, business: business)
    }

    public func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome {
        guard let report = KYBReport(rawValue: operation) else {
            return .failed(StepError(errorClass: "invalid_operation", message: "connector '\(id)' has no operation '\(operation)'"))
        }
        guard (200 ... 299).contains(response.status) else {
            return .failed(StepError(errorClass: "http_status", message: "the vendor answered \(response.status)"))
        }
        return vendor.answer(report, response: response)
    }

    public func authenticate(_ headers: inout [(String, String)], url: String) { vendor.authenticate(&headers) }

    public func testRequest() -> OutboundRequest? { vendor.healthCheck() }

    public func testVerdict(_ response: ConnectorResponse) -> ConnectorTestResult {
        switch response.status {
        case 401, 403:
            ConnectorTestResult(ok: false, status: "unauthorized",
                                detail: "\(response.status): the vendor refused the API key; check api_key (KYB_API_KEY in the shipped file)")
        case 404:
            ConnectorTestResult(ok: false, status: "not_found", detail: "404: check base_url (KYB_BASE_URL) and vendor")
        default:
            ConnectorTestResult.fromStatus(response.status)
        }
    }

    public var callbacks: (any ConnectorCallbacks)? { KYBCallbacks(vendor: vendor) }
}

/// The `kyb` connector's callbacks: the vendor adapter verifies and reads them.
struct KYBCallbacks: ConnectorCallbacks {
    let vendor: any KYBVendor

    var verifier: InboundVerifier { vendor.callbackVerifier }

    func read(body: [UInt8], headers: [(String, String)], verifiedMessageID: String?) throws(StepError) -> CallbackMessage {
        try vendor.read(callback: body, headers: headers, verifiedMessageID: verifiedMessageID)
    }

    func outcome(operation: String, payload: JSON) -> ConnectorOutcome {
        guard let report = KYBReport(rawValue: operation) else {
            return .failed(StepError(errorClass: "invalid_operation", message: "no KYB report '\(operation)'"))
        }
        return vendor.result(report, payload: payload)
    }
}
