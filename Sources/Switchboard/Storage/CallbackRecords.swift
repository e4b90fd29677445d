import CEL
import Foundation

/// What a waiting step expects: a callback of this connector carrying this correlation id.
public struct CallbackKey: Sendable, Hashable, Codable {
    public var connector: String
    public var correlation: String

    public init(connector: String, correlation: String) {
        self.connector = connector
        self.correlation = correlation
    }
}

public struct CallbackID: PrefixedID {
    public static let prefix = "cbk"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// What became of an inbound callback, as the operator sees it in GET /v1/callbacks.
public enum CallbackStatus: String, Codable, Sendable, CaseIterable {
    /// Verified and applied to its waiting step.
    case matched
    /// Verified, but no step waits for its correlation id yet; kept for ten minutes.
    case pending
    /// Kept for ten minutes and never matched.
    case unmatched
    /// Its signature or timestamp was wrong (401); nothing changed.
    case rejected
    /// Its message id was seen before (409); nothing changed.
    case replayed
    /// Verified but unreadable (400 for a callback, 422 for an event source); nothing changed.
    case invalid
    /// A signed event source request, ingested as an event; its message id is taken.
    case accepted
}

extension InboundCallback {
    /// The record of this callback received again: a replay, without its payload.
    var replay: InboundCallback {
        var replay = self
        replay.id = .generate(at: receivedAt)
        replay.status = .replayed
        replay.error = "message id \(messageID ?? "") was received before"
        replay.payload = nil
        return replay
    }
}

/// An inbound callback (`POST /v1/callbacks/{connector}`), kept for matching and audit.
public struct InboundCallback: Sendable {
    public var id: CallbackID
    public var connector: String
    public var status: CallbackStatus
    public var messageID: String?
    public var correlation: String?
    /// The verified payload, kept while the callback is pending.
    public var payload: JSON?
    public var error: String?
    public var runID: RunID?
    public var stepID: String?
    public var receivedAt: Date
    /// When a pending callback becomes unmatched.
    public var expiresAt: Date?

    public init(id: CallbackID, connector: String, status: CallbackStatus, messageID: String? = nil, correlation: String? = nil,
                payload: JSON? = nil, error: String? = nil, runID: RunID? = nil, stepID: String? = nil, receivedAt: Date,
                expiresAt: Date? = nil)
    {
        self.id = id
        self.connector = connector
        self.status = status
        self.messageID = messageID
        self.correlation = correlation
        self.payload = payload
        self.error = error
        self.runID = runID
        self.stepID = stepID
        self.receivedAt = receivedAt
        self.expiresAt = expiresAt
    }
}

/// The step a callback matched, handed to the caller so that its connector can read the payload.
public struct CallbackMatch: Sendable {
    public var runID: RunID
    public var workflow: String
    /// The version of the workflow the run started on (``RunRecord/workflowVersion``).
    public var workflowVersion: Int?
    public var stepID: String
    /// What the step waits for.
    public var awaited: CallbackKey?
    /// The callback's payload.
    public var payload: JSON
}

/// What receiving a callback did.
public enum CallbackReceipt: Sendable, Equatable {
    case matched(RunID)
    /// Kept until a step records its correlation id, or until it expires.
    case pending
    /// The message id was seen before; nothing changed.
    case replayed
}
