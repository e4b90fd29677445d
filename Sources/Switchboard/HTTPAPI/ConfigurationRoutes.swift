import CEL
import Foundation
import HTTPTypes
import Hummingbird

/// Workflows (their graphs, versions and backtests), the reload, and connectors.
extension Gateway {
    /// A backtest's answer (``Backtest/Report/json``).
    static let backtestSchema = APISchema.object([
        "workflow": .string, "replayed": .integer(minimum: 0), "changed": .integer(minimum: 0), "unchanged": .integer(minimum: 0),
        "matrix": .array(.object(["from": APISchema.oneOf(Decision.allCases.map(\.rawValue)).orNull,
                                  "to": APISchema.oneOf(Decision.allCases.map(\.rawValue)).orNull,
                                  "count": .integer(minimum: 1), "runs": .array(.string)])),
        "failed": .array(.object(["run_id": .string, "error": .ref("StepError")])),
        "unknown": .array(.object(["run_id": .string, "step": .string])),
        "not_started": .array(.string),
    ])

    /// `{"workflows": [{"id", "version"}], "connectors": [...]}`: what a reload put in place.
    public static func reloadAnswer(_ configuration: Configuration) -> JSON {
        ["workflows": .array(configuration.workflows.map { ["id": .string($0.id), "version": .string("v\($0.version ?? 0)")] }),
         "connectors": .array(configuration.connectors.keys.sorted().map(JSON.string))]
    }

    /// A connector as `GET /v1/connectors` shows it.
    static let connectorSchema = APISchema.object(
        ["id": .string, "kind": .string, "settings": APISchema.anyObject.described("Its settings, secrets redacted.")],
        optional: ["operations": .array(.anyObject), "limits": .anyObject, "circuit": APISchema.anyObject.orNull,
                   "available": APISchema.boolean.described("false when this build cannot run connectors of its kind.")])

