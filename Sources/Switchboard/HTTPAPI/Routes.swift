import CEL
import Foundation
import HTTPTypes
import Hummingbird

/// A route of the API: its method and path, what it does, who may call it, and its handler, in
/// one place. The router is built from ``Gateway/routes``, and so is the OpenAPI document.
struct Route: Sendable {
    /// Who may call a route.
    enum Access: Sendable, Equatable {
        /// An API key with this scope (`Authorization: Bearer <key>`).
        case scope(String)
        /// Its signature authenticates it: vendors' callbacks, event sources, Slack's clicks.
        case signed
        /// Anyone: the probes, the metrics, the OpenAPI document.
        case open
    }

    typealias Handler = @Sendable (Request, GatewayRequestContext) async throws -> Response

    let method: HTTPRequest.Method
    /// As OpenAPI writes it: `/v1/runs/{id}`.
    let path: String
    let summary: String
    let access: Access
    let query: [QueryParameter]
    /// The body it reads, if any.
    let body: RequestBody?
    /// What it answers when it succeeds.
    let answers: [Answer]
    /// The problems particular to it (404, 409, 422...); those every route of its kind may
    /// answer (400, 401, 403, 413, 429, 503) are added by ``OpenAPIDocument``.
    let problems: [Int]
    let handler: Handler

    init(_ method: HTTPRequest.Method, _ path: String, _ summary: String, _ access: Access, query: [QueryParameter] = [],
         body: RequestBody? = nil, answers: [Answer], problems: [Int] = [], handler: @escaping Handler) {
        self.method = method
        self.path = path
        self.summary = summary
        self.access = access
        self.query = query
        self.body = body
        self.answers = answers
        self.problems = problems
        self.handler = handler
    }

    /// The scope an API key needs; nil for routes authenticated otherwise or open.
    var scope: String? { if case let .scope(scope) = access { scope } else { nil } }

