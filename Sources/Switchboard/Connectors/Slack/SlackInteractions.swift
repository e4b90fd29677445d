import CEL
import Foundation
import Logging

/// Handles Slack's button clicks (`POST /v1/slack/interactions`): verifies Slack's v0 signature,
/// checks the button's signed reference, resolves the run's `wait: review` step, and updates the
/// message through its `response_url` (a delivery, persisted with the decision).
public struct SlackInteractions: Sendable {
    let gateway: Gateway

    /// The HTTP answer: Slack shows nothing for a 200, so the text is for people and tests.
    public struct Answer: Sendable {
        public var status: Int
        public var body: JSON
    }

    public init(gateway: Gateway) { self.gateway = gateway }

    public func handle(headers: [(String, String)], body: [UInt8]) async throws -> Answer {
        let now = gateway.clock.now()
        let connectors = gateway.configuration.connectorInstances.values.compactMap { $0 as? SlackConnector }.sorted { $0.id < $1.id }
        guard !connectors.isEmpty else { return Answer(status: 404, body: ["error": "no slack connector is configured"]) }
        let lookup: (String) -> String? = { name in headers.first { $0.0.lowercased() == name }?.1 }
        var refusal: SignatureError?
        var verified: SlackConnector?
        for connector in connectors {
            do {
                _ = try connector.interactionVerifier.verify(headers: lookup, body: body, now: now)
                verified = connector
                break
            } catch {
                refusal = refusal ?? error
            }
        }
        guard let connector = verified else {
            let reason = refusal?.description ?? "no signature"
            try await record(.rejected, connector: "slack", error: reason, at: now)
            return Answer(status: 401, body: ["error": .string("the Slack signature was refused: \(refusal?.message ?? reason)")])
        }
        guard let text = FormEncoding.decode(body)["payload"], let payload = try? JSON.parse(bytes: Array(text.utf8), limits: .request) else {
            try await record(.invalid, connector: connector.id, error: "no JSON payload field", at: now)
            return Answer(status: 400, body: ["error": "expected a form-encoded body with a JSON 'payload' field"])
        }
        guard payload["type"]?.stringValue == "block_actions", let action = payload["actions"]?.arrayValue?.first else {
            return Answer(status: 200, body: ["ok": true, "text": .string("ignored: \(payload["type"]?.stringValue ?? "no type")")])
        }
        guard let value = action["value"]?.stringValue,
              let (reference, decision) = SlackReviewMessage.parse(value: value, key: gateway.configuration.secretKey) else {
            try await record(.rejected, connector: connector.id, error: "button value not signed by this gateway", at: now)
            return Answer(status: 403, body: ["error": "the button's value was not signed by this gateway"])
        }
        guard action["block_id"]?.stringValue == reference.blockID else {
            try await record(.rejected, connector: connector.id, error: "button value of run \(reference.run) clicked in another message",
                             at: now, run: reference.run)
            return Answer(status: 403, body: ["error": "the button belongs to another run's message"])
        }
        let user = payload["user"]
        let reviewer = user?["username"]?.stringValue ?? user?["name"]?.stringValue ?? user?["id"]?.stringValue ?? "someone on Slack"
        let responseURL = payload["response_url"]?.stringValue
        let original = payload["message"]?["blocks"]
        do {
            _ = try await gateway.review(
                run: reference.run, decision: decision, reviewer: reviewer,
                extra: ["source": "slack", "slack_user_id": user?["id"] ?? .null],
                audit: AuditEntry(at: now, actor: .slack, name: reviewer, action: "review.decided", target: "run:\(reference.run.rawValue)")
            ) { step, output in
                guard let responseURL else { return [] }
                let update = SlackReviewMessage.decided(original: original, decision: decision, reviewer: reviewer,
                                                        at: output["decided_at"]?.stringValue ?? now.rfc3339)
                return [Self.notice(update, to: responseURL, run: reference.run, step: step, connector: connector.id, at: now)]
            }
            gateway.logger.info("slack review recorded", metadata: ["run_id": "\(reference.run)", "decision": "\(decision)"])
            gateway.metrics.callbackReceived(connector: connector.id, outcome: "decided")
            return Answer(status: 200, body: ["ok": true, "text": .string("\(decision == "approve" ? "Approved" : "Declined") by \(reviewer)")])
        } catch let error as Gateway.ReviewError {
            gateway.metrics.callbackReceived(connector: connector.id, outcome: "already_decided")
            let text = try await alreadyDecided(reference.run, error)
            if let responseURL {
                let notice: JSON = ["response_type": "ephemeral", "replace_original": false, "text": .string(text)]
                try await gateway.store.enqueue([Self.notice(notice, to: responseURL, run: reference.run, step: reference.step,
                                                             connector: connector.id, at: now)])
                gateway.engine.deliveries.ring()
            }
            return Answer(status: 200, body: ["ok": false, "text": .string(text)])
        }
    }

    /// What a second click is told.
    private func alreadyDecided(_ run: RunID, _ error: Gateway.ReviewError) async throws -> String {
        guard error == .noReviewWaiting, let snapshot = try await gateway.store.loadRun(run) else {
            return "This case no longer exists."
        }
        let kinds = (try? gateway.live.workflow(for: snapshot.run).get())?.stepsByID ?? [:]
        let decided = snapshot.steps.last { step in
            if case .wait(.review)? = kinds[step.id]?.kind { return step.output != nil }
            return false
        }
        if let output = decided?.output, let decision = output["decision"]?.stringValue {
            let verb = decision == "approve" ? "approved" : "declined"
            return "This case was already decided: \(verb) by \(output["reviewer"]?.stringValue ?? "someone") at \(output["decided_at"]?.stringValue ?? "an earlier time"). Nothing changed."
        }
        return "This case is not waiting for a review (run \(snapshot.run.status.rawValue)). Nothing changed."
    }

    /// A message to `response_url`, sent by the delivery engine without touching the step.
    static func notice(_ message: JSON, to url: String, run: RunID, step: String, connector: String, at now: Date) -> Delivery {
        Delivery(id: .generate(at: now), runID: run, stepID: step, connector: connector, operation: SlackConnector.updateMessage,
                 request: OutboundRequest(method: "POST", url: url, headers: [("Content-Type", "application/json")], body: message.text),
                 nextAttemptAt: now, detached: true, createdAt: now)
    }

    private func record(_ status: CallbackStatus, connector: String, error: String, at now: Date, run: RunID? = nil) async throws {
        gateway.metrics.callbackReceived(connector: connector, outcome: status.rawValue)
        gateway.logger.warning("slack interaction refused", metadata: ["connector": "\(connector)", "reason": "\(error)"])
        try await gateway.store.recordCallback(InboundCallback(id: .generate(at: now), connector: connector, status: status,
                                                               error: error, runID: run, receivedAt: now))
    }
}