    var configurationRoutes: [Route] {
        [
            Route(.get, "/v1/workflows", "List loaded workflows", .scope("workflows:read"),
                  answers: [.json(200, .object(["data": .array(.ref("Workflow"))]))]) { [self] _, context in
                return Response.json(["data": .array(configuration.workflows.map(\.json))])
            },
            Route(.get, "/v1/workflows/{id}", "Read a workflow", .scope("workflows:read"), answers: [.json(200, .ref("Workflow"))],
                  problems: [404]) { [self] _, context in
                let id = try context.parameters.require("id")
                guard let workflow = configuration.workflow(id) else { throw Problem.notFound("no workflow '\(id)'") }
                return Response.json(workflow.json)
            },
            Route(.get, "/v1/workflows/{id}/graph.svg", "The workflow drawn as SVG: its steps, branches and lanes",
                  .scope("workflows:read"), answers: [Answer(status: 200, mediaType: "image/svg+xml", schema: .string)],
                  problems: [404]) { [self] _, context in
                let id = try context.parameters.require("id")
                guard let workflow = configuration.workflow(id) else { throw Problem.notFound("no workflow '\(id)'") }
                var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: WorkflowGraph(workflow: workflow).svg)))
                response.headers[.contentType] = "image/svg+xml"
                return response
            },
            Route(.get, "/v1/workflows/{id}/versions", "Every version of a workflow, oldest first", .scope("workflows:read"),
                  answers: [.json(200, .object(["versions": .array(.object([
                      "version": .string(pattern: "^v[0-9]+$"), "sha256": .string, "created_at": .time, "current": .boolean,
                  ]))]))],
                  problems: [404]) { [self] _, context in
                let id = try context.parameters.require("id")
                let versions = try await store.workflowVersions(id)
                guard !versions.isEmpty || configuration.workflow(id) != nil else { throw Problem.notFound("no workflow '\(id)'") }
                let current = configuration.workflow(id)?.version
                return Response.json(["versions": .array(versions.map { record in
                    ["version": .string(record.label), "sha256": .string(record.sha256), "created_at": .string(record.createdAt.rfc3339),
                     "current": .bool(record.version == current)]
                })])
            },
            Route(.post, "/v1/workflows/{id}/backtest",
                  "Replay the workflow's recorded runs through a changed definition (the YAML body); nothing is sent or written",
                  .scope("workflows:write"),
                  query: [QueryParameter("since", .string(pattern: "^[1-9][0-9]{0,5}(ms|s|m|h|d)$"), "How far back runs are replayed (default 30d)."),
                          QueryParameter("limit", .integer(minimum: 1, maximum: 100_000), "At most this many runs (default 10000).")],
                  body: RequestBody(content: [("application/yaml", APISchema.string.described("The candidate workflow file."))]),
                  answers: [.json(200, Self.backtestSchema)], problems: [422]) { [self] request, context in
                let id = try context.parameters.require("id")
                let parameters = request.uri.queryParameters
                var window = ConfigDuration.parse("30d")!
                if let text = parameters["since"] {
                    guard let parsed = ConfigDuration.parse(String(text)), parsed > .zero else {
                        throw Problem.badRequest("since must be a duration such as 7d or 24h")
                    }
                    window = parsed
                }
                var limit = 10_000
                if let text = parameters["limit"] {
                    guard let parsed = Int(String(text)), (1 ... 100_000).contains(parsed) else {
                        throw Problem.badRequest("limit must be a whole number from 1 to 100000")
                    }
                    limit = parsed
                }
                let source = String(decoding: try await Self.rawBody(request), as: UTF8.self)
                guard !source.isEmpty else { throw Problem.badRequest("the body is empty; send the candidate workflow's YAML") }
                let outcome = try await Backtest.run(source: source, file: "candidate.yaml", configuration: configuration, store: store,
                                                     since: clock.now().addingTimeInterval(-window.timeInterval), limit: limit)
                switch outcome {
                case let .success(report):
                    guard report.workflow == id else {
                        throw Problem(.unprocessableContent, "the candidate's id is '\(report.workflow)', not '\(id)'",
                                      errors: [.init(path: "id", message: "must be \(id)")])
                    }
                    return Response.json(report.json)
                case let .failure(error):
                    let problems = error.problems.filter { $0.severity == .error }
                    throw Problem(.unprocessableContent, "the candidate is not a valid workflow: \(problems.count) error(s)",
                                  errors: problems.map { Problem.FieldError(path: "", message: $0.message, file: $0.file, line: $0.line,
                                                                            column: $0.column) })
                }
            },
            Route(.post, "/v1/admin/reload", "Read the configuration again and use it, if it is valid in full",
                  .scope("workflows:write"),
                  answers: [.json(200, .object(["workflows": .array(.object(["id": .string, "version": .string])),
                                                "connectors": .array(.string)]))],
                  problems: [409, 422]) { [self] _, context in
                switch try await reload(audit: context.audit("configuration.reloaded", target: "configuration")) {
                case let .reloaded(configuration):
                    return Response.json(Self.reloadAnswer(configuration))
                case let .invalid(problems):
                    throw Problem(.unprocessableContent,
                                  "the configuration has \(problems.count) error(s); the running configuration stays in place",
                                  errors: problems.map { Problem.FieldError(path: "", message: $0.message, file: $0.file, line: $0.line,
                                                                            column: $0.column) })
                case .unavailable:
                    throw Problem(.conflict, "this gateway was started without a configuration directory to read again")
                }
            },
            Route(.post, "/v1/connectors/{id}/test", "A live check of a connector's reachability and credentials",
                  .scope("connectors:write"),
                  answers: [.json(200, .object(["connector": .string, "ok": .boolean, "status": .string, "detail": .string]))],
                  problems: [404]) { [self] _, context in
                let id = try context.parameters.require("id")
                guard configuration.connectors[id] != nil else { throw Problem.notFound("no connector '\(id)'") }
                guard let result = await deliveryWorker.test(connector: id) else {
                    return Response.json(["connector": .string(id), "ok": false, "status": "not_supported",
                                          "detail": "this build cannot run connectors of this kind"])
                }
                return Response.json(["connector": .string(id), "ok": .bool(result.ok), "status": .string(result.status),
                                      "detail": .string(result.detail)])
            },
            Route(.get, "/v1/connectors", "Configured connectors, secrets redacted, with circuit state",
                  .scope("connectors:read"), answers: [.json(200, .object(["data": .array(Self.connectorSchema)]))]) { [self] _, context in
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
            },
        ]
    }
}
