import CEL
import Foundation

/// The adapter for Middesk, shaped on its public API: each report creates a business
/// (`POST /v1/businesses` with name, tin, addresses and one order), whose results arrive as
/// `business.updated` webhooks signed with `X-Middesk-Signature-256` (HMAC-SHA256 of the raw
/// body, hex). Recorded payloads are in `fixtures/vendors/middesk/`.
public struct MiddeskVendor: KYBVendor {
    public static let name = "middesk"
    let settings: KYBVendorSettings
    public let callbackVerifier: InboundVerifier

    public init(settings: KYBVendorSettings) throws(ConnectorError) {
        self.settings = settings
        do {
            callbackVerifier = InboundVerifier(scheme: .hmacSHA256(header: "X-Middesk-Signature-256"),
                                               secrets: [try SigningSecret(settings.callbackSecret)])
        } catch {
            throw ConnectorError(key: "callback_secret", error.message)
        }
    }

    /// Middesk's product for each report.
    static func product(_ report: KYBReport) -> String {
        switch report {
        case .businessWatchlist: "watchlist"
        case .businessAdverseMedia: "adverse_media"
        case .businessLookup: "identity"
        case .tinCheck: "tin"
        }
    }

    public func request(_ report: KYBReport, business: KYBBusiness) -> OutboundRequest {
        var body: [String: JSON] = ["name": .string(business.businessName),
                                    "orders": [["product": .string(Self.product(report))]]]
        if let ein = business.ein { body["tin"] = ["tin": .string(ein.filter(\.isNumber))] }
        if let address = business.businessAddress { body["addresses"] = [Self.address(address)] }
        return OutboundRequest(method: "POST", url: settings.baseURL + "/v1/businesses",
                               headers: [("Content-Type", "application/json")], body: JSON.object(body).text, stage: "order")
    }

    /// "1 Main St, Springfield, IL 62701" as Middesk's address fields; anything else as `full_address`.
    static func address(_ text: String) -> JSON {
        let parts = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if parts.count >= 3 {
            let stateZip = parts[parts.count - 1].split(separator: " ")
            if stateZip.count == 2, stateZip[0].count == 2 {
                return ["address_line1": .string(parts[0 ..< parts.count - 2].joined(separator: ", ")),
                        "city": .string(parts[parts.count - 2]), "state": .string(String(stateZip[0])),
                        "postal_code": .string(String(stateZip[1]))]
            }
        }
        return ["full_address": .string(text)]
    }

    public func answer(_ report: KYBReport, response: ConnectorResponse) -> ConnectorOutcome {
        guard let business = response.json, let id = business["id"]?.stringValue else {
            return .failed(StepError(errorClass: "invalid_response", message: "Middesk's answer has no business id"))
        }
        if response.stage == "poll" { return polled(report, reportID: id, payload: business) }
        return .awaitCallback(correlation: id)
    }

    public func pollRequest(_ report: KYBReport, reportID: String) -> OutboundRequest? {
        OutboundRequest(method: "GET", url: settings.baseURL + "/v1/businesses/" + reportID, stage: "poll")
    }

    public func read(callback body: [UInt8], headers: [(String, String)], verifiedMessageID: String?) throws(StepError) -> CallbackMessage {
        guard let event = try? JSON.parse(bytes: body, limits: .request), let eventID = event["id"]?.stringValue,
              let business = event["data"]?["object"], let businessID = business["id"]?.stringValue
        else {
            throw StepError(errorClass: "invalid_callback", message: "expected a Middesk event {id, type, data: {object: business}}")
        }
        return CallbackMessage(messageID: eventID, correlation: businessID, payload: business)
    }

    public func result(_ report: KYBReport, payload business: JSON) -> ConnectorOutcome {
        switch business["status"]?.stringValue {
        case "open", "pending", nil: return .pending
        default: break
        }
        switch report {
        case .businessWatchlist:
            var hits: [(list: String, name: String, score: Double?, url: String?)] = []
            for list in business["watchlist"]?["lists"]?.arrayValue ?? [] {
                let title = list["title"]?.stringValue ?? list["abbr"]?.stringValue ?? "unknown"
                for hit in list["results"]?.arrayValue ?? [] {
                    hits.append((list: title, name: hit["entity_name"]?.stringValue ?? "", score: hit["score"]?.numberValue,
                                 url: hit["url"]?.stringValue))
                }
            }
            return .done(KYBOutput.watchlist(hits: hits))
        case .businessAdverseMedia:
            let results = business["adverse_media_screening"]?["results"]?.arrayValue ?? []
            return .done(KYBOutput.adverseMedia(articles: results.map { article in
                (title: article["title"]?.stringValue ?? "", source: article["source_name"]?.stringValue,
                 url: article["url"]?.stringValue, publishedAt: article["published_date"]?.stringValue,
                 categories: (article["categories"]?.arrayValue ?? []).compactMap(\.stringValue))
            }))
        case .businessLookup:
            let registrations = business["registrations"]?.arrayValue ?? []
            let names = business["names"]?.arrayValue ?? []
            guard !registrations.isEmpty || !names.isEmpty else { return .done(KYBOutput.lookup(found: false)) }
            let statuses = registrations.compactMap { $0["status"]?.stringValue }
            let status: KYBOutput.BusinessStatus = statuses.contains("active") ? .active : (statuses.isEmpty ? .unknown : .inactive)
            let legal = names.first { $0["type"]?.stringValue == "legal" } ?? names.first
            return .done(KYBOutput.lookup(
                found: true, name: legal?["name"]?.stringValue ?? business["name"]?.stringValue, status: status,
                entityType: business["formation"]?["entity_type"]?.stringValue ?? registrations.first?["entity_type"]?.stringValue,
                incorporatedOn: business["formation"]?["formation_date"]?.stringValue,
                addresses: (business["addresses"]?.arrayValue ?? []).compactMap { $0["full_address"]?.stringValue },
                officers: (business["officers"]?.arrayValue ?? []).map {
                    (name: $0["name"]?.stringValue ?? "", title: $0["titles"]?.arrayValue?.first?.stringValue)
                },
                registrations: registrations.map {
                    (state: $0["state"]?.stringValue, number: $0["file_number"]?.stringValue, status: $0["status"]?.stringValue)
                }))
        case .tinCheck:
            let task = business["review"]?["tasks"]?.arrayValue?.first { $0["key"]?.stringValue == "tin" }
            let result: KYBOutput.TINResult = switch (task?["status"]?.stringValue, task?["sub_label"]?.stringValue) {
            case ("success", _): .match
            case (_, "Mismatch"): .mismatch
            case (_, "Not Found"): .notFound
            default: business["tin"]?["verified"] == .bool(true) ? .match : .unavailable
            }
            return .done(KYBOutput.tin(result, type: "EIN"))
        }
    }

    public func authenticate(_ headers: inout [(String, String)]) {
        headers.append(("Authorization", "Bearer \(settings.apiKey)"))
    }

    public func healthCheck() -> OutboundRequest {
        OutboundRequest(method: "GET", url: settings.baseURL + "/v1/businesses?per_page=1")
    }
}
