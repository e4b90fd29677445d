import CEL
import Foundation

/// The four KYB reports a workflow can run, whatever the vendor.
public enum KYBReport: String, Sendable, CaseIterable {
    case businessWatchlist = "business_watchlist"
    case businessAdverseMedia = "business_adverse_media"
    case businessLookup = "business_lookup"
    case tinCheck = "tin_check"

    /// The operation as connectors describe it, with its normalized output (docs/configuration.md, "KYB reports").
    var operation: ConnectorOperation {
        let inputs: [ConnectorOperation.Field] = [.init("business_name", .string, required: true),
                                                  .init("business_address", .string), .init("ein", .string)]
        let outputs: [ConnectorOperation.Field] = switch self {
        case .businessWatchlist: [.init("has_match", .boolean), .init("hits", .array)]
        case .businessAdverseMedia: [.init("has_match", .boolean), .init("articles", .array)]
        case .businessLookup:
            [.init("found", .boolean), .init("name", .string), .init("status", .string), .init("entity_type", .string),
             .init("incorporated_on", .string), .init("addresses", .array), .init("officers", .array),
             .init("registrations", .array)]
        case .tinCheck: [.init("match", .boolean), .init("result", .string), .init("tin_type", .string)]
        }
        return ConnectorOperation(rawValue, inputs: inputs, outputs: outputs)
    }
}

/// The business a report is about: a step's inputs.
public struct KYBBusiness: Codable, Sendable, Equatable {
    public var businessName: String
    public var businessAddress: String?
    public var ein: String?

    public init(businessName: String, businessAddress: String? = nil, ein: String? = nil) {
        self.businessName = businessName
        self.businessAddress = businessAddress
        self.ein = ein
    }

    enum CodingKeys: String, CodingKey {
        case businessName = "business_name", businessAddress = "business_address", ein
    }
}

/// What a KYB vendor adapter is built from: the `kyb` connector's settings.
public struct KYBVendorSettings: Sendable {
    public var baseURL: String
    public var apiKey: String
    /// The secret the vendor signs its callbacks with.
    public var callbackSecret: String
    /// Where the vendor should call back: `<public-url>/v1/callbacks/<connector id>`.
    public var callbackURL: String
}

/// Maps the four KYB reports onto one vendor's API, and the vendor's answers onto the
/// normalized outputs of ``KYBOutput``. Adapters do no I/O.
///
/// ```swift
/// struct AcmeVendor: KYBVendor {
///     static let name = "acme"
///     init(settings: KYBVendorSettings) throws(ConnectorError) { ... }
///     func request(_ report: KYBReport, business: KYBBusiness) -> OutboundRequest { ... }
///     ...
/// }
/// ```
public protocol KYBVendor: Sendable {
    /// The `vendor:` value that selects this adapter.
    static var name: String { get }
    init(settings: KYBVendorSettings) throws(ConnectorError)
    /// The request that orders a report.
    func request(_ report: KYBReport, business: KYBBusiness) -> OutboundRequest
    /// What the vendor's answer to a request means: usually a report id to wait for.
    func answer(_ report: KYBReport, response: ConnectorResponse) -> ConnectorOutcome
    /// How the vendor signs its callbacks.
    var callbackVerifier: InboundVerifier { get }
    /// Reads a verified callback: its message id, the report id it is about, and its payload.
    func read(callback body: [UInt8], headers: [(String, String)], verifiedMessageID: String?) throws(StepError) -> CallbackMessage
    /// The normalized output of a report from a callback's payload, or `.pending` while it is not done.
    func result(_ report: KYBReport, payload: JSON) -> ConnectorOutcome
    /// Adds the vendor's credentials to a request.
    func authenticate(_ headers: inout [(String, String)])
    /// A harmless authenticated request (`switchboard connectors test`).
    func healthCheck() -> OutboundRequest
    /// The request that asks how a report stands (the polling fallback), with the stage `poll`;
    /// nil when the vendor cannot be asked. Its answer goes to ``answer(_:response:)``.
    func pollRequest(_ report: KYBReport, reportID: String) -> OutboundRequest?
}

extension KYBVendor {
    public func pollRequest(_ report: KYBReport, reportID: String) -> OutboundRequest? { nil }

    /// The answer to a poll: the result when the report is done, otherwise keep waiting.
    func polled(_ report: KYBReport, reportID: String, payload: JSON) -> ConnectorOutcome {
        switch result(report, payload: payload) {
        case .pending: .awaitCallback(correlation: reportID)
        case let outcome: outcome
        }
    }
}

/// Builders of the normalized outputs, so that every adapter produces the same shapes.
public enum KYBOutput {
    /// `{has_match, hits: [{list, name, score, url}]}`
    public static func watchlist(hits: [(list: String, name: String, score: Double?, url: String?)]) -> JSON {
        ["has_match": .bool(!hits.isEmpty),
         "hits": .array(hits.map { ["list": .string($0.list), "name": .string($0.name), "score": $0.score.map(JSON.number) ?? .null,
                                    "url": $0.url.map(JSON.string) ?? .null] })]
    }

    /// `{has_match, articles: [{title, source, url, published_at, categories}]}`
    public static func adverseMedia(
        articles: [(title: String, source: String?, url: String?, publishedAt: String?, categories: [String])]
    ) -> JSON {
        ["has_match": .bool(!articles.isEmpty),
         "articles": .array(articles.map {
             ["title": .string($0.title), "source": $0.source.map(JSON.string) ?? .null, "url": $0.url.map(JSON.string) ?? .null,
              "published_at": $0.publishedAt.map(JSON.string) ?? .null, "categories": .array($0.categories.map(JSON.string))]
         })]
    }

    /// Business status in the normalized lookup output.
    public enum BusinessStatus: String, Sendable { case active, inactive, unknown }

    /// `{found, name, status, entity_type, incorporated_on, addresses, officers, registrations}`
    public static func lookup(found: Bool, name: String? = nil, status: BusinessStatus = .unknown, entityType: String? = nil,
                              incorporatedOn: String? = nil, addresses: [String] = [],
                              officers: [(name: String, title: String?)] = [],
                              registrations: [(state: String?, number: String?, status: String?)] = []) -> JSON
    {
        ["found": .bool(found), "name": name.map(JSON.string) ?? .null, "status": .string(status.rawValue),
         "entity_type": entityType.map(JSON.string) ?? .null, "incorporated_on": incorporatedOn.map(JSON.string) ?? .null,
         "addresses": .array(addresses.map(JSON.string)),
         "officers": .array(officers.map { ["name": .string($0.name), "title": $0.title.map(JSON.string) ?? .null] }),
         "registrations": .array(registrations.map {
             ["state": $0.state.map(JSON.string) ?? .null, "number": $0.number.map(JSON.string) ?? .null,
              "status": $0.status.map(JSON.string) ?? .null]
         })]
    }

    /// TIN check result in the normalized output.
    public enum TINResult: String, Sendable { case match, mismatch, notFound = "not_found", unavailable }

    /// `{match, result, tin_type}`
    public static func tin(_ result: TINResult, type: String?) -> JSON {
        ["match": .bool(result == .match), "result": .string(result.rawValue), "tin_type": type.map(JSON.string) ?? .null]
    }
}
