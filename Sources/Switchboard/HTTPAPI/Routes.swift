import CEL
import Foundation
import HTTPTypes
import Hummingbird

/// Every route of the API, with what it needs; the OpenAPI document is generated from this table.
struct RouteDescription: Sendable {
    let method: String
    let path: String
    let summary: String
    /// The scope an API key needs; nil for routes authenticated otherwise or open.
    let scope: String?
}

enum Routes {
    static let all: [RouteDescription] = [
        .init(method: "post", path: "/v1/events", summary: "Ingest a CloudEvents 1.0 event; deduplicated by id or Idempotency-Key", scope: "events:write"),
        .init(method: "post", path: "/v1/workflows/{id}/runs", summary: "Start a run of an API-triggered workflow", scope: "runs:write"),
        .init(method: "get", path: "/v1/workflows", summary: "List loaded workflows", scope: "workflows:read"),
        .init(method: "get", path: "/v1/workflows/{id}", summary: "Read a workflow", scope: "workflows:read"),
        .init(method: "get", path: "/v1/runs", summary: "List runs, newest first (filters: workflow, status; cursor, limit)", scope: "runs:read"),
        .init(method: "get", path: "/v1/runs/{id}", summary: "Read a run with every step", scope: "runs:read"),
        .init(method: "post", path: "/v1/runs/{id}/review", summary: "Decide a run waiting for review", scope: "runs:write"),
        .init(method: "get", path: "/v1/lists", summary: "List lists", scope: "lists:read"),
        .init(method: "get", path: "/v1/lists/{name}", summary: "Read a list", scope: "lists:read"),
        .init(method: "put", path: "/v1/lists/{name}", summary: "Create or replace a list", scope: "lists:write"),
        .init(method: "delete", path: "/v1/lists/{name}", summary: "Delete a list", scope: "lists:write"),
        .init(method: "post", path: "/v1/lists/{name}/items", summary: "Add items to a list", scope: "lists:write"),
        .init(method: "delete", path: "/v1/lists/{name}/items/{item}", summary: "Remove an item from a list", scope: "lists:write"),
        .init(method: "get", path: "/v1/connectors", summary: "Configured connectors, secrets redacted, with circuit state", scope: "connectors:read"),
        .init(method: "post", path: "/v1/connectors/{id}/test", summary: "A live check of a connector's reachability and credentials", scope: "connectors:write"),
        .init(method: "get", path: "/v1/deliveries", summary: "The delivery log, newest first (filters: run, connector, status, since, until; cursor, limit)", scope: "deliveries:read"),
        .init(method: "get", path: "/v1/deliveries/{id}", summary: "A delivery with every attempt", scope: "deliveries:read"),
        .init(method: "post", path: "/v1/deliveries/{id}/retry", summary: "Send a failed or dead delivery again and resume its run", scope: "deliveries:write"),
        .init(method: "post", path: "/v1/callbacks/{connector}", summary: "A vendor's signed callback; 401 bad signature, 409 replay, 202 kept until its step records the id", scope: nil),
        .init(method: "post", path: "/v1/sources/{connector}", summary: "A signed webhook from an event source, ingested as an event; 401 bad signature or replay, 422 unreadable", scope: nil),
        .init(method: "get", path: "/v1/callbacks", summary: "Inbound callbacks and Slack clicks as received: matched, pending, unmatched, rejected, replayed", scope: "deliveries:read"),
        .init(method: "post", path: "/v1/slack/interactions", summary: "Slack button clicks, verified with Slack's v0 signature", scope: nil),
        .init(method: "get", path: "/v1/instances", summary: "The gateway instances seen in the last minute, with the leases each holds", scope: "admin"),
        .init(method: "get", path: "/health", summary: "Liveness probe", scope: nil),
        .init(method: "get", path: "/ready", summary: "Readiness: store reachable, configuration loaded", scope: nil),
        .init(method: "get", path: "/metrics", summary: "Prometheus metrics", scope: nil),
        .init(method: "get", path: "/openapi.json", summary: "This document", scope: nil),
    ]
}

