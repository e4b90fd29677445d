import CEL
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Routes that their signatures authenticate, not an API key: vendors' callbacks and Slack's
/// button clicks. And the operator's view of what arrived.
extension Gateway {
    var signedRoutes: [Route] {
        [
            Route(.post, "/v1/callbacks/{connector}", "A vendor's signed callback; 401 bad signature or replay, 202 kept until its step records the id",
                  .signed, body: .signed,
                  answers: [.json(200, .object(["status": .oneOf(["matched"]), "run_id": .string])),
                            .json(202, .object(["status": .oneOf(["pending"])]))],
                  problems: [400]) { [self] request, context in
                let connector = try context.parameters.require("connector")
                let body = try await Self.rawBody(request)
                switch try await callbacks.receive(connector: connector, headers: Self.headerPairs(request), body: body) {
                case let .matched(run):
                    return Response.json(["status": "matched", "run_id": .string(run.rawValue)])
                case .pending:
                    return Response.json(["status": "pending"], status: .accepted)
                case .unknownConnector:
                    throw Problem.notFound("no connector '\(connector)' that takes callbacks")
                case let .rejected(reason):
                    throw Problem.unauthorized("the callback's signature was refused: \(reason)")
                case .replayed:
                    throw Problem.unauthorized("this callback's message id was received before; nothing changed")
                case let .invalid(reason):
                    throw Problem.badRequest("the callback could not be read: \(reason)")
                }
            },
            Route(.post, "/v1/sources/{connector}", "A signed webhook from an event source, ingested as an event; 401 bad signature or replay, 422 unreadable",
                  .signed, body: .signed, answers: [.json(202, .ref("IngestAnswer")), .json(200, .ref("IngestAnswer"))],
                  problems: [422]) { [self] request, context in
                let connector = try context.parameters.require("connector")
                let body = try await Self.rawBody(request)
                switch try await receive(source: connector, headers: Self.headerPairs(request), body: body) {
                case let .ingested(answer):
                    return Response.json(text: answer.text, status: answer.duplicate ? .ok : .accepted)
                case .unknownConnector:
                    throw Problem.notFound("no event source '\(connector)'")
                case let .rejected(reason):
                    throw Problem.unauthorized("the request's signature was refused: \(reason)")
                case .replayed:
                    throw Problem.unauthorized("this signed request was received before; nothing was ingested")
                case let .unreadable(error):
                    throw Problem(.unprocessableContent, "the event could not be read from the request: \(error)",
                                  errors: [Problem.FieldError(path: error.field, message: error.message)])
                }
            },
            Route(.post, "/v1/slack/interactions", "Slack button clicks, verified with Slack's v0 signature",
                  .signed, body: RequestBody(content: [("application/x-www-form-urlencoded", .any)],
                                             description: "Slack's form body with its JSON `payload`, read byte for byte."),
                  answers: [.json(200, .anyObject)], problems: [403]) { [self] request, _ in
                let body = try await Self.rawBody(request)
                let answer = try await SlackInteractions(gateway: self).handle(headers: Self.headerPairs(request), body: body)
                guard answer.status < 400 else {
                    let status: HTTPResponse.Status = switch answer.status {
                    case 401: .unauthorized
                    case 403: .forbidden
                    case 404: .notFound
                    default: .badRequest
                    }
                    throw Problem(status, answer.body["error"]?.stringValue ?? "the interaction was refused")
                }
                return Response.json(answer.body, status: HTTPResponse.Status(code: answer.status))
            },
        ]
    }

    var callbackLogRoutes: [Route] {
        [
            Route(.get, "/v1/callbacks", "Inbound callbacks and Slack clicks as received: matched, pending, unmatched, rejected, replayed",
                  .scope("deliveries:read"),
                  query: [QueryParameter("connector", .string, "Only this connector's."),
                          QueryParameter("status", .oneOf(CallbackStatus.allCases.map(\.rawValue)), "Only those with this status."),
                          .limit],
                  answers: [.json(200, .object(["data": .array(.ref("Callback"))]))]) { [self] request, context in
                let parameters = request.uri.queryParameters
                var status: CallbackStatus?
                if let text = parameters["status"] {
                    guard let parsed = CallbackStatus(rawValue: String(text)) else {
                        throw Problem.badRequest("status must be one of: " + CallbackStatus.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    status = parsed
                }
                let limit = try pageLimit(parameters["limit"]) ?? 50
                let callbacks = try await store.listCallbacks(connector: parameters["connector"].map(String.init), status: status, limit: limit)
                return Response.json(["data": .array(callbacks.map(\.json))])
            },
        ]
    }

    static func rawBody(_ request: Request) async throws -> [UInt8] {
        var request = request
        do {
            return Array(buffer: try await request.collectBody(upTo: 1 << 20))
        } catch is NIOTooManyBytesError {
            throw Problem(.contentTooLarge, "the request body is larger than 1 MiB")
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw Problem(.contentTooLarge, "the request body is larger than 1 MiB")
        }
    }

    static func headerPairs(_ request: Request) -> [(String, String)] {
        request.headers.map { ($0.name.rawName, $0.value) }
    }
}

extension InboundCallback {
    /// The schema of ``json``.
    static let schema = APISchema.object([
        "id": .string, "connector": .string, "status": .oneOf(CallbackStatus.allCases.map(\.rawValue)),
        "message_id": APISchema.string.orNull, "correlation": APISchema.string.orNull, "run_id": APISchema.string.orNull,
        "step_id": APISchema.string.orNull, "error": APISchema.string.orNull, "received_at": .time,
        "expires_at": APISchema.time.orNull,
    ])

    /// As GET /v1/callbacks shows it; the payload is not shown.
    var json: JSON {
        ["id": .string(id.rawValue), "connector": .string(connector), "status": .string(status.rawValue),
         "message_id": messageID.map(JSON.string) ?? .null, "correlation": correlation.map(JSON.string) ?? .null,
         "run_id": runID.map { .string($0.rawValue) } ?? .null, "step_id": stepID.map(JSON.string) ?? .null,
         "error": error.map(JSON.string) ?? .null, "received_at": .string(receivedAt.rfc3339),
         "expires_at": expiresAt.map { .string($0.rfc3339) } ?? .null]
    }
}
