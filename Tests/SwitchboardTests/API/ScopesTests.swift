import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// Every route an API key authenticates checks its scope; no answer tells whether a key exists.
@Suite("API keys: scopes on every route, expiry, answers that reveal nothing")
struct ScopesTests {
    @Test("every route that needs a scope refuses a request without a key (401) and a key without that scope (403)")
    func everyRoute() async throws {
        let gateway = try await TestGateway(scopes: [])
        try await gateway.test { api in
            let scoped = api.gateway.routes.filter { $0.scope != nil }
            #expect(scoped.count >= 20)
            for route in scoped {
                let path = route.path.replacingOccurrences(of: #"\{[a-z]+\}"#, with: "x", options: .regularExpression)
                let anonymous = try await api.request(route.method, path, json: [:], authenticated: false)
                #expect(anonymous.status == .unauthorized, "\(route.method) \(route.path) without a key: \(anonymous.status)")
                let unscoped = try await api.request(route.method, path, json: [:])
                #expect(unscoped.status == .forbidden, "\(route.method) \(route.path) without \(route.scope!): \(unscoped.status)")
                #expect(unscoped.body.contains(route.scope!))
            }
        }
    }

    @Test("DESIGN's scopes: reviews need reviews:write, not runs:write; the scope list is the one documented")
    func reviewScope() async throws {
        #expect(APIKeys.allScopes == ["events:write", "runs:read", "runs:write", "reviews:write", "deliveries:read", "deliveries:write",
                                      "lists:read", "lists:write", "workflows:read", "workflows:write", "connectors:read",
                                      "connectors:write", "admin"])
        let runsOnly = try await TestGateway(scopes: ["runs:write", "runs:read"])
        try await runsOnly.test { api in
            let reply = try await api.request(.post, "/v1/runs/run_x/review", json: ["decision": "approve"])
            #expect(reply.status == .forbidden)
        }
        let reviewer = try await TestGateway(scopes: ["reviews:write"])
        try await reviewer.test { api in
            let reply = try await api.request(.post, "/v1/runs/run_x/review", json: ["decision": "approve"])
            #expect(reply.status == .notFound, "allowed, and there is no such run")
        }
    }

    @Test("an unknown, a revoked and an expired key get the same 401, word for word")
    func sameAnswer() async throws {
        let gateway = try await TestGateway()
        let revoked = APIKeys.generate(), expired = APIKeys.generate()
        try await gateway.store.createAPIKey(APIKeyRecord(name: "revoked", hash: APIKeys.hash(revoked), scopes: APIKeys.allScopes,
                                                          createdAt: Date()))
        _ = try await gateway.store.revokeAPIKey(named: "revoked")
        try await gateway.store.createAPIKey(APIKeyRecord(name: "expired", hash: APIKeys.hash(expired), scopes: APIKeys.allScopes,
                                                          createdAt: Date().addingTimeInterval(-7200),
                                                          expiresAt: Date().addingTimeInterval(-3600)))
        try await gateway.test { api in
            var answers: [String] = []
            for token in [APIKeys.generate(), revoked, expired] {
                let reply = try await api.request(.get, "/v1/runs", headers: [.authorization: "Bearer \(token)"])
                #expect(reply.status == .unauthorized)
                answers.append(reply.json["detail"]?.stringValue ?? "")
            }
            #expect(Set(answers).count == 1, "\(answers)")
        }
    }
}
