import CEL
import Foundation
import Testing
@testable import Switchboard

/// The vendor adapters against recorded payloads (fixtures/vendors/): whatever the vendor, a
/// workflow reads the same normalized outputs.
@Suite("KYB adapters map vendors' payloads onto the normalized outputs")
struct KYBAdapterTests {
    static let settings = KYBVendorSettings(baseURL: "https://vendor.example.com", apiKey: "key",
                                            callbackSecret: "whsec_c3dpdGNoYm9hcmQtc2FuZGJveC1jYWxsYmFja3M=",
                                            callbackURL: "https://gateway.example.com/v1/callbacks/kyb")

    static func bytes(_ path: String) throws -> [UInt8] {
        Array(try Data(contentsOf: Repository.root.appendingPathComponent("fixtures/vendors/\(path)")))
    }

    static func output(_ outcome: ConnectorOutcome) -> JSON? {
        if case let .done(output) = outcome { return output }
        return nil
    }

    @Test("sandbox: the order asks for a callback, and callbacks become normalized outputs")
    func sandbox() throws {
        let vendor = try SandboxKYBVendor(settings: Self.settings)
        let request = vendor.request(.businessWatchlist, business: KYBBusiness(businessName: "Sanctioned Shipping Ltd", ein: "00-0000000"))
        #expect(request.url == "https://vendor.example.com/v1/reports")
        let sent = try JSON.parse(Data((request.body ?? "").utf8))
        #expect(sent["callback_url"] == "https://gateway.example.com/v1/callbacks/kyb")
        #expect(sent["business"]?["tin"] == "00-0000000")
        let created = vendor.answer(.businessWatchlist, response: ConnectorResponse(status: 201, body: try Self.bytes("sandbox/report-created.json")))
        guard case let .awaitCallback(correlation) = created else { Issue.record("expected a wait, got \(created)"); return }
        #expect(correlation == "rep_mhx1a2b3")

        let cases: [(String, KYBReport, JSON)] = [
            ("callback-watchlist-hit", .businessWatchlist,
             ["has_match": true, "hits": [["list": "OFAC SDN", "name": "SANCTIONED SHIPPING LTD", "score": 0.97,
                                           "url": "https://sanctionssearch.ofac.treas.gov/"]]]),
            ("callback-adverse-media", .businessAdverseMedia,
             ["has_match": true, "articles": [["title": "Scandal Media Group named in accounting scandal", "source": "The Sandbox Times",
                                               "url": "https://news.example.com/sandbox/scandal", "published_at": "2026-03-14",
                                               "categories": ["financial_crime", "fraud"]]]]),
            ("callback-lookup-dissolved", .businessLookup,
             ["found": true, "name": "Dissolved Widgets Inc", "status": "inactive", "entity_type": "LLC", "incorporated_on": "2019-04-01",
              "addresses": ["1 Main St, Springfield, IL 62701"], "officers": [["name": "Jordan Example", "title": "Chief Executive Officer"]],
              "registrations": [["state": "DE", "number": "7312345", "status": "inactive"]]]),
            ("callback-tin-mismatch", .tinCheck, ["match": false, "result": "mismatch", "tin_type": "EIN"]),
        ]
        for (file, report, expected) in cases {
            let message = try vendor.read(callback: try Self.bytes("sandbox/\(file).json"), headers: [], verifiedMessageID: "msg_x")
            #expect(message.correlation.hasPrefix("rep_"))
            #expect(Self.output(vendor.result(report, payload: message.payload)) == expected, "\(file)")
        }
        let failed = try vendor.read(callback: try Self.bytes("sandbox/callback-failed.json"), headers: [], verifiedMessageID: nil)
        guard case let .failed(error) = vendor.result(.tinCheck, payload: failed.payload) else { Issue.record("expected a failure"); return }
        #expect(error.errorClass == "vendor_error")
    }

