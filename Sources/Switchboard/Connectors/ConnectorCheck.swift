import AsyncHTTPClient
import Foundation

/// A connector's live check: its test request, sent through the SSRF guard, read in words.
public struct ConnectorCheck: Sendable {
    let sender: HTTPSender
    let allowPrivateNetworks: Bool

    init(sender: HTTPSender, allowPrivateNetworks: Bool) {
        self.sender = sender
        self.allowPrivateNetworks = allowPrivateNetworks
    }

    /// Checks one connector with a client of its own (for the command line).
    public static func run(_ connector: any Connector, allowPrivateNetworks: Bool) async -> ConnectorTestResult {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        let result = await ConnectorCheck(sender: HTTPSender(client: client), allowPrivateNetworks: allowPrivateNetworks)
            .run(connector)
        try? await client.shutdown()
        return result
    }

    func run(_ connector: any Connector) async -> ConnectorTestResult {
        guard let request = connector.testRequest() else {
            return ConnectorTestResult(ok: false, status: "not_supported", detail: "kind \(type(of: connector).kind) has no live check")
        }
        var headers = request.headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        connector.authenticate(&headers, url: request.url)
        let ssrf = SSRFGuard(allowAll: allowPrivateNetworks, allowed: connector.delivery.allowNetworks)
        let outcome = await sender.send(method: request.method, url: request.url, headers: headers, body: request.body,
                                        guard: ssrf, followRedirects: connector.delivery.followRedirects,
                                        timeout: min(connector.delivery.totalTimeout, .seconds(10)))
        if let response = outcome.response { return connector.testVerdict(response) }
        if outcome.errorClass == "ssrf_blocked" {
            return ConnectorTestResult(ok: false, status: "refused_address", detail: outcome.errorMessage ?? "refused")
        }
        return ConnectorTestResult(ok: false, status: "unreachable",
                                   detail: "\(outcome.errorClass ?? "connect"): \(outcome.errorMessage ?? "no answer")")
    }
}
