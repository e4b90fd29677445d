import CEL
import Foundation
@testable import Switchboard

// The complete connector of docs/writing-a-connector.md: a ticketing system's
// "create ticket". It is compiled and exercised by TicketingConnectorTests.

/// A ticketing system (`kind: ticketing`): opens a ticket for a case.
///
/// ```yaml
/// id: tickets
/// kind: ticketing
/// base_url: https://tickets.example.com/api
/// api_token: ${TICKETS_TOKEN}
/// project: RISK
/// ```
struct TicketingConnector: Connector {
    static let kind = "ticketing"
    static let settingKeys = ["base_url", "api_token", "project"]

    /// The inputs of `create_ticket`, decoded from the step's `with:`.
    struct CreateTicket: Decodable {
        var title: String
        var description: String?
        var priority: String?
    }

    static let createTicket = ConnectorOperation(
        "create_ticket",
        inputs: [.init("title", .string, required: true), .init("description", .string), .init("priority", .string)],
        outputs: [.init("ticket_id", .string), .init("url", .string)])

    let id: String
    let delivery: DeliverySettings
    let baseURL: String
    let token: String
    let project: String

    var operations: [ConnectorOperation] { [Self.createTicket] }

    init(config: ConnectorConfig, context: ConnectorBuildContext) throws(ConnectorError) {
        id = config.id
        // retry, timeout, concurrency, rate_limit and allow_networks work as for every kind.
        delivery = try DeliverySettings.parse(config, defaultConcurrency: 8)
        guard let base = config.settings["base_url"]?.stringValue, URL(string: base)?.host != nil else {
            throw ConnectorError(key: "base_url", "must be an absolute URL such as https://tickets.example.com/api")
        }
        guard let token = config.settings["api_token"]?.stringValue, !token.isEmpty else {
            throw ConnectorError(key: "api_token", "is required")
        }
        baseURL = base
        self.token = token
        project = config.settings["project"]?.stringValue ?? "DEFAULT"
    }

    func request(operation: String, input: JSON, run: RunContextView) throws(StepError) -> OutboundRequest {
        guard operation == Self.createTicket.name else {
            throw StepError(errorClass: "invalid_operation", message: "connector '\(id)' has no operation '\(operation)'")
        }
        try Self.createTicket.check(input, connector: id)
        let ticket = try input.decode(CreateTicket.self, for: "\(id).create_ticket")
        let body: JSON = ["title": .string(ticket.title), "description": ticket.description.map(JSON.string) ?? .null,
                          "priority": .string(ticket.priority ?? "normal"), "external_ref": .string(run.runID.rawValue)]
        return OutboundRequest(method: "POST", url: "\(baseURL)/projects/\(project)/tickets",
                               headers: [("Content-Type", "application/json")], body: body.text)
    }

    func outcome(operation: String, response: ConnectorResponse) -> ConnectorOutcome {
        // A 5xx or 429 is retried by the delivery engine before it comes here as a failure.
        guard response.status == 201, let body = response.json, let ticket = body["key"]?.stringValue else {
            return .failed(StepError(errorClass: "http_status", message: "the ticketing system answered \(response.status)"))
        }
        return .done(["ticket_id": .string(ticket), "url": body["url"] ?? .null])
    }

    /// Credentials are added when the request is sent, so they are never stored or logged.
    func authenticate(_ headers: inout [(String, String)], url: String) {
        headers.append(("Authorization", "Token \(token)"))
    }

    /// `switchboard connectors test tickets` asks who the token belongs to.
    func testRequest() -> OutboundRequest? {
        OutboundRequest(method: "GET", url: "\(baseURL)/me")
    }
}
