import CEL
import Foundation

/// The id of an audit entry (`aud_...`), time-ordered.
public struct AuditID: PrefixedID {
    public static let prefix = "aud"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// One entry of the audit log: who did what to what, when, from where, and how it ended. Written
/// in the same transaction as the change it records; never updated or deleted through the API.
public struct AuditEntry: Sendable, Equatable {
    /// Who acts: an API key, a Slack user (through a signed click), a console user, or the gateway
    /// itself and its command line.
    public enum ActorKind: String, Sendable, CaseIterable, Codable {
        case key, slack, console, system
    }

    public var id: AuditID
    public var at: Date
    public var actorKind: ActorKind
    /// The key's name, the Slack user's, the console user's; `cli` or `gateway` for the system.
    public var actorName: String
    /// What was done: `key.created`, `key.revoked`, `review.decided`, `delivery.retried`,
    /// `list.replaced`, `list.items_added`, `list.item_removed`, `list.deleted`, ...
    public var action: String
    /// What it was done to: `key:NAME`, `run:ID`, `delivery:ID`, `list:NAME`.
    public var target: String
    /// `ok`, or why it was refused.
    public var outcome: String
    public var requestID: String?
    public var sourceIP: String?
    /// What else says what happened (a review's decision, the items added); never a secret.
    public var details: JSON?

    public init(at: Date, actor: ActorKind, name: String, action: String, target: String, outcome: String = "ok",
                requestID: String? = nil, sourceIP: String? = nil, details: JSON? = nil) {
        id = .generate(at: at)
        self.at = at
        actorKind = actor
        actorName = name
        self.action = action
        self.target = target
        self.outcome = outcome
        self.requestID = requestID
        self.sourceIP = sourceIP
        self.details = details
    }

    /// An entry for a change made with the command line on this machine (`switchboard keys`,
    /// `lists`, `deliveries`): the system acts, as the user running it.
    public static func commandLine(_ action: String, target: String, details: JSON? = nil) -> AuditEntry {
        let user = ProcessInfo.processInfo.environment["USER"].flatMap { $0.isEmpty ? nil : $0 } ?? "unknown"
        return AuditEntry(at: Date(), actor: .system, name: "cli:\(user)", action: action, target: target, details: details)
    }

    /// As `GET /v1/audit` answers it.
    public var json: JSON {
        ["id": .string(id.rawValue), "at": .string(at.rfc3339),
         "actor": ["kind": .string(actorKind.rawValue), "name": .string(actorName)],
         "action": .string(action), "target": .string(target), "outcome": .string(outcome),
         "request_id": requestID.map(JSON.string) ?? .null, "source_ip": sourceIP.map(JSON.string) ?? .null,
         "details": details ?? .null]
    }
}

/// A filter and page over the audit log, newest first.
public struct AuditQuery: Sendable {
    public var action: String?
    /// The actor's name.
    public var actor: String?
    public var since: Date?
    public var until: Date?
    /// Only entries older than this id (the previous page's last id).
    public var before: AuditID?
    public var limit: Int

    public init(action: String? = nil, actor: String? = nil, since: Date? = nil, until: Date? = nil, before: AuditID? = nil,
                limit: Int = 50) {
        self.action = action
        self.actor = actor
        self.since = since
        self.until = until
        self.before = before
        self.limit = limit
    }
}
