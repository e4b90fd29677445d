import CEL
import Foundation

/// The Block Kit message of a review request, and the signed references its buttons carry.
public enum SlackReviewMessage {
    /// What a button refers to: the run and the step that posted the alert.
    public struct Reference: Sendable, Equatable {
        public var run: RunID
        public var step: String

        /// The `block_id` of the buttons' block, which Slack sends back with each click.
        public var blockID: String { "switchboard-review:\(run.rawValue):\(step)" }
    }

    /// A button's `value`: `v1.<run>.<step>.<decision>.<hmac>`, signed with the gateway's key, so
    /// that it cannot be forged, nor its decision changed.
    public static func value(_ reference: Reference, decision: String, key: GatewayKey) -> String {
        let message = "slack-review.v1|\(reference.run.rawValue)|\(reference.step)|\(decision)"
        return "v1.\(reference.run.rawValue).\(reference.step).\(decision).\(key.sign(message))"
    }

    /// Reads and checks a button's value; nil when it was not signed by this gateway.
    public static func parse(value: String, key: GatewayKey) -> (Reference, decision: String)? {
        let parts = value.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        // Step ids may contain dots; the run id and decision never do.
        guard parts.count >= 5, parts[0] == "v1" else { return nil }
        let run = parts[1], decision = parts[parts.count - 2], signature = parts[parts.count - 1]
        let step = parts[2 ..< parts.count - 2].joined(separator: ".")
        guard decision == "approve" || decision == "decline",
              key.verify("slack-review.v1|\(run)|\(step)|\(decision)", signature: signature) else { return nil }
        return (Reference(run: RunID(run), step: step), decision)
    }

    /// The alert: a header, the case's facts as fields, a link to the run, Approve and Decline.
    static func blocks(title: String, facts: JSON, link: String, reference: Reference, key: GatewayKey) -> JSON {
        var blocks: [JSON] = [["type": "header", "text": ["type": "plain_text", "text": .string(String(title.prefix(150)))]]]
        if case let .object(fields) = facts, !fields.isEmpty {
            let rendered: [JSON] = fields.keys.sorted().prefix(10).map { name in
                let value = fields[name]!
                return ["type": "mrkdwn", "text": .string("*\(name)*\n\(value.stringValue ?? value.text)")]
            }
            blocks.append(["type": "section", "fields": .array(rendered)])
        }
        blocks.append(["type": "context", "elements": [["type": "mrkdwn", "text": .string("<\(link)|Run \(reference.run.rawValue)>")]]])
        blocks.append([
            "type": "actions", "block_id": .string(reference.blockID),
            "elements": [
                ["type": "button", "action_id": "approve", "style": "primary",
                 "text": ["type": "plain_text", "text": "Approve"], "value": .string(value(reference, decision: "approve", key: key))],
                ["type": "button", "action_id": "decline", "style": "danger",
                 "text": ["type": "plain_text", "text": "Decline"], "value": .string(value(reference, decision: "decline", key: key))],
            ],
        ])
        return .array(blocks)
    }

    /// The message after a decision: the original blocks without buttons, and who decided what, when.
    static func decided(original: JSON?, decision: String, reviewer: String, at: String) -> JSON {
        let verb = decision == "approve" ? "Approved" : "Declined"
        let line = "\(decision == "approve" ? ":white_check_mark:" : ":x:") *\(verb)* by \(reviewer) at \(at)"
        var blocks = (original?.arrayValue ?? []).filter { $0["type"]?.stringValue != "actions" }
        blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": .string(line)]])
        return ["replace_original": true, "text": .string("\(verb) by \(reviewer) at \(at)"), "blocks": .array(blocks)]
    }
}
