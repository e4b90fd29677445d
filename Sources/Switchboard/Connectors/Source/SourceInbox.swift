import CEL
import Foundation

/// `POST /v1/sources/{id}`: a signed webhook from another system becomes an event.
extension Gateway {
    /// What became of a signed request to an event source.
    public enum SourceAnswer: Sendable {
        /// Ingested (or a duplicate of an event already ingested), as `POST /v1/events` answers.
        case ingested(IngestAnswer)
        case unknownConnector
        /// The signature, its timestamp or its header was refused (401); recorded.
        case rejected(String)
        /// The same signed request was received before (401); recorded.
        case replayed
        /// Verified, but the mapping could not read it (422), naming the attribute; recorded.
        case unreadable(SourceMappingError)
    }

    /// Verifies a request to the event source `id`, maps it to a CloudEvent and ingests it with its
    /// receipt, so that the same signed request is refused the second time. Every refusal is
    /// recorded (`GET /v1/callbacks?connector=ID`) and changes nothing else.
    public func receive(source id: String, headers: [(String, String)], body: [UInt8]) async throws -> SourceAnswer {
        guard let source = configuration.connectorInstances[id]?.source else { return .unknownConnector }
        let now = clock.now()
        let request = SignedRequest(connector: id, headers: headers, body: body, receivedAt: now)
        let verifiedID: String?
        switch try await request.verify(with: source.verifier, store: store, metrics: metrics, logger: logger) {
        case let .success(messageID): verifiedID = messageID
        case let .failure(refusal): return .rejected(refusal.message)
        }
        let messageID = source.verifier.replayKey(verifiedID: verifiedID, headers: request.header)
        let event: CloudEvent
        do {
            event = try source.event(body: body, headers: headers)
        } catch {
            metrics.callbackReceived(connector: id, outcome: "invalid")
            try await store.recordCallback(InboundCallback(id: .generate(at: now), connector: id, status: .invalid,
                                                           messageID: messageID, error: error.description, receivedAt: now))
            return .unreadable(error)
        }
        let receipt = InboundCallback(id: .generate(at: now), connector: id, status: .accepted, messageID: messageID,
                                      correlation: event.id, receivedAt: now)
        do {
            let answer = try await ingest(event, idempotencyKey: nil, receipt: receipt)
            metrics.callbackReceived(connector: id, outcome: "accepted")
            return .ingested(answer)
        } catch IngestError.replayed {
            logger.warning("event source request replayed", metadata: ["connector": "\(id)"])
            metrics.callbackReceived(connector: id, outcome: "replayed")
            return .replayed
        }
    }
}
