import CEL

/// A JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1) of a request or response body,
/// written beside the code that reads or writes that body (``RunRecord/schema`` beside
/// ``RunRecord/json(steps:)``), so that the OpenAPI document is built from the routes themselves.
///
/// Object schemas stay open (`additionalProperties` is not set): resources may gain fields.
struct APISchema: Sendable {
    var json: JSON

    static let string = APISchema(json: ["type": "string"])
    static let integer = APISchema(json: ["type": "integer"])
    static let number = APISchema(json: ["type": "number"])
    static let boolean = APISchema(json: ["type": "boolean"])
    /// Any JSON value.
    static let any = APISchema(json: .object([:]))
    /// An RFC 3339 time.
    static let time = APISchema(json: ["type": "string", "format": "date-time"])
    /// Any JSON object.
    static let anyObject = APISchema(json: ["type": "object"])

    /// One of these strings.
    static func oneOf(_ values: [String]) -> APISchema {
        APISchema(json: ["type": "string", "enum": .array(values.map(JSON.string))])
    }

    static func string(minLength: Int? = nil, maxLength: Int? = nil, pattern: String? = nil) -> APISchema {
        var object: [String: JSON] = ["type": "string"]
        if let minLength { object["minLength"] = .number(Double(minLength)) }
        if let maxLength { object["maxLength"] = .number(Double(maxLength)) }
        if let pattern { object["pattern"] = .string(pattern) }
        return APISchema(json: .object(object))
    }

    static func integer(minimum: Int? = nil, maximum: Int? = nil) -> APISchema {
        var object: [String: JSON] = ["type": "integer"]
        if let minimum { object["minimum"] = .number(Double(minimum)) }
        if let maximum { object["maximum"] = .number(Double(maximum)) }
        return APISchema(json: .object(object))
    }

    /// An object whose `required` members are always present (`null` where the schema allows it)
    /// and whose `optional` members may be absent.
    static func object(_ required: KeyValuePairs<String, APISchema>, optional: KeyValuePairs<String, APISchema> = [:],
                       description: String? = nil) -> APISchema {
        var properties: [String: JSON] = [:]
        for (name, schema) in required { properties[name] = schema.json }
        for (name, schema) in optional { properties[name] = schema.json }
        var object: [String: JSON] = ["type": "object", "properties": .object(properties)]
        if !required.isEmpty { object["required"] = .array(required.map { .string($0.key) }) }
        if let description { object["description"] = .string(description) }
        return APISchema(json: .object(object))
    }

    /// A JSON array of `items`.
    static func array(_ items: APISchema, maxItems: Int? = nil) -> APISchema {
        var object: [String: JSON] = ["type": "array", "items": items.json]
        if let maxItems { object["maxItems"] = .number(Double(maxItems)) }
        return APISchema(json: .object(object))
    }

    /// A page of a list: `{"data": [...], "next_cursor"}` (the id to pass as `cursor` for the next page, null on the last).
    static func page(_ item: APISchema) -> APISchema {
        .object(["data": .array(item), "next_cursor": APISchema.string.orNull])
    }

    /// A reference to a schema of the document's `components.schemas`.
    static func ref(_ name: String) -> APISchema {
        APISchema(json: ["$ref": .string("#/components/schemas/\(name)")])
    }

    /// Any of these schemas.
    static func anyOf(_ schemas: [APISchema]) -> APISchema {
        APISchema(json: ["anyOf": .array(schemas.map(\.json))])
    }

    /// This schema, or `null`.
    var orNull: APISchema { .anyOf([self, APISchema(json: ["type": "null"])]) }

    /// This schema with a description.
    func described(_ text: String) -> APISchema {
        guard case var .object(object) = json else { return self }
        object["description"] = .string(text)
        return APISchema(json: .object(object))
    }
}

/// A request body a route reads.
struct RequestBody: Sendable {
    /// Media type and schema of each form the body may take.
    var content: [(mediaType: String, schema: APISchema)]
    var required: Bool = true
    var description: String?

    /// A JSON body (`application/json`).
    static func json(_ schema: APISchema) -> RequestBody { RequestBody(content: [("application/json", schema)]) }

    /// The body a signature covers, read as the connector's scheme says: any bytes.
    static let signed = RequestBody(content: [("application/json", .any), ("application/x-www-form-urlencoded", .any)],
                                    description: "Read byte for byte: the signature covers the body as sent.")
}

/// A query parameter of a route.
struct QueryParameter: Sendable {
    var name: String
    var schema: APISchema
    var description: String

    init(_ name: String, _ schema: APISchema, _ description: String) {
        self.name = name
        self.schema = schema
        self.description = description
    }

    /// The page size of a list: 1 to 500.
    static let limit = QueryParameter("limit", .integer(minimum: 1, maximum: 500), "How many items a page holds (1–500).")
    /// Where the next page starts: the `next_cursor` of the page before.
    static let cursor = QueryParameter("cursor", .string, "The `next_cursor` of the previous page.")
    static let since = QueryParameter("since", .time, "Only items from this time on (RFC 3339).")
    static let until = QueryParameter("until", .time, "Only items before this time (RFC 3339).")
}

/// A successful answer of a route: its status, and the media type and schema of its body.
struct Answer: Sendable {
    var status: Int
    var mediaType: String?
    var schema: APISchema?
    /// Operations this answer leads to (OpenAPI links), by name: the target's operation id and
    /// where each of its parameters comes from (`$response.body#/id`, `$request.path.name`).
    var links: [String: (operation: String, parameters: [String: String])] = [:]

    /// A JSON body.
    static func json(_ status: Int = 200, _ schema: APISchema) -> Answer {
        Answer(status: status, mediaType: "application/json", schema: schema)
    }

    /// This answer, leading to another operation.
    func link(_ name: String, to operation: String, _ parameters: [String: String]) -> Answer {
        var answer = self
        answer.links[name] = (operation, parameters)
        return answer
    }

    /// 204 with no body.
    static let noContent = Answer(status: 204, mediaType: nil, schema: nil)
}