    @Test("middesk: POST /v1/businesses with name, tin, addresses and an order; business.updated webhooks become outputs")
    func middesk() throws {
        let vendor = try MiddeskVendor(settings: Self.settings)
        let request = vendor.request(.tinCheck, business: KYBBusiness(businessName: "Acme Robotics LLC",
                                                                     businessAddress: "1 Main St, Springfield, IL 62701", ein: "12-3456789"))
        #expect(request.method == "POST")
        #expect(request.url == "https://vendor.example.com/v1/businesses")
        let body = try JSON.parse(Data((request.body ?? "").utf8))
        #expect(body["tin"]?["tin"] == "123456789")
        #expect(body["orders"] == [["product": "tin"]])
        #expect(body["addresses"] == [["address_line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701"]])
        var headers: [(String, String)] = []
        vendor.authenticate(&headers)
        #expect(headers.first?.1 == "Bearer key")

        let created = vendor.answer(.tinCheck, response: ConnectorResponse(status: 201, body: try Self.bytes("middesk/business-created.json")))
        guard case let .awaitCallback(correlation) = created else { Issue.record("expected a wait"); return }
        #expect(correlation == "9c5ff7a2-7c7e-4b6a-9a5e-2a1f0b1d6c11")

        let pending = try vendor.read(callback: try Self.bytes("middesk/webhook-business-pending.json"), headers: [], verifiedMessageID: nil)
        #expect(pending.correlation == correlation)
        guard case .pending = vendor.result(.tinCheck, payload: pending.payload) else { Issue.record("a pending business is not a result"); return }

        let flagged = try vendor.read(callback: try Self.bytes("middesk/webhook-business-flagged.json"), headers: [], verifiedMessageID: nil)
        #expect(flagged.messageID == "7d3a2c1e-5f4b-4e8a-b6c9-1a2b3c4d5e6f")
        #expect(Self.output(vendor.result(.tinCheck, payload: flagged.payload)) == ["match": false, "result": "mismatch", "tin_type": "EIN"])
        let watchlist = Self.output(vendor.result(.businessWatchlist, payload: flagged.payload))
        #expect(watchlist?["has_match"] == true)
        #expect(watchlist?["hits"] == [["list": "OFAC Specially Designated Nationals", "name": "SANCTIONED SHIPPING LIMITED",
                                        "score": 0.94, "url": "https://sanctionssearch.ofac.treas.gov/Details.aspx?id=00000"]])
        #expect(Self.output(vendor.result(.businessAdverseMedia, payload: flagged.payload))?["articles"]?.arrayValue?.first?["source"] == "Example Wire")
        let lookup = Self.output(vendor.result(.businessLookup, payload: flagged.payload))
        #expect(lookup?["status"] == "inactive")
        #expect(lookup?["entity_type"] == "CORPORATION")
        #expect(lookup?["officers"] == [["name": "Ivan Example", "title": "Director"]])

        let approved = try vendor.read(callback: try Self.bytes("middesk/webhook-business-approved.json"), headers: [], verifiedMessageID: nil)
        #expect(Self.output(vendor.result(.tinCheck, payload: approved.payload))?["match"] == true)
        #expect(Self.output(vendor.result(.businessWatchlist, payload: approved.payload)) == ["has_match": false, "hits": []])
        #expect(Self.output(vendor.result(.businessLookup, payload: approved.payload))?["status"] == "active")
        #expect(Self.output(vendor.result(.businessAdverseMedia, payload: approved.payload))?["has_match"] == false)
    }

    @Test("middesk webhooks are verified with X-Middesk-Signature-256 over the raw body")
    func middeskSignature() throws {
        let vendor = try MiddeskVendor(settings: Self.settings)
        let body = try Self.bytes("middesk/webhook-business-approved.json")
        let signed = InboundVerifier.sign(.hmacSHA256(header: "X-Middesk-Signature-256"),
                                          secret: try SigningSecret(Self.settings.callbackSecret), body: body, timestamp: 0)
        let lookup: (String) -> String? = { name in signed.first { $0.0.lowercased() == name }?.1 }
        #expect(throws: Never.self) { _ = try vendor.callbackVerifier.verify(headers: lookup, body: body, now: Date()) }
        #expect(throws: SignatureError.self) { _ = try vendor.callbackVerifier.verify(headers: lookup, body: body + [32], now: Date()) }
    }
}
