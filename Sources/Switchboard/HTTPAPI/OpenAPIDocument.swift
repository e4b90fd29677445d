import CEL

/// The OpenAPI 3.1 description of every route, generated from ``Gateway/routes``.
enum OpenAPIDocument {
    static let descriptions = [200: "OK", 202: "Accepted", 204: "No content"]

    static func json(_ routes: [Route]) -> JSON {
        var paths: [String: JSON] = [:]
        let problem: JSON = ["description": "Problem details (RFC 9457)",
                             "content": ["application/problem+json": ["schema": ["$ref": "#/components/schemas/Problem"]]]]
        for route in routes {
            var responses: [String: JSON] = ["default": problem]
            for status in route.answers {
                responses[String(status)] = ["description": .string(Self.descriptions[status] ?? "Answered")]
            }
            var operation: [String: JSON] = [
                "summary": .string(route.summary),
                "responses": .object(responses),
            ]
            if route.scope != nil {
                operation["security"] = [["bearer": []]]
                operation["x-scope"] = .string(route.scope!)
            }
            let parameters = route.path.split(separator: "/").filter { $0.hasPrefix("{") }.map { segment -> JSON in
                ["name": .string(String(segment.dropFirst().dropLast())), "in": "path", "required": true,
                 "schema": ["type": "string"]]
            }
            if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
            var item: [String: JSON] = [:]
            if case let .object(existing)? = paths[route.path] { item = existing }
            item[route.method.rawValue.lowercased()] = .object(operation)
            paths[route.path] = .object(item)
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Switchboard", "version": "0.1.0",
                     "description": "Integration gateway: events in, workflow runs, connector actions out."],
            "paths": .object(paths),
            "components": [
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer"]],
                "schemas": ["Problem": [
                    "type": "object",
                    "properties": ["type": ["type": "string"], "title": ["type": "string"], "status": ["type": "integer"],
                                   "detail": ["type": "string"],
                                   "errors": ["type": "array", "items": ["type": "object", "properties": [
                                       "path": ["type": "string"], "message": ["type": "string"]]]]],
                ]],
            ],
        ]
    }
}
