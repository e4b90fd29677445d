import CEL
import Foundation
import Hummingbird

extension Gateway {
    var deliveryRoutes: [Route] {
        [
            Route(.get, "/v1/deliveries", "The delivery log, newest first (filters: run, connector, status, since, until; cursor, limit)",
                  .scope("deliveries:read"),
                  query: [QueryParameter("run", .string, "Only this run's."), QueryParameter("connector", .string, "Only this connector's."),
                          QueryParameter("status", .oneOf(DeliveryStatus.allCases.map(\.rawValue)), "Only those with this status."),
                          .since, .until, .cursor, .limit],
                  answers: [.json(200, .page(.ref("Delivery")))
                      .link("delivery", to: "get_v1_deliveries_id", ["id": "$response.body#/data/0/id"])
                      .link("retry", to: "post_v1_deliveries_id_retry", ["id": "$response.body#/data/0/id"])]) { [self] request, context in
                let parameters = request.uri.queryParameters
                var query = DeliveryQuery()
                if let run = parameters["run"] { query.run = RunID(String(run)) }
                if let connector = parameters["connector"] { query.connector = String(connector) }
                if let status = parameters["status"] {
                    guard let parsed = DeliveryStatus(rawValue: String(status)) else {
                        throw Problem.badRequest("status must be one of: " + DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    query.status = parsed
                }
                query.since = try Self.time(parameters, "since")
                query.until = try Self.time(parameters, "until")
                if let cursor = parameters["cursor"] { query.before = DeliveryID(String(cursor)) }
                if let limit = try pageLimit(parameters["limit"]) { query.limit = limit }
                let deliveries = try await store.listDeliveries(query)
                let next: JSON = deliveries.count == query.limit ? .string(deliveries.last!.id.rawValue) : .null
                return Response.json(["data": .array(deliveries.map { $0.json(attempts: nil) }), "next_cursor": next])
            },
            Route(.get, "/v1/deliveries/{id}", "A delivery with every attempt", .scope("deliveries:read"),
                  answers: [.json(200, .ref("Delivery"))], problems: [404]) { [self] _, context in
                let id = DeliveryID(try context.parameters.require("id"))
                guard let record = try await store.delivery(id) else { throw Problem.notFound("no delivery '\(id)'") }
                return Response.json(record.delivery.json(attempts: record.attempts))
            },
            Route(.post, "/v1/deliveries/{id}/retry", "Send a failed or dead delivery again and resume its run",
                  .scope("deliveries:write"), answers: [.json(202, .ref("Delivery"))], problems: [404, 409]) { [self] _, context in
                let id = DeliveryID(try context.parameters.require("id"))
                switch try await retryDelivery(id, audit: context.audit("delivery.retried", target: "delivery:\(id.rawValue)")) {
                case .reopened:
                    guard let record = try await store.delivery(id) else { throw Problem.notFound("no delivery '\(id)'") }
                    return Response.json(record.delivery.json(attempts: record.attempts), status: .accepted)
                case .notFound:
                    throw Problem.notFound("no delivery '\(id)'")
                case let .notRetryable(status):
                    throw Problem(.conflict, "delivery '\(id)' is \(status.rawValue); only failed and dead deliveries can be sent again")
                }
            },
        ]
    }

    /// Reopens a failed or dead delivery and wakes the delivery worker; `audit` is written with it.
    public func retryDelivery(_ id: DeliveryID, audit: AuditEntry? = nil) async throws -> DeliveryRetryResult {
        let result = try await store.retryDelivery(id, at: clock.now(), audit: audit)
        if case .reopened = result { engine.deliveries.ring() }
        return result
    }
}

extension Delivery {
    /// The schema of ``json(attempts:)``.
    static let schema = APISchema.object([
        "id": .string, "run_id": .string, "step_id": .string, "connector": .string, "operation": .string,
        "status": .oneOf(DeliveryStatus.allCases.map(\.rawValue)), "attempt_count": .integer(minimum: 0),
        "next_attempt_at": APISchema.time.orNull, "last_error": APISchema.ref("StepError").orNull,
        "created_at": .time, "updated_at": .time,
        "request": .object(["method": .string, "url": .string]),
    ], optional: [
        "attempts": APISchema.array(.ref("DeliveryAttempt")).described("Every attempt, first to last (one delivery only)."),
    ])

    /// The schema of an attempt in ``json(attempts:)``.
    static let attemptSchema = APISchema.object([
        "number": .integer(minimum: 1), "trigger": .string, "started_at": .time, "duration_ms": .integer(minimum: 0),
        "request": APISchema.anyObject.described("What was sent, secrets redacted."),
        "response": APISchema.anyObject.orNull.described("The status, headers and a body excerpt of the answer."),
        "error": APISchema.object(["class": .string, "message": .string]).orNull,
    ])

    func json(attempts: [DeliveryAttempt]?) -> JSON {
        var object: [String: JSON] = [
            "id": .string(id.rawValue), "run_id": .string(runID.rawValue), "step_id": .string(stepID),
            "connector": .string(connector), "operation": .string(operation), "status": .string(status.rawValue),
            "attempt_count": .number(Double(attemptCount)),
            "next_attempt_at": nextAttemptAt.flatMap { status == .pending ? .string($0.rfc3339) : nil } ?? .null,
            "last_error": lastError?.json ?? .null, "created_at": .string(createdAt.rfc3339), "updated_at": .string(updatedAt.rfc3339),
            "request": ["method": .string(request.method), "url": .string(request.url)],
        ]
        if let attempts {
            // Every attempt sends the delivery's body: the log keeps it once, on the delivery.
            let excerpt = DeliveryWorker.excerpt(Array((request.body ?? "").utf8))
            object["attempts"] = .array(attempts.map { attempt in
                var sent = attempt.request
                if case var .object(fields) = sent, fields["body_excerpt"] == nil {
                    fields["body_excerpt"] = .string(excerpt)
                    sent = .object(fields)
                }
                return ["number": .number(Double(attempt.number)), "trigger": .string(attempt.trigger.rawValue),
                 "started_at": .string(attempt.startedAt.rfc3339), "duration_ms": .number(Double(attempt.durationMilliseconds)),
                 "request": sent, "response": attempt.response ?? .null,
                 "error": attempt.errorClass.map { ["class": .string($0), "message": .string(attempt.errorMessage ?? $0)] } ?? .null]
            })
        }
        return .object(object)
    }
}

/// The delivery log's JSON, shared by the API and the command line.
public enum DeliveryPresentation {
    public static func json(_ record: DeliveryRecord) -> JSON { record.delivery.json(attempts: record.attempts) }
}
