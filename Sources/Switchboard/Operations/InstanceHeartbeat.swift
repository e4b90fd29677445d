import Foundation
import Logging
import ServiceLifecycle

/// Says that this instance is alive and keeps its leases: every ``interval`` it records a
/// heartbeat (``Store/heartbeat(_:startedAt:at:)``, listed by `GET /v1/instances`) and extends
/// every lease it holds by ``Lease/duration``. An instance that stops beating loses its leases
/// when they expire, and others take its work over.
public final class InstanceHeartbeat: Service {
    let store: any Store
    let instance: InstanceID
    let clock: any WallClock
    let logger: Logger
    let startedAt: Date
    /// A third of a lease's life, so that two missed beats still leave the leases held.
    public static let interval: Duration = .seconds(Int64(Lease.duration / 3))

    init(store: any Store, instance: InstanceID, clock: any WallClock, logger: Logger) {
        self.store = store
        self.instance = instance
        self.clock = clock
        self.logger = logger
        startedAt = clock.now()
    }

    /// One beat: the heartbeat and the leases renewed.
    public func beat() async throws {
        let now = clock.now()
        try await store.heartbeat(instance, startedAt: startedAt, at: now)
        try await store.renewLeases(of: instance, until: now.addingTimeInterval(Lease.duration))
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await beat()
            } catch {
                logger.warning("heartbeat failed", metadata: ["instance": "\(instance)", "error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Sleep.for(Self.interval) }
        }
    }
}
