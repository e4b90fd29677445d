import CEL
import Foundation

/// The sandbox vendor's answers, which follow from the input (fixtures/README.md lists them):
///
/// | input | report | result |
/// |---|---|---|
/// | name contains "Sanctioned" | business_watchlist | a hit on OFAC SDN |
/// | name contains "Scandal" | business_adverse_media | one article |
/// | name contains "Dissolved" | business_lookup | found, status inactive |
/// | name contains "Ghost" | business_lookup | not found |
/// | EIN 00-0000000 | tin_check | mismatch |
/// | EIN 11-1111111 | tin_check | not found |
/// | no EIN | tin_check | unavailable |
/// | name contains "Broken" | every report | the report fails |
///
/// Anything else is clean: no hits, no articles, an active business, a matching TIN.
public enum SandboxOutcomes {
    /// The vendor-shaped result of a report (not the normalized output: the adapter maps it).
    public static func result(type: String, name: String, address: String?, tin: String?) -> JSON {
        let lower = name.lowercased()
        switch type {
        case "business_watchlist":
            guard lower.contains("sanctioned") else { return ["matches": []] }
            return ["matches": [["list": "OFAC SDN", "entity_name": .string(name.uppercased()), "score": 0.97,
                                 "source_url": "https://sanctionssearch.ofac.treas.gov/"]]]
        case "business_adverse_media":
            guard lower.contains("scandal") else { return ["articles": []] }
            return ["articles": [["headline": .string("\(name) named in accounting scandal"), "publisher": "The Sandbox Times",
                                  "link": "https://news.example.com/sandbox/scandal", "published": "2026-03-14",
                                  "topics": ["financial_crime", "fraud"]]]]
        case "business_lookup":
            if lower.contains("ghost") { return ["entity": .null] }
            return ["entity": [
                "legal_name": .string(name), "state": lower.contains("dissolved") ? "DISSOLVED" : "ACTIVE", "type": "LLC",
                "formation_date": "2019-04-01", "addresses": .array(address.map { [JSON.string($0)] } ?? []),
                "officers": [["name": "Jordan Example", "title": "Chief Executive Officer"]],
                "registrations": [["state": "DE", "file_number": "7312345", "status": lower.contains("dissolved") ? "inactive" : "active"]],
            ]]
        case "tin_check":
            let digits = (tin ?? "").filter(\.isNumber)
            let status = switch digits {
            case "": "UNAVAILABLE"
            case "000000000": "MISMATCH"
            case "111111111": "NOT_FOUND"
            default: "MATCH"
            }
            return ["tin_status": .string(status), "tin_type": "EIN"]
        default:
            return .null
        }
    }

    /// Whether the report fails instead of completing.
    public static func fails(name: String) -> Bool { name.lowercased().contains("broken") }

    /// The report types the sandbox vendor knows.
    public static let types = ["business_watchlist", "business_adverse_media", "business_lookup", "tin_check"]
}
