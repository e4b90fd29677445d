import Foundation

/// Counters that several instances share, kept by a store that several instances use at once, so
/// that a limit holds for all of them together rather than for each.
///
/// The store keeps the numbers and takes them atomically; it does not know what they limit. The
/// delivery worker names them after connectors (``DeliveryWorker``) and decides with them: a token
/// bucket for a `rate_limit`, slots for a `concurrency`, and a versioned value holding a circuit
/// breaker's phase, whose transitions are the engine's (``CircuitBreaker/Phase``).
///
/// A store used by one instance at a time has none (``Store/sharedLimits``): that instance's memory
/// counts exactly, and faster.
public protocol SharedLimits: Sendable {
    /// Takes one token from the bucket `name`, which holds up to `capacity` and gains `perSecond`
    /// tokens a second (created full); answers how long the taker waits before its token is due:
    /// zero when one was there, otherwise its turn behind the tokens already owed. The bucket is
    /// taken under its row lock, waited for and never skipped, so that two instances cannot spend
    /// one token; the database's clock measures the refill.
    func takeToken(_ name: String, capacity: Double, perSecond: Double) async throws -> Duration
    /// Takes one of the `limit` slots of `name` for `holder` until it is released or `hold` has
    /// passed (an instance that dies does not keep it); nil when every slot is held.
    func takeSlot(_ name: String, limit: Int, holder: InstanceID, hold: Duration) async throws -> Int?
    /// Gives back a slot ``takeSlot(_:limit:holder:hold:)`` took.
    func releaseSlot(_ name: String, slot: Int, holder: InstanceID) async throws
    /// Gives back every slot `holder` holds: an instance restarted with the same id.
    func releaseSlots(heldBy holder: InstanceID) async throws
    /// The value `name` holds, with its version; nil when none was written.
    func sharedValue(_ name: String) async throws -> SharedValue?
    /// Writes `text` as `name`'s value if it is still at `version` (nil: only if there is none
    /// yet); false, writing nothing, when another wrote first.
    func replaceSharedValue(_ name: String, with text: String, expecting version: Int64?) async throws -> Bool
}

/// A value of ``SharedLimits``, and the version a replacement must expect.
public struct SharedValue: Sendable, Equatable {
    public var text: String
    public var version: Int64

    public init(text: String, version: Int64) {
        self.text = text
        self.version = version
    }
}

extension Store {
    public var sharedLimits: (any SharedLimits)? { nil }
}
