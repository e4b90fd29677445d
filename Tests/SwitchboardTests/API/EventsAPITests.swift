import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

@Suite("POST /v1/events")
struct EventsAPITests {
    func event(_ name: String) throws -> JSON { try Repository.fixture("events/inquiry-\(name).json") }

    @Test("a missing, wrong or revoked key gets 401 problem+json")
    func authentication() async throws {
        let gateway = try await TestGateway()
        let revoked = APIKeys.generate()
        try await gateway.store.createAPIKey(APIKeyRecord(name: "old", hash: APIKeys.hash(revoked), scopes: APIKeys.allScopes, createdAt: Date()))
        _ = try await gateway.store.revokeAPIKey(named: "old")
        try await gateway.test { api in
            let missing = try await api.request(.post, "/v1/events", json: try event("adult"), authenticated: false)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.contentType] == "application/problem+json")
            #expect(missing.json["detail"]?.stringValue?.contains("missing Authorization header") == true)

            let wrong = try await api.request(.post, "/v1/events", json: try event("adult"), headers: [.authorization: "Bearer sk_nope"])
            #expect(wrong.status == .unauthorized)
            #expect(wrong.json["status"]?.number == 401)

            let old = try await api.request(.post, "/v1/events", json: try event("adult"), headers: [.authorization: "Bearer \(revoked)"])
            #expect(old.status == .unauthorized)
            #expect(old.json["detail"]?.stringValue?.contains("revoked") == true)
        }
    }

    @Test("a key without the scope gets 403")
    func scope() async throws {
        let gateway = try await TestGateway(scopes: ["runs:read"])
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", json: try event("adult"))
            #expect(reply.status == .forbidden)
            #expect(reply.json["detail"]?.stringValue?.contains("events:write") == true)
        }
    }

    @Test("an event is accepted with 202 and starts a run of every matching workflow")
    func accepted() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", json: try event("adult"),
                                              headers: [.contentType: "application/cloudevents+json"])
            #expect(reply.status == .accepted)
            #expect(reply.json["event_id"]?.stringValue?.hasPrefix("evt_") == true)
            let runs = reply.json["runs"]?.array ?? []
            #expect(Set(runs.compactMap { $0["workflow"]?.stringValue }) == ["decline-blocked-ip", "review-minors"])
            for run in runs {
                let finished = try await api.waitUntilFinished(run["id"]!.stringValue!)
                #expect(finished["status"] == "completed")
                #expect(finished["trigger"]?["event_id"] == reply.json["event_id"])
            }
        }
    }

    @Test("a duplicate id gets 200 with the original answer and creates no run")
    func duplicate() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let first = try await api.request(.post, "/v1/events", json: try event("adult"))
            let second = try await api.request(.post, "/v1/events", json: try event("adult"))
            #expect(first.status == .accepted)
            #expect(second.status == .ok)
            #expect(first.json == second.json)
            let runs = try await api.request(.get, "/v1/runs").json["data"]?.array ?? []
            #expect(runs.count == 2)
        }
    }

    @Test("Idempotency-Key deduplicates events with different ids")
    func idempotencyKey() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            var second = try event("adult")
            if case var .object(o) = second { o["id"] = "another-id"; second = .object(o) }
            let a = try await api.request(.post, "/v1/events", json: try event("adult"), headers: [.idempotencyKey: "k-1"])
            let b = try await api.request(.post, "/v1/events", json: second, headers: [.idempotencyKey: "k-1"])
            #expect(a.status == .accepted)
            #expect(b.status == .ok)
            #expect(a.json["event_id"] == b.json["event_id"])
        }
    }

    @Test("missing or wrong attributes get 400 naming each")
    func invalidAttributes() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", json: ["specversion": "0.3", "source": "", "type": 7, "data": [:]])
            #expect(reply.status == .badRequest)
            #expect(reply.headers[.contentType] == "application/problem+json")
            let paths = Set((reply.json["errors"]?.array ?? []).compactMap { $0["path"]?.stringValue })
            #expect(paths == ["specversion", "id", "source", "type"])
            let messages = (reply.json["errors"]?.array ?? []).compactMap { $0["message"]?.stringValue }
            #expect(messages.contains("required attribute 'id' is missing"))
            #expect(messages.contains("attribute 'type' must be a string"))

            let encoded = try await api.request(.post, "/v1/events", json: ["specversion": "1.0", "id": "b64", "source": "/s", "type": "t",
                                                                           "data_base64": ["not": "a string"]])
            #expect(encoded.status == .badRequest)
            #expect(encoded.json["errors"]?.array.first?["path"] == "data_base64")
        }
    }

    @Test("malformed JSON gets 400 with the position of the error")
    func malformedJSON() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", body: "{\"specversion\": \"1.0\",\n \"id\": oops}")
            #expect(reply.status == .badRequest)
            #expect(reply.json["detail"]?.stringValue?.contains("line 2, column 8") == true)
        }
    }

    @Test("a body over 1 MiB gets 413")
    func tooLarge() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let big = "{\"data\": \"" + String(repeating: "x", count: 1 << 20) + "\"}"
            let reply = try await api.request(.post, "/v1/events", body: big)
            #expect(reply.status == .contentTooLarge)
            #expect(reply.headers[.contentType] == "application/problem+json")
        }
    }

    @Test("a body that is not JSON by content type gets 415; the type's case does not matter")
    func unsupportedMediaType() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", body: "a=b", headers: [.contentType: "application/x-www-form-urlencoded"])
            #expect(reply.status == .unsupportedMediaType)
            let short = try await api.request(.post, "/v1/events", body: "{}", headers: [.contentType: "application/js"])
            #expect(short.status == .unsupportedMediaType)
            let mixed = try await api.request(.post, "/v1/events", body: try event("minor").text,
                                              headers: [.contentType: "Application/CloudEvents+JSON; charset=utf-8"])
            #expect(mixed.status == .accepted, "\(mixed.body)")
        }
    }

    @Test("the event and its runs are committed before the 202")
    func committedBeforeAnswer() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let reply = try await api.request(.post, "/v1/events", json: try event("minor"))
            for run in reply.json["runs"]?.array ?? [] {
                let stored = try await gateway.store.loadRun(RunID(run["id"]!.stringValue!))
                #expect(stored != nil)
            }
        }
    }
}
