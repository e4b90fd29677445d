import CEL
import Foundation
import Hummingbird

extension Gateway {
    /// How recent a heartbeat must be for `GET /v1/instances` to list its instance.
    static let instanceWindow: TimeInterval = 60

    var instanceRoutes: [Route] {
        [
            Route(.get, "/v1/instances", "The gateway instances seen in the last minute, with the leases each holds",
                  .scope("admin"), answers: [.json(200, .object(["instances": .array(.ref("Instance"))]))]) { [self] _, context in
                let seen = try await store.instances(seenSince: clock.now().addingTimeInterval(-Self.instanceWindow))
                return Response.json(["instances": .array(seen.map(\.json))])
            },
        ]
    }
}

extension InstanceRecord {
    /// The schema of ``json``.
    static let schema = APISchema.object([
        "id": .string, "started_at": .time, "heartbeat_at": .time,
        "leases": .object(["runs": .integer(minimum: 0), "deliveries": .integer(minimum: 0)]),
    ])

    /// `{"id", "started_at", "heartbeat_at", "leases": {"runs", "deliveries"}}`.
    var json: JSON {
        ["id": .string(id.rawValue), "started_at": .string(startedAt.rfc3339), "heartbeat_at": .string(heartbeatAt.rfc3339),
         "leases": ["runs": .number(Double(leasedRuns)), "deliveries": .number(Double(leasedDeliveries))]]
    }
}
