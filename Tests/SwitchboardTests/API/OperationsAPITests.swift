import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

@Suite("Operations routes")
struct OperationsAPITests {
    @Test("health, ready, metrics and the OpenAPI document need no key")
    func probes() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            #expect(try await api.request(.get, "/health", authenticated: false).json["status"] == "ok")
            let ready = try await api.request(.get, "/ready", authenticated: false)
            #expect(ready.status == .ok)
            #expect(ready.json["workflows"]?.number == 7)

            try await api.request(.post, "/v1/events", json: try Repository.fixture("events/inquiry-adult.json"))
            let metrics = try await api.request(.get, "/metrics", authenticated: false)
            #expect(metrics.body.contains("switchboard_events_received_total{outcome=\"accepted\"} 1"))
            #expect(metrics.body.contains("switchboard_runs_total"))

            let openapi = try await api.request(.get, "/openapi.json", authenticated: false).json
            #expect(openapi["openapi"] == "3.1.0")
            // What the handlers answer is what the document says: a deletion's 204, an event's 202.
            try await api.request(.put, "/v1/lists/gone", json: ["kind": "string", "items": ["a"]])
            #expect(try await api.request(.delete, "/v1/lists/gone").status == .noContent)
            #expect(openapi["paths"]?["/v1/lists/{name}"]?["delete"]?["responses"]?["204"] != nil)
            #expect(openapi["paths"]?["/v1/lists/{name}"]?["delete"]?["responses"]?["200"] == nil)
            #expect(openapi["paths"]?["/v1/events"]?["post"]?["responses"]?["202"] != nil)
            for route in api.gateway.routes {
                let method = route.method.rawValue.lowercased()
                #expect(openapi["paths"]?[route.path]?[method] != nil, "\(method) \(route.path)")
                for answer in route.answers {
                    #expect(openapi["paths"]?[route.path]?[method]?["responses"]?[String(answer.status)] != nil,
                            "\(method) \(route.path) \(answer.status)")
                }
            }
        }
    }

    @Test("a method a known path does not take gets 405 with Allow; the document gives every body a schema")
    func methodsAndSchemas() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let traced = try await api.request(.trace, "/v1/runs")
            #expect(traced.status == .methodNotAllowed)
            #expect(traced.headers[.allow] == "GET")
            let put = try await api.request(.put, "/v1/runs/run_1/review", json: ["decision": "approve"])
            #expect(put.status == .methodNotAllowed)
            #expect(put.headers[.allow] == "POST")
            #expect(try await api.request(.get, "/v1/nowhere").status == .notFound)

            let openapi = try await api.request(.get, "/openapi.json", authenticated: false).json
            let schemas = openapi["components"]?["schemas"]
            for route in api.gateway.routes {
                let operation = openapi["paths"]?[route.path]?[route.method.rawValue.lowercased()]
                for answer in route.answers where answer.mediaType != nil {
                    #expect(operation?["responses"]?[String(answer.status)]?["content"] != nil, "\(route.method) \(route.path)")
                }
                if route.body != nil { #expect(operation?["requestBody"]?["content"] != nil, "\(route.method) \(route.path)") }
                if route.scope != nil { #expect(operation?["responses"]?["403"] != nil, "\(route.method) \(route.path)") }
            }
            // Every reference resolves.
            let text = String(decoding: openapi.encoded(), as: UTF8.self)
            for name in text.matches(of: /#\/components\/schemas\/(\w+)/).map({ String($0.1) }) {
                #expect(schemas?[name] != nil, "\(name)")
            }
            #expect(openapi["paths"]?["/v1/runs"]?["get"]?["parameters"]?.arrayValue?.contains { $0["name"] == "status" } == true)
        }
    }

    @Test("GET /v1/instances lists this instance, its heartbeat and the leases it holds; it needs the admin scope")
    func instances() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            try await gateway.gateway.heartbeat.beat()
            let answer = try await api.request(.get, "/v1/instances")
            #expect(answer.status == .ok)
            let listed = answer.json["instances"]?.arrayValue ?? []
            #expect(listed.count == 1)
            #expect(listed.first?["id"]?.stringValue == gateway.gateway.engine.instance.rawValue)
            #expect(listed.first?["heartbeat_at"]?.stringValue?.isEmpty == false)
            #expect(listed.first?["leases"]?["deliveries"] == 0 && listed.first?["leases"]?["runs"] == 0)
        }
        let reader = try await TestGateway(scopes: ["runs:read"])
        let refused = try await reader.test { api in try await api.request(.get, "/v1/instances") }
        #expect(refused.status == .forbidden)
    }

    @Test("every response carries a request id")
    func requestID() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let given = try await api.request(.get, "/health", headers: [.requestID: "abc-123"], authenticated: false)
            #expect(given.headers[.requestID] == "abc-123")
            let made = try await api.request(.get, "/v1/runs", authenticated: false)
            #expect(made.headers[.requestID]?.isEmpty == false)
        }
    }

    @Test("GET /v1/connectors redacts secrets")
    func connectors() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/noop.yaml", "id: noop\ntrigger: { event: x }\nsteps: [ { id: a, action: approve } ]\n")
        try directory.write("connectors/crm.yaml", """
            id: crm
            kind: http
            base_url: https://crm.example.com
            auth: { bearer: "s3cret-token" }
            signing: { secret: "whsec_YWJjZA==" }
            """)
        let gateway = try await TestGateway(configurationDirectory: directory.path)
        try await gateway.test { api in
            let reply = try await api.request(.get, "/v1/connectors")
            #expect(!reply.body.contains("s3cret"))
            #expect(!reply.body.contains("whsec_YWJjZA=="))
            let crm = reply.json["data"]!.array[0]
            #expect(crm["settings"]?["auth"]?["bearer"] == "••••")
            #expect(crm["settings"]?["base_url"] == "https://crm.example.com")
        }
    }
}