    /// The path as the router writes it: `/v1/runs/:id`.
    var routerPath: RouterPath {
        RouterPath(path.split(separator: "/").map { segment in
            segment.hasPrefix("{") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/"))
    }
}

extension Gateway {
    /// Every route of the API.
    var routes: [Route] {
        operationRoutes + signedRoutes + callbackLogRoutes + eventRoutes + runRoutes + listRoutes + configurationRoutes
            + deliveryRoutes + instanceRoutes + auditRoutes
    }

    /// Adds every route to a router: those an API key authenticates behind the key's check and the
    /// scope's, the others as they are.
    func addRoutes(to router: Router<GatewayRequestContext>, limiter: RequestRateLimiter? = nil) {
        let authenticated = router.group().add(middleware: APIKeyMiddleware(gateway: self, limiter: limiter))
        for route in routes {
            switch route.access {
            case let .scope(scope):
                let handler = route.handler
                authenticated.on(route.routerPath, method: route.method) { request, context in
                    try requireScope(scope, context)
                    return try await handler(request, context)
                }
            case .signed, .open:
                router.on(route.routerPath, method: route.method, use: route.handler)
            }
        }
    }

    /// The probes, the metrics and this API's description.
    var operationRoutes: [Route] {
        [
            Route(.get, "/health", "Liveness probe", .open, answers: [.json(200, .object(["status": .oneOf(["ok"])]))]) { _, _ in Response.json(["status": "ok"]) },
            Route(.get, "/ready", "Readiness: store reachable, configuration loaded", .open,
                  answers: [.json(200, .object(["status": .oneOf(["ready"]), "workflows": .integer(minimum: 0)]))], problems: [503]) { [self] _, _ in
                do {
                    try await store.ping()
                    return Response.json(["status": "ready", "workflows": .number(Double(configuration.workflows.count))])
                } catch {
                    throw Problem(.serviceUnavailable, "the store does not answer", retryAfter: 5)
                }
            },
            Route(.get, "/metrics", "Prometheus metrics", .open,
                  answers: [Answer(status: 200, mediaType: "text/plain", schema: .string)]) { [self] _, _ in
                var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
                response.headers[.contentType] = "text/plain; version=0.0.4"
                return response
            },
            Route(.get, "/openapi.json", "This document", .open, answers: [.json(200, .anyObject)]) { [self] _, _ in Response.json(OpenAPIDocument.json(routes)) },
        ]
    }

    var eventRoutes: [Route] {
        [
            Route(.post, "/v1/events", "Ingest a CloudEvents 1.0 event; deduplicated by id or Idempotency-Key",
                  .scope("events:write"), query: [], body: Self.eventBody,
                  answers: [.json(202, Self.eventAnswer).link("run", to: "get_v1_runs_id", ["id": "$response.body#/runs/0/id"]),
                            .json(200, Self.eventAnswer)],
                  problems: [415]) { [self] request, context in
                let type = request.headers[.contentType]?.lowercased() ?? ""
                if type.hasPrefix(CloudEvent.batchMediaType) { return try await ingestBatch(request) }
                if request.headers[HTTPField.Name("ce-specversion")!] != nil {
                    let body = try await Self.rawBody(request)
                    switch CloudEvent.binary(headers: Self.headerPairs(request), body: body) {
                    case let .success(event):
                        let answer = try await ingest(event, idempotencyKey: request.headers[.idempotencyKey])
                        return Response.json(text: answer.text, status: answer.duplicate ? .ok : .accepted)
                    case let .failure(invalid):
                        throw Problem.badRequest("the CloudEvent (binary mode) is invalid: \(invalid.errors.map(\.path).joined(separator: ", "))",
                                                 errors: invalid.errors)
                    }
                }
                if !type.isEmpty, !(type.hasPrefix("application/json") || type.hasPrefix("application/cloudevents+json")) {
                    throw Problem(.unsupportedMediaType, """
                        Content-Type must be application/cloudevents+json or application/json (structured mode), \
                        \(CloudEvent.batchMediaType) (batched mode), or the event's own with ce-* headers (binary mode); got \(type)
                        """)
                }
                var request = request
                let (body, text) = try await request.jsonBodyWithText()
                var event: CloudEvent
                switch CloudEvent.validate(body) {
                case let .success(valid):
                    event = valid
                    event.text = text
                case let .failure(invalid):
                    let names = invalid.errors.map(\.path).joined(separator: ", ")
                    throw Problem.badRequest("the CloudEvent is invalid: \(names)", errors: invalid.errors)
                }
                let answer = try await ingest(event, idempotencyKey: request.headers[.idempotencyKey])
                return Response.json(text: answer.text, status: answer.duplicate ? .ok : .accepted)
            },
        ]
    }

    /// Batched mode: a JSON array of structured events, each ingested on its own (its own
    /// transaction and deduplication); 202 with one result per event, in order: the single-event
    /// answer, or the problem that event had.
    private func ingestBatch(_ request: Request) async throws -> Response {
        var request = request
        let (body, _) = try await request.jsonBodyWithText()
        guard case let .array(items) = body else {
            throw Problem.badRequest("a batch (\(CloudEvent.batchMediaType)) is a JSON array of CloudEvents")
        }
        guard items.count <= Self.batchLimit else {
            throw Problem.badRequest("a batch holds at most \(Self.batchLimit) events; this one has \(items.count)")
        }
        var results: [JSON] = []
        for (index, item) in items.enumerated() {
            switch CloudEvent.validate(item) {
            case let .success(event):
                do {
                    let answer = try await ingest(event, idempotencyKey: nil)
                    var result = try JSON.parse(answer.text)
                    if case var .object(members) = result {
                        members["status"] = .number(answer.duplicate ? 200 : 202)
                        result = .object(members)
                    }
                    results.append(result)
                } catch let error as StoreError where error.code == .unavailable {
                    throw error  // the whole batch: the client sends it again
                }
            case let .failure(invalid):
                let names = invalid.errors.map(\.path).joined(separator: ", ")
                results.append(Problem.badRequest("event \(index) of the batch is invalid: \(names)", errors: invalid.errors).json)
            }
        }
        return Response.json(["results": .array(results)], status: .accepted)
    }

    /// The most events one batch may carry.
    static let batchLimit = 1000

    /// The three forms of `POST /v1/events` that have a schema (binary mode puts the attributes in
    /// `ce-*` headers and the data in the body, with the data's own Content-Type).
    static let eventBody = RequestBody(
        content: [("application/cloudevents+json", .ref("CloudEvent")), ("application/json", .ref("CloudEvent")),
                  (CloudEvent.batchMediaType, APISchema.array(.any, maxItems: batchLimit).described(
                      "CloudEvents; each is checked on its own, and one that is not valid gets its problem as its result."))],
        description: "A CloudEvent in structured mode, a batch of them, or binary mode (`ce-*` headers, the body is `data`).")

    /// One event's answer, or a batch's: one result per event, in order.
    static let eventAnswer = APISchema.anyOf([
        .ref("IngestAnswer"),
        .object(["results": .array(.anyOf([.ref("IngestAnswer"), .ref("Problem")]))]),
    ])

    var runRoutes: [Route] {
        [
            Route(.post, "/v1/workflows/{id}/runs", "Start a run of an API-triggered workflow",
                  .scope("runs:write"), body: RequestBody(content: [("application/json", APISchema.anyObject.described(
                      "The input, validated against the trigger's input schema (GET /v1/workflows/{id})."))]),
                  answers: [.json(202, .ref("Run")).link("run", to: "get_v1_runs_id", ["id": "$response.body#/id"])],
                  problems: [404, 409, 422]) { [self] request, context in
                let id = try context.parameters.require("id")
                guard let workflow = configuration.workflow(id) else { throw Problem.notFound("no workflow '\(id)'") }
                guard case let .api(schema) = workflow.trigger else {
                    throw Problem(.conflict, "workflow '\(id)' is triggered by \(workflow.trigger.kindName), not by the API")
                }
                var request = request
                let input = try await request.jsonBody()
                let violations = schema.validate(input)
                if !violations.isEmpty {
                    throw Problem(.unprocessableContent,
                                  "the input is invalid: " + violations.map { "\($0.path) \($0.message)" }.joined(separator: "; "),
                                  errors: violations.map { Problem.FieldError(path: $0.path, message: $0.message) })
                }
                let run = try await startRun(workflow, input: input)
                return Response.json(run.json(), status: .accepted)
            },
            Route(.get, "/v1/runs", "List runs, newest first (filters: workflow, status, decision, since, until; cursor, limit)",
                  .scope("runs:read"),
                  query: [QueryParameter("workflow", .string, "Only runs of this workflow."),
                          QueryParameter("status", .oneOf(RunStatus.allCases.map(\.rawValue)), "Only runs with this status."),
                          QueryParameter("decision", .oneOf(Decision.allCases.map(\.rawValue)), "Only runs with this decision."),
                          .since, .until, .cursor, .limit],
                  answers: [.json(200, .page(.ref("Run")))
                      .link("run", to: "get_v1_runs_id", ["id": "$response.body#/data/0/id"])
                      .link("review", to: "post_v1_runs_id_review", ["id": "$response.body#/data/0/id"])
                      .link("deliveries", to: "get_v1_deliveries", ["run": "$response.body#/data/0/id"])]) { [self] request, context in
                var query = RunQuery()
                let parameters = request.uri.queryParameters
                if let workflow = parameters["workflow"] { query.workflow = String(workflow) }
                if let status = parameters["status"] {
                    guard let parsed = RunStatus(rawValue: String(status)) else {
                        throw Problem.badRequest("status must be one of: " + RunStatus.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    query.status = parsed
                }
                if let decision = parameters["decision"] {
                    guard let parsed = Decision(rawValue: String(decision)) else {
                        throw Problem.badRequest("decision must be one of: " + Decision.allCases.map(\.rawValue).joined(separator: ", "))
                    }
                    query.decision = parsed
                }
                query.since = try Self.time(parameters, "since")
                query.until = try Self.time(parameters, "until")
                if let cursor = parameters["cursor"] { query.before = RunID(String(cursor)) }
                if let limit = try pageLimit(parameters["limit"]) { query.limit = limit }
                let runs = try await store.listRuns(query)
                let next: JSON = runs.count == query.limit ? .string(runs.last!.id.rawValue) : .null
                return Response.json(["data": .array(runs.map { $0.json() }), "next_cursor": next])
            },
            Route(.get, "/v1/runs/{id}", "Read a run with every step", .scope("runs:read"),
                  answers: [.json(200, .ref("Run"))], problems: [404]) { [self] _, context in
                let id = RunID(try context.parameters.require("id"))
                guard let snapshot = try await store.loadRun(id) else { throw Problem.notFound("no run '\(id)'") }
                return Response.json(snapshot.run.json(steps: snapshot.steps))
            },
            Route(.post, "/v1/runs/{id}/review", "Decide a run waiting for review",
                  .scope("reviews:write"),
                  body: .json(.object(["decision": .oneOf(["approve", "decline"])],
                                      optional: ["reviewer": APISchema.string.described("Who decided; the key's name when absent.")])),
                  answers: [.json(202, .object(["run_id": .string, "decision": .oneOf(["approve", "decline"]),
                                                "status": .oneOf(["accepted"])]))],
                  problems: [404, 409, 422]) { [self] request, context in
                let id = RunID(try context.parameters.require("id"))
                var request = request
                let body = try await request.jsonBody()
                guard case let .string(decision)? = body["decision"], decision == "approve" || decision == "decline" else {
                    throw Problem(.unprocessableContent, "decision must be \"approve\" or \"decline\"",
                                  errors: [.init(path: "decision", message: "must be approve or decline")])
                }
                let reviewer = body["reviewer"]?.stringValue ?? context.apiKey?.name
                do {
                    let run = try await review(run: id, decision: decision, reviewer: reviewer,
                                               audit: context.audit("review.decided", target: "run:\(id.rawValue)"))
                    return Response.json(["run_id": .string(run.id.rawValue), "decision": .string(decision), "status": "accepted"],
                                         status: .accepted)
                } catch ReviewError.runNotFound {
                    throw Problem.notFound("no run '\(id)'")
                } catch ReviewError.noReviewWaiting {
                    throw Problem(.conflict, "run '\(id)' is not waiting for a review (already decided, or no review step)")
                }
            },
        ]
    }

    /// A time query parameter (`since`, `until`): RFC 3339, or nil when absent.
    static func time(_ parameters: Parameters, _ name: String) throws -> Date? {
        guard let text = parameters[Substring(name)] else { return nil }
        guard let date = Date(rfc3339: String(text)) else {
            throw Problem.badRequest("\(name) must be an RFC 3339 time such as 2026-11-26T10:00:00Z")
        }
        return date
    }

    /// The `limit` query parameter of a list route: 1 to 500.
    func pageLimit(_ limit: Substring?) throws -> Int? {
        guard let limit else { return nil }
        guard let value = Int(String(limit)), (1 ... 500).contains(value) else {
            throw Problem.badRequest("limit must be a whole number from 1 to 500")
        }
        return value
    }
}
