import Foundation
import Logging

/// A signed inbound request — a vendor's callback, an event source's webhook — as it arrived at
/// its connector's route. Its signature is checked in one place for both, and a refusal is
/// logged, counted and recorded for the operator (`GET /v1/callbacks?status=rejected`).
struct SignedRequest {
    let connector: String
    let headers: [(String, String)]
    let body: [UInt8]
    let receivedAt: Date

    /// A header's value by lower-case name.
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name }?.1 }

    /// The verified message id (nil for a scheme without one), or the refusal, already recorded.
    func verify(with verifier: InboundVerifier, store: any Store, metrics: GatewayMetrics,
                logger: Logger) async throws -> Result<String?, SignatureError> {
        do {
            return .success(try verifier.verify(headers: header, body: body, now: receivedAt))
        } catch {
            logger.warning("signed request refused", metadata: ["connector": "\(connector)", "reason": "\(error.code.rawValue)"])
            metrics.callbackReceived(connector: connector, outcome: "rejected")
            try await store.recordCallback(InboundCallback(id: .generate(at: receivedAt), connector: connector, status: .rejected,
                                                           error: error.description, receivedAt: receivedAt))
            return .failure(error)
        }
    }
}
