import CEL

/// The OpenAPI 3.1 description of every route, generated from ``Gateway/routes``: each route's
/// parameters, request body, answers and problems, with the schemas written beside the code that
/// reads and writes those bodies.
enum OpenAPIDocument {
    static let descriptions = [
        200: "OK", 202: "Accepted", 204: "No content", 400: "The request is malformed (the detail says where)",
        401: "No valid API key or signature (the same answer for an unknown, revoked or expired key)",
        403: "The API key lacks the route's scope", 404: "Not found", 405: "Method not allowed",
        409: "Conflicts with the resource's state", 413: "The body is larger than the limit",
        415: "Unsupported Content-Type", 422: "Well-formed but not valid (the errors name each field)",
        429: "Too many requests; `Retry-After` says when to try again",
        503: "The store cannot be reached; nothing was accepted, try again after `Retry-After`",
    ]

    /// The schemas the routes refer to by name.
    static let components: [String: APISchema] = [
        "Problem": Problem.schema,
        "CloudEvent": CloudEvent.schema,
        "IngestAnswer": Gateway.IngestAnswer.schema,
        "Run": RunRecord.schema,
        "Step": StepRecord.schema,
        "StepError": StepError.schema,
        "Delivery": Delivery.schema,
        "DeliveryAttempt": Delivery.attemptSchema,
        "List": ListRecord.schema,
        "Workflow": Workflow.schema,
        "Callback": InboundCallback.schema,
        "AuditEntry": AuditEntry.schema,
        "Instance": InstanceRecord.schema,
    ]

    static func json(_ routes: [Route]) -> JSON {
        var paths: [String: JSON] = [:]
        for route in routes {
            var item: [String: JSON] = [:]
            if case let .object(existing)? = paths[route.path] { item = existing }
            item[route.method.rawValue.lowercased()] = operation(route)
            paths[route.path] = .object(item)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Switchboard", "version": "0.1.0",
                     "description": "Integration gateway: events in, workflow runs, connector actions out."],
            "paths": .object(paths),
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": .object(components.mapValues(\.json)),
            ],
        ]
    }

    static func operation(_ route: Route) -> JSON {
        var responses: [String: JSON] = ["default": problem("Problem details (RFC 9457)")]
        for answer in route.answers {
            var response: [String: JSON] = ["description": .string(descriptions[answer.status] ?? "Answered")]
            if let mediaType = answer.mediaType {
                response["content"] = .object([mediaType: ["schema": (answer.schema ?? .any).json]])
            }
            if !answer.links.isEmpty {
                response["links"] = .object(answer.links.mapValues { link in
                    ["operationId": .string(link.operation), "parameters": .object(link.parameters.mapValues(JSON.string))]
                })
            }
            responses[String(answer.status)] = .object(response)
        }
        for status in problems(of: route) {
            responses[String(status)] = problem(descriptions[status] ?? "Problem")
        }
        var operation: [String: JSON] = [
            "summary": .string(route.summary),
            "operationId": .string(operationID(route)),
            "responses": .object(responses),
        ]
        if let scope = route.scope {
            operation["security"] = [["bearer": []]]
            operation["x-scope"] = .string(scope)
            operation["description"] = .string("Needs an API key with the scope `\(scope)`.")
        }
        var parameters = route.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment -> JSON in
            ["name": .string(String(segment.dropFirst().dropLast())), "in": "path", "required": true, "schema": ["type": "string"]]
        }
        parameters += route.query.map { parameter in
            ["name": .string(parameter.name), "in": "query", "required": false, "schema": parameter.schema.json,
             "description": .string(parameter.description)]
        }
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body = route.body {
            var content: [String: JSON] = [:]
            for (mediaType, schema) in body.content { content[mediaType] = ["schema": schema.json] }
            var requestBody: [String: JSON] = ["required": .bool(body.required), "content": .object(content)]
            if let description = body.description { requestBody["description"] = .string(description) }
            operation["requestBody"] = .object(requestBody)
        }
        return .object(operation)
    }

    /// The problems a route may answer: its own, and those of every route of its kind.
    static func problems(of route: Route) -> [Int] {
        var statuses = Set(route.problems)
        statuses.insert(429)  // the rate limit per client address holds for every route
        switch route.access {
        case .scope: statuses.formUnion([401, 403, 503])
        case .signed: statuses.formUnion([401, 404, 503])
        case .open: break
        }
        if route.body != nil { statuses.formUnion([400, 413]) }
        if route.query.contains(where: { $0.schema.json["type"]?.stringValue != "string" || $0.schema.json["format"] != nil
            || $0.schema.json["enum"] != nil })
        {
            statuses.insert(400)
        }
        return statuses.sorted()
    }

    /// `get_v1_runs_id`: unique, stable, readable.
    static func operationID(_ route: Route) -> String {
        let words = route.path.split(separator: "/").map { $0.filter { $0.isLetter || $0.isNumber || $0 == "_" } }
        return ([route.method.rawValue.lowercased()] + words).joined(separator: "_")
    }

    static func problem(_ description: String) -> JSON {
        ["description": .string(description),
         "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
    }
}

extension Problem {
    /// The schema of ``json``.
    static let schema = APISchema.object(
        ["type": .string, "title": .string, "status": .integer(minimum: 400, maximum: 599), "detail": .string],
        optional: ["errors": .array(.object(["message": .string],
                                            optional: ["path": .string, "file": .string, "line": .integer, "column": .integer]))],
        description: "RFC 9457 problem details; `errors` names each invalid field.")
}

extension CloudEvent {
    /// A CloudEvents 1.0 event in structured mode, as ``validate(_:)`` accepts it.
    static let schema = APISchema(json: [
        "type": "object",
        "description": "A CloudEvents 1.0 event (structured mode); other members are extension attributes.",
        "required": ["specversion", "id", "source", "type"],
        "properties": [
            "specversion": ["const": "1.0"],
            "id": APISchema.string(minLength: 1).json,
            "source": APISchema.string(minLength: 1).json,
            "type": APISchema.string(minLength: 1).json,
            "subject": APISchema.string.orNull.json,
            "time": APISchema.time.orNull.json,
            "datacontenttype": APISchema.string.orNull.json,
            "dataschema": APISchema.string.orNull.json,
            "data": APISchema.any.json,
            "data_base64": ["type": "string", "contentEncoding": "base64",
                            "pattern": "^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$"],
        ],
        "not": ["required": ["data", "data_base64"]],
    ])
}

extension Gateway.IngestAnswer {
    /// The schema of ``text``.
    static let schema = APISchema.object([
        "event_id": .string, "runs": .array(.object(["id": .string, "workflow": .string])),
    ])
}
