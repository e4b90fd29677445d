import CEL
import Foundation
import Hummingbird

extension Gateway {
    /// The audit log, newest first.
    var auditRoutes: [Route] {
        [
            Route(.get, "/v1/audit", "The audit log, newest first (filters: action, actor, since, until; cursor, limit)",
                  .scope("admin"),
                  query: [QueryParameter("action", .string, "Only this action (key.created, review.decided...)."),
                          QueryParameter("actor", .string, "Only this actor's (a key's name, a Slack user, cli:USER)."),
                          .since, .until, .cursor, .limit],
                  answers: [.json(200, .page(.ref("AuditEntry")))]) { [self] request, _ in
                let parameters = request.uri.queryParameters
                var query = AuditQuery()
                query.action = parameters["action"].map(String.init)
                query.actor = parameters["actor"].map(String.init)
                query.since = try Self.time(parameters, "since")
                query.until = try Self.time(parameters, "until")
                if let cursor = parameters["cursor"] { query.before = AuditID(String(cursor)) }
                if let limit = try pageLimit(parameters["limit"]) { query.limit = limit }
                let entries = try await store.auditLog(query)
                let next: JSON = entries.count == query.limit ? .string(entries.last!.id.rawValue) : .null
                return Response.json(["data": .array(entries.map(\.json)), "next_cursor": next])
            },
        ]
    }
}

extension AuditEntry {
    /// The schema of ``json``.
    static let schema = APISchema.object([
        "id": .string, "at": .time,
        "actor": .object(["kind": .oneOf(AuditEntry.ActorKind.allCases.map(\.rawValue)), "name": .string]),
        "action": .string, "target": .string, "outcome": .string,
        "request_id": APISchema.string.orNull, "source_ip": APISchema.string.orNull, "details": .any,
    ])
}
