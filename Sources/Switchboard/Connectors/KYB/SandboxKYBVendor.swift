import CEL
import Foundation

/// The adapter for the sandbox vendor that `switchboard sandbox` runs (fixtures/README.md
/// documents its outcomes). Its API, under the connector's `base_url`:
///
/// - `POST /v1/reports` `{type, business: {name, address, tin}, callback_url}` → `201 {id, type, status: "pending"}`
/// - `GET /v1/reports/{id}` → the report; `GET /v1/account` checks the API key
/// - callbacks signed per Standard Webhooks: `{type: "report.completed", data: {id, type, status, result}}`
public struct SandboxKYBVendor: KYBVendor {
    public static let name = "sandbox"
    let settings: KYBVendorSettings
    public let callbackVerifier: InboundVerifier

    public init(settings: KYBVendorSettings) throws(ConnectorError) {
        self.settings = settings
        do {
            callbackVerifier = InboundVerifier(scheme: .standardWebhooks, secrets: [try SigningSecret(settings.callbackSecret)])
        } catch {
            throw ConnectorError(key: "callback_secret", error.message)
        }
    }

    public func request(_ report: KYBReport, business: KYBBusiness) -> OutboundRequest {
        let body: JSON = ["type": .string(report.rawValue), "callback_url": .string(settings.callbackURL),
                          "business": ["name": .string(business.businessName),
                                       "address": business.businessAddress.map(JSON.string) ?? .null,
                                       "tin": business.ein.map(JSON.string) ?? .null]]
        return OutboundRequest(method: "POST", url: settings.baseURL + "/v1/reports",
                               headers: [("Content-Type", "application/json")], body: body.text, stage: "order")
    }

    public func answer(_ report: KYBReport, response: ConnectorResponse) -> ConnectorOutcome {
        guard let body = response.json, let reportID = body["id"]?.stringValue else {
            return .failed(StepError(errorClass: "invalid_response", message: "the sandbox vendor's answer has no report id"))
        }
        if response.stage == "poll" { return polled(report, reportID: reportID, payload: body) }
        if body["status"]?.stringValue == "completed" { return result(report, payload: body) }
        return .awaitCallback(correlation: reportID)
    }

    public func pollRequest(_ report: KYBReport, reportID: String) -> OutboundRequest? {
        OutboundRequest(method: "GET", url: settings.baseURL + "/v1/reports/" + reportID, stage: "poll")
    }

    public func read(callback body: [UInt8], headers: [(String, String)], verifiedMessageID: String?) throws(StepError) -> CallbackMessage {
        guard let event = try? JSON.parse(bytes: body, limits: .request), let report = event["data"], let reportID = report["id"]?.stringValue else {
            throw StepError(errorClass: "invalid_callback", message: "expected {type, data: {id, type, status, result}}")
        }
        return CallbackMessage(messageID: verifiedMessageID ?? "report:\(reportID)", correlation: reportID, payload: report)
    }

    public func result(_ report: KYBReport, payload: JSON) -> ConnectorOutcome {
        switch payload["status"]?.stringValue {
        case "completed": break
        case "failed":
            return .failed(StepError(errorClass: "vendor_error",
                                     message: "the sandbox vendor failed the report: \(payload["error"]?.stringValue ?? "no reason given")"))
        default: return .pending
        }
        let result = payload["result"] ?? .null
        switch report {
        case .businessWatchlist:
            let hits = (result["matches"]?.arrayValue ?? []).map { match in
                (list: match["list"]?.stringValue ?? "unknown", name: match["entity_name"]?.stringValue ?? "",
                 score: match["score"]?.numberValue, url: match["source_url"]?.stringValue)
            }
            return .done(KYBOutput.watchlist(hits: hits))
        case .businessAdverseMedia:
            let articles = (result["articles"]?.arrayValue ?? []).map { article in
                (title: article["headline"]?.stringValue ?? "", source: article["publisher"]?.stringValue,
                 url: article["link"]?.stringValue, publishedAt: article["published"]?.stringValue,
                 categories: (article["topics"]?.arrayValue ?? []).compactMap(\.stringValue))
            }
            return .done(KYBOutput.adverseMedia(articles: articles))
        case .businessLookup:
            guard let entity = result["entity"], entity != .null else { return .done(KYBOutput.lookup(found: false)) }
            let status: KYBOutput.BusinessStatus = switch entity["state"]?.stringValue {
            case "ACTIVE": .active
            case "DISSOLVED", "INACTIVE", "REVOKED": .inactive
            default: .unknown
            }
            return .done(KYBOutput.lookup(
                found: true, name: entity["legal_name"]?.stringValue, status: status, entityType: entity["type"]?.stringValue,
                incorporatedOn: entity["formation_date"]?.stringValue,
                addresses: (entity["addresses"]?.arrayValue ?? []).compactMap(\.stringValue),
                officers: (entity["officers"]?.arrayValue ?? []).map { (name: $0["name"]?.stringValue ?? "", title: $0["title"]?.stringValue) },
                registrations: (entity["registrations"]?.arrayValue ?? []).map {
                    (state: $0["state"]?.stringValue, number: $0["file_number"]?.stringValue, status: $0["status"]?.stringValue)
                }))
        case .tinCheck:
            let outcome: KYBOutput.TINResult = switch result["tin_status"]?.stringValue {
            case "MATCH": .match
            case "MISMATCH": .mismatch
            case "NOT_FOUND": .notFound
            default: .unavailable
            }
            return .done(KYBOutput.tin(outcome, type: result["tin_type"]?.stringValue))
        }
    }

    public func authenticate(_ headers: inout [(String, String)]) {
        headers.append(("Authorization", "Bearer \(settings.apiKey)"))
    }

    public func healthCheck() -> OutboundRequest {
        OutboundRequest(method: "GET", url: settings.baseURL + "/v1/account")
    }
}
