import Foundation

/// The id of a running gateway instance: `--instance-id`, or by default the host name (with
/// SQLite, whose one instance then takes back at once what its previous process held) or the host
/// name and process id (with a shared database).
public struct InstanceID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }

    /// The host's name, and with `withProcess` the process id after it.
    public static func local(withProcess: Bool) -> InstanceID {
        let host = ProcessInfo.processInfo.hostName
        return InstanceID(withProcess ? "\(host)-\(ProcessInfo.processInfo.processIdentifier)" : host)
    }
}

/// A claim on a delivery (or a run) being worked on: who holds it, and until when. The holder
/// renews it while it works (``Store/renewLeases(of:until:)``); once it has expired, any instance
/// may take the work over. A result is written only under the lease that produced it.
public struct Lease: Sendable, Hashable {
    public var owner: InstanceID
    public var expiresAt: Date

    public init(owner: InstanceID, expiresAt: Date) {
        self.owner = owner
        self.expiresAt = expiresAt
    }

    /// How long a lease lasts before it must be renewed: at most 30 s, so that the work of an
    /// instance that died is taken over within half a minute.
    public static let duration: TimeInterval = 30
}

/// A gateway instance as its heartbeats show it.
public struct InstanceRecord: Sendable, Equatable {
    public var id: InstanceID
    public var startedAt: Date
    public var heartbeatAt: Date
    /// Leases it holds now.
    public var leasedRuns: Int
    public var leasedDeliveries: Int

    public init(id: InstanceID, startedAt: Date, heartbeatAt: Date, leasedRuns: Int = 0, leasedDeliveries: Int = 0) {
        self.id = id
        self.startedAt = startedAt
        self.heartbeatAt = heartbeatAt
        self.leasedRuns = leasedRuns
        self.leasedDeliveries = leasedDeliveries
    }
}
