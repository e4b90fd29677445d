import CEL
import Foundation

public struct DeliveryID: PrefixedID {
    public static let prefix = "dlv"
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
}

/// Where a delivery is: `failed` is a final answer (a 4xx, a refused address); `dead` means
/// the retries were used up.
public enum DeliveryStatus: String, Codable, Sendable, CaseIterable {
    case pending, sending, succeeded, failed, dead

    public var isFinal: Bool { self == .succeeded || self == .failed || self == .dead }
}

/// A request as a connector describes it, before authentication and signing are added at send time.
public struct OutboundRequest: Codable, Hashable, Sendable {
    public var method: String
    public var url: String
    /// Header names and values, in order.
    public var headers: [[String]]
    public var body: String?
    /// The connector's name for this request among several of one step (`submit`, `poll`);
    /// handed back with its response.
    public var stage: String?

    public init(method: String, url: String, headers: [(String, String)] = [], body: String? = nil, stage: String? = nil) {
        self.method = method
        self.url = url
        self.headers = headers.map { [$0.0, $0.1] }
        self.body = body
        self.stage = stage
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.first?.lowercased() == name.lowercased() }?.last
    }
}

/// One outbound call of a step, with its retry state. Its id is the idempotency key, the same on
/// every attempt.
public struct Delivery: Sendable, Equatable {
    public var id: DeliveryID
    public var runID: RunID
    public var stepID: String
    public var connector: String
    public var operation: String
    public var status: DeliveryStatus
    public var request: OutboundRequest
    /// The step's retry settings, which override the connector's.
    public var retry: RetrySettings?
    public var attemptCount: Int
    public var nextAttemptAt: Date?
    /// Whether the next attempt was asked for by an operator.
    public var manual: Bool
    public var lastError: StepError?
    /// A delivery that reports on a step without settling it (a Slack message update): its
    /// result never touches the step.
    public var detached: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// Who holds the delivery while it is `sending`; nil otherwise.
    public var lease: Lease?

    public init(id: DeliveryID, runID: RunID, stepID: String, connector: String, operation: String,
                status: DeliveryStatus = .pending, request: OutboundRequest, retry: RetrySettings? = nil, attemptCount: Int = 0,
                nextAttemptAt: Date?, manual: Bool = false, lastError: StepError? = nil, detached: Bool = false, createdAt: Date,
                updatedAt: Date? = nil, lease: Lease? = nil)
    {
        self.lease = lease
        self.detached = detached
        self.id = id
        self.runID = runID
        self.stepID = stepID
        self.connector = connector
        self.operation = operation
        self.status = status
        self.request = request
        self.retry = retry
        self.attemptCount = attemptCount
        self.nextAttemptAt = nextAttemptAt
        self.manual = manual
        self.lastError = lastError
        self.createdAt = createdAt
        self.updatedAt = updatedAt ?? createdAt
    }
}

/// One HTTP attempt of a delivery, as the delivery log shows it (secrets redacted).
public struct DeliveryAttempt: Sendable, Equatable {
    public enum Trigger: String, Codable, Sendable { case scheduled, manual }

    public var deliveryID: DeliveryID
    public var number: Int
    public var trigger: Trigger
    public var startedAt: Date
    public var durationMilliseconds: Int
    /// `{method, url, headers, body_size}` as JSON text, with secret headers as `••••`; the body
    /// is the delivery's (the API shows its first 4 KiB as `body_excerpt`). Kept as the text the
    /// log stores: the worker writes it directly and the store neither encodes nor parses it.
    public var requestText: String
    /// `{status, headers, body_size, body_truncated, body_excerpt}` as JSON text, or nil when no
    /// response came.
    public var responseText: String?
    /// `timeout`, `connect`, `tls`, `http_status`, `ssrf_blocked`, `cancelled`, `circuit_open`.
    public var errorClass: String?
    public var errorMessage: String?

    /// ``requestText`` parsed.
    public var request: JSON { Self.parsed(requestText) }
    /// ``responseText`` parsed.
    public var response: JSON? { responseText.map(Self.parsed) }

    private static func parsed(_ text: String) -> JSON {
        (try? JSON.parse(text)) ?? .string(text)
    }

    public init(deliveryID: DeliveryID, number: Int, trigger: Trigger, startedAt: Date, durationMilliseconds: Int,
                requestText: String, responseText: String?, errorClass: String?, errorMessage: String?)
    {
        self.deliveryID = deliveryID
        self.number = number
        self.trigger = trigger
        self.startedAt = startedAt
        self.durationMilliseconds = durationMilliseconds
        self.requestText = requestText
        self.responseText = responseText
        self.errorClass = errorClass
        self.errorMessage = errorMessage
    }

    /// An attempt whose request and response are given as JSON values.
    public init(deliveryID: DeliveryID, number: Int, trigger: Trigger, startedAt: Date, durationMilliseconds: Int, request: JSON,
                response: JSON?, errorClass: String?, errorMessage: String?)
    {
        self.init(deliveryID: deliveryID, number: number, trigger: trigger, startedAt: startedAt,
                  durationMilliseconds: durationMilliseconds, requestText: request.text, responseText: response?.text,
                  errorClass: errorClass, errorMessage: errorMessage)
    }
}

/// A delivery with every attempt.
public struct DeliveryRecord: Sendable {
    public var delivery: Delivery
    public var attempts: [DeliveryAttempt]
}

/// A filter and page over the delivery log, newest first.
public struct DeliveryQuery: Sendable {
    public var run: RunID?
    public var connector: String?
    public var status: DeliveryStatus?
    public var since: Date?
    public var until: Date?
    public var before: DeliveryID?
    public var limit: Int

    public init(run: RunID? = nil, connector: String? = nil, status: DeliveryStatus? = nil, since: Date? = nil,
                until: Date? = nil, before: DeliveryID? = nil, limit: Int = 50)
    {
        self.run = run
        self.connector = connector
        self.status = status
        self.since = since
        self.until = until
        self.before = before
        self.limit = limit
    }
}

/// What an attempt came to, and what the store should do about it, in one transaction.
public struct AttemptResult: Sendable {
    public enum Outcome: Sendable {
        /// The step's output; the step completes.
        case succeeded(output: JSON)
        /// The request succeeded and the step now waits for the connector's callback with this correlation id.
        case awaiting(correlation: String)
        /// The request succeeded and the step sends another one.
        case followUp(OutboundRequest)
        /// Try again at this time.
        case retry(at: Date)
        /// No more attempts: `failed` (final answer) or `dead` (retries used up); the step fails.
        case gaveUp(DeliveryStatus, StepError)
        /// Not attempted (circuit open): try again at this time without counting an attempt.
        case postponed(until: Date)
    }

    public var deliveryID: DeliveryID
    public var attempt: DeliveryAttempt?
    public var outcome: Outcome

    public init(deliveryID: DeliveryID, attempt: DeliveryAttempt?, outcome: Outcome) {
        self.deliveryID = deliveryID
        self.attempt = attempt
        self.outcome = outcome
    }
}

/// What reopening a delivery did.
public enum DeliveryRetryResult: Sendable, Equatable {
    case reopened(RunID)
    case notFound
    /// Only failed and dead deliveries can be sent again.
    case notRetryable(DeliveryStatus)
}