extension Gateway {
    /// Adds every route to a router.
    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("health") { _, _ in Response.json(["status": "ok"]) }
        router.get("ready") { [self] _, _ in
            do {
                try await store.ping()
                return Response.json(["status": "ready", "workflows": .number(Double(configuration.workflows.count))])
            } catch {
                throw Problem(.serviceUnavailable, "the store does not answer", retryAfter: 5)
            }
        }
        router.get("metrics") { [self] _, _ in
            var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.render())))
            response.headers[.contentType] = "text/plain; version=0.0.4"
            return response
        }
        router.get("openapi.json") { _, _ in Response.json(OpenAPIDocument.json) }

        addSignedRoutes(router)
        let v1 = router.group("v1").add(middleware: APIKeyMiddleware(gateway: self))
        addCallbackLogRoutes(v1)
        addEventRoutes(v1)
        addRunRoutes(v1)
        addListRoutes(v1)
        addConfigurationRoutes(v1)
        addDeliveryRoutes(v1)
        addInstanceRoutes(v1)
    }

    private func addEventRoutes(_ v1: RouterGroup<GatewayRequestContext>) {
        v1.post("events") { [self] request, context in
            try requireScope("events:write", context)
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
        }
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

    private func addRunRoutes(_ v1: RouterGroup<GatewayRequestContext>) {
        v1.post("workflows/:id/runs") { [self] request, context in
            try requireScope("runs:write", context)
            let id = try context.parameters.require("id")
            guard let workflow = configuration.workflow(id) else { throw Problem.notFound("no workflow '\(id)'") }
            guard case let .api(schema) = workflow.trigger else {
                throw Problem(.conflict, "workflow '\(id)' is triggered by events, not by the API")
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
        }
        v1.get("runs") { [self] request, context in
            try requireScope("runs:read", context)
            var query = RunQuery()
            let parameters = request.uri.queryParameters
            if let workflow = parameters["workflow"] { query.workflow = String(workflow) }
            if let status = parameters["status"] {
                guard let parsed = RunStatus(rawValue: String(status)) else {
                    throw Problem.badRequest("status must be one of: " + RunStatus.allCases.map(\.rawValue).joined(separator: ", "))
                }
                query.status = parsed
            }
            if let cursor = parameters["cursor"] { query.before = RunID(String(cursor)) }
            if let limit = try pageLimit(parameters["limit"]) { query.limit = limit }
            let runs = try await store.listRuns(query)
            let next: JSON = runs.count == query.limit ? .string(runs.last!.id.rawValue) : .null
            return Response.json(["data": .array(runs.map { $0.json() }), "next_cursor": next])
        }
        v1.get("runs/:id") { [self] _, context in
            try requireScope("runs:read", context)
            let id = RunID(try context.parameters.require("id"))
            guard let snapshot = try await store.loadRun(id) else { throw Problem.notFound("no run '\(id)'") }
            return Response.json(snapshot.run.json(steps: snapshot.steps))
        }
        v1.post("runs/:id/review") { [self] request, context in
            try requireScope("runs:write", context)
            let id = RunID(try context.parameters.require("id"))
            var request = request
            let body = try await request.jsonBody()
            guard case let .string(decision)? = body["decision"], decision == "approve" || decision == "decline" else {
                throw Problem(.unprocessableContent, "decision must be \"approve\" or \"decline\"",
                              errors: [.init(path: "decision", message: "must be approve or decline")])
            }
            let reviewer = body["reviewer"]?.stringValue ?? context.apiKey?.name
            do {
                let run = try await review(run: id, decision: decision, reviewer: reviewer)
                return Response.json(["run_id": .string(run.id.rawValue), "decision": .string(decision), "status": "accepted"],
                                     status: .accepted)
            } catch ReviewError.runNotFound {
                throw Problem.notFound("no run '\(id)'")
            } catch ReviewError.noReviewWaiting {
                throw Problem(.conflict, "run '\(id)' is not waiting for a review (already decided, or no review step)")
            }
        }
    }

    private func addListRoutes(_ v1: RouterGroup<GatewayRequestContext>) {
        v1.get("lists") { [self] _, context in
            try requireScope("lists:read", context)
            return Response.json(["data": .array(try await store.lists().map(\.json))])
        }
        v1.get("lists/:name") { [self] _, context in
            try requireScope("lists:read", context)
            let name = try context.parameters.require("name")
            guard let list = try await store.list(name) else { throw Problem.notFound("no list '\(name)'") }
            return Response.json(list.json)
        }
        v1.put("lists/:name") { [self] request, context in
            try requireScope("lists:write", context)
            let name = try context.parameters.require("name")
            var request = request
            let body = try await request.jsonBody()
            guard let kindName = body["kind"]?.stringValue, let kind = ListKind(rawValue: kindName) else {
                throw Problem(.unprocessableContent, "kind must be one of: ip, email, string",
                              errors: [.init(path: "kind", message: "must be ip, email or string")])
            }
            let items = try Self.listItems(body, kind: kind)
            try await store.putList(ListRecord(name: name, kind: kind, items: items))
            try await lists.refresh(from: store)
            return Response.json(try await store.list(name)?.json ?? .null)
        }
        v1.delete("lists/:name") { [self] _, context in
            try requireScope("lists:write", context)
            let name = try context.parameters.require("name")
            guard try await store.deleteList(name) else { throw Problem.notFound("no list '\(name)'") }
            try await lists.refresh(from: store)
            return Response(status: .noContent)
        }
        v1.post("lists/:name/items") { [self] request, context in
            try requireScope("lists:write", context)
            let name = try context.parameters.require("name")
            guard let list = try await store.list(name) else {
                throw Problem.notFound("no list '\(name)'; create it with PUT /v1/lists/\(name) and a kind")
            }
            var request = request
            let items = try Self.listItems(try await request.jsonBody(), kind: list.kind)
            _ = try await store.addListItems(name, items: items)
            try await lists.refresh(from: store)
            return Response.json(try await store.list(name)?.json ?? .null)
        }
        v1.delete("lists/:name/items/:item") { [self] _, context in
            try requireScope("lists:write", context)
            let name = try context.parameters.require("name")
            let item = try context.parameters.require("item").removingPercentEncoding ?? ""
            guard try await store.removeListItem(name, item: item) else {
                throw Problem.notFound("list '\(name)' has no item '\(item)'")
            }
            try await lists.refresh(from: store)
            return Response(status: .noContent)
        }
    }

    /// The `limit` query parameter of a list route: 1 to 500.
    func pageLimit(_ limit: Substring?) throws -> Int? {
        guard let limit else { return nil }
        guard let value = Int(String(limit)), (1 ... 500).contains(value) else {
            throw Problem.badRequest("limit must be a whole number from 1 to 500")
        }
        return value
    }

    static func listItems(_ body: JSON, kind: ListKind) throws -> [String] {
        guard case let .array(values)? = body["items"] else {
            throw Problem(.unprocessableContent, "items must be a list of strings",
                          errors: [.init(path: "items", message: "must be a list of strings")])
        }
        var items: [String] = []
        var errors: [Problem.FieldError] = []
        for (index, value) in values.enumerated() {
            guard case let .string(item) = value else {
                errors.append(.init(path: "items[\(index)]", message: "must be a string"))
                continue
            }
            if let problem = ListIndexSnapshot.problem(with: item, kind: kind) {
                errors.append(.init(path: "items[\(index)]", message: problem))
            } else {
                items.append(item)
            }
        }
        if !errors.isEmpty {
            throw Problem(.unprocessableContent, "\(errors.count) item(s) are not valid for a list of kind \(kind.rawValue)",
                          errors: errors)
        }
        return items
    }

    private func addConfigurationRoutes(_ v1: RouterGroup<GatewayRequestContext>) {
        v1.get("workflows") { [self] _, context in
            try requireScope("workflows:read", context)
            return Response.json(["data": .array(configuration.workflows.map(\.json))])
        }
        v1.get("workflows/:id") { [self] _, context in
            try requireScope("workflows:read", context)
            let id = try context.parameters.require("id")
            guard let workflow = configuration.workflow(id) else { throw Problem.notFound("no workflow '\(id)'") }
            return Response.json(workflow.json)
        }
        v1.post("connectors/:id/test") { [self] _, context in
            try requireScope("connectors:write", context)
            let id = try context.parameters.require("id")
            guard configuration.connectors[id] != nil else { throw Problem.notFound("no connector '\(id)'") }
            guard let result = await deliveryWorker.test(connector: id) else {
                return Response.json(["connector": .string(id), "ok": false, "status": "not_supported",
                                      "detail": "this build cannot run connectors of this kind"])
            }
            return Response.json(["connector": .string(id), "ok": .bool(result.ok), "status": .string(result.status),
                                  "detail": .string(result.detail)])
        }
        v1.get("connectors") { [self] _, context in
            try requireScope("connectors:read", context)
            let connectors = configuration.connectors.values.sorted { $0.id < $1.id }.map { connector -> JSON in
                var object: [String: JSON] = ["id": .string(connector.id), "kind": .string(connector.kind),
                                              "settings": connector.redactedSettings]
                if let instance = configuration.connectorInstances[connector.id] {
                    object["operations"] = .array(instance.operations.map(\.json))
                    object["limits"] = ["concurrency": .number(Double(instance.delivery.concurrency)),
                                        "rate_limit": instance.delivery.rateLimit.map { .string("\($0.count)/\(ConfigDuration.format($0.per))") } ?? .null]
                    object["circuit"] = deliveryWorker.circuitState(connector.id) ?? .null
                } else {
                    object["available"] = false
                }
                return .object(object)
            }
            return Response.json(["data": .array(connectors)])
        }
    }
}
