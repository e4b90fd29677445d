import CEL
import Foundation
import GRDB
import HTTPTypes
import Testing
@testable import Switchboard

/// The delivery engine against a loopback receiver whose answers each test scripts.
@Suite("Delivery engine", .serialized, .timeLimit(.minutes(3)))
struct DeliveryEngineTests {
    static let secret = "whsec_" + Data("0123456789abcdef0123456789abcdef".utf8).base64EncodedString()

    /// A configuration with connector `crm` pointing at the receiver and a workflow `notify`.
    static func configuration(receiverURL: String, extra: String = "", onError: String = "fail") throws -> TemporaryDirectory {
        let directory = try TemporaryDirectory()
        try directory.write("connectors/crm.yaml", """
            id: crm
            kind: http
            base_url: \(receiverURL)
            auth: { bearer: "crm-token-secret" }
            signing: { secret: "\(secret)" }
            allow_networks: [ 127.0.0.0/8 ]
            timeout: { connect: 2s, total: 1s }
            retry: { max_attempts: 3, initial_interval: 1s, backoff: 2.0, max_interval: 10s }
            \(extra)
            operations:
              notify: { method: POST, path: /hooks/identity, headers: { X-Event-Id: "{{input.ref}}" }, body: "= input" }
            """)
        try directory.write("workflows/notify.yaml", """
            id: notify
            trigger: { api: { input: { ref: { type: string, required: true } } } }
            steps:
              - id: tell
                connector: crm
                operation: notify
                on_error: \(onError)
              - id: done
                action: approve
            """)
        return directory
    }

    func start(_ api: APIClient, ref: String = "r1") async throws -> String {
        let reply = try await api.request(.post, "/v1/workflows/notify/runs", json: ["ref": .string(ref)])
        #expect(reply.status == .accepted, "\(reply.body)")
        return reply.json["id"]!.stringValue!
    }

    func deliveryOf(_ api: APIClient, run: String) async throws -> JSON {
        let list = try await api.request(.get, "/v1/deliveries?run=\(run)").json
        let id = list["data"]!.array[0]["id"]!.stringValue!
        return try await api.request(.get, "/v1/deliveries/\(id)").json
    }

    @Test("success: signed with Standard Webhooks, idempotency key, secrets redacted in the log")
    func success() async throws {
        let receiver = TestReceiver(script: [.init(status: 200, body: #"{"ticket": 42}"#)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            let gateway = try await TestGateway(configurationDirectory: config.path)
            try await gateway.test { api in
                let run = try await start(api)
                let done = try await api.waitUntilFinished(run)
                #expect(done["status"] == "completed")
                #expect(done["decision"] == "approved")
                let tell = done["steps"]!.array.first { $0["id"] == "tell" }!
                #expect(tell["output"]?["status"]?.numberValue == 200)
                #expect(tell["output"]?["body"]?["ticket"]?.numberValue == 42)

                let request = try #require(receiver.received.first)
                #expect(request.path == "/hooks/identity")
                #expect(request.headers["X-Event-Id"] == "r1")
                #expect(request.headers["Authorization"] == "Bearer crm-token-secret")
                #expect(try JSON.parse(request.body) == ["ref": "r1"])
                let delivery = try await deliveryOf(api, run: run)
                let id = delivery["id"]!.stringValue!
                #expect(request.headers["webhook-id"] == id)
                #expect(request.headers["Idempotency-Key"] == id)
                let verifier = StandardWebhooks(secrets: [try SigningSecret(Self.secret)])
                let headers = request.headers
                #expect(try verifier.verify(headers: { name in headers.first { $0.key.lowercased() == name }?.value },
                                            body: Array(request.body.utf8), now: Date()) == id)

                #expect(delivery["status"] == "succeeded")
                // The last attempt succeeded; under load an earlier one may have timed out (total: 1s).
                let attempt = delivery["attempts"]!.array.last!
                #expect(attempt["trigger"] == "scheduled")
                #expect(attempt["response"]?["status"]?.numberValue == 200)
                #expect(attempt["request"]?["headers"]?["Authorization"] == "••••")
                #expect(attempt["request"]?["headers"]?["webhook-signature"] == "••••")
                #expect(attempt["request"]?["body_excerpt"] == .string(request.body), "the body sent, shown with each attempt")
                #expect(attempt["request"]?["body_size"]?.numberValue == Double(request.body.utf8.count))
                let log = try await api.request(.get, "/v1/deliveries/\(id)").body
                #expect(!log.contains("crm-token-secret"))
            }
        }
    }

    @Test("500 twice then 200: three attempts with the same webhook-id and Idempotency-Key")
    func retriesThenSuccess() async throws {
        let receiver = TestReceiver(script: [.init(status: 500), .init(status: 503), .init(status: 200)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            let clock = ManualClock()
            let gateway = try await TestGateway(configurationDirectory: config.path, clock: clock)
            try await gateway.test { api in
                let run = try await start(api)
                await receiver.waitForRequests(1)
                // The retries wait for the injected clock: nothing is sent until it moves.
                for expected in 2 ... 3 {
                    try await Self.eventually {
                        let d = try await gateway.store.listDeliveries(DeliveryQuery()).first
                        return d?.attemptCount == expected - 1 && d?.status == .pending
                    }
                    let delivery = try #require(try await gateway.store.listDeliveries(DeliveryQuery()).first)
                    let wait = delivery.nextAttemptAt!.timeIntervalSince(clock.now())
                    #expect(wait >= 0 && wait <= Double(1 << (expected - 2)), "full jitter under a growing ceiling")
                    clock.advance(by: 10)
                    await receiver.waitForRequests(expected)
                }
                let done = try await api.waitUntilFinished(run)
                #expect(done["status"] == "completed")
                let ids = Set(receiver.received.compactMap { $0.headers["webhook-id"] })
                let keys = Set(receiver.received.compactMap { $0.headers["Idempotency-Key"] })
                #expect(receiver.received.count == 3)
                #expect(ids.count == 1 && ids == keys)
                let delivery = try await deliveryOf(api, run: run)
                #expect(delivery["attempts"]!.array.map { $0["response"]?["status"]?.numberValue } == [500, 503, 200])
                #expect(done["steps"]!.array.first { $0["id"] == "tell" }?["attempts"]?.numberValue == 3)
                // The retries waited in the store and were claimed; the first attempt was handed over
                // in memory by its commit, or claimed too when the worker had not opened its queue yet.
                let metrics = try await api.request(.get, "/metrics", authenticated: false).body
                func intake(_ path: String) -> Int {
                    metrics.split(separator: "\n").first { $0.hasPrefix("switchboard_delivery_intake_total{path=\"\(path)\"}") }
                        .flatMap { $0.split(separator: " ").last.flatMap { Int($0) } } ?? 0
                }
                #expect(intake("handed") + intake("claimed") == 3)
                #expect(intake("claimed") >= 2)
            }
        }
    }

    @Test("body: = event sends the event byte for byte as it arrived, on every attempt, and stores its text once")
    func forwardsEventAsReceived() async throws {
        let receiver = TestReceiver(script: [.init(status: 503), .init(status: 200)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            try config.write("workflows/forward.yaml", """
                id: forward
                trigger: { event: inquiry.completed }
                steps:
                  - id: send
                    connector: crm
                    operation: request
                    with: { path: /forward, body: "= event" }
                """)
            let clock = ManualClock()
            let gateway = try await TestGateway(configurationDirectory: config.path, clock: clock)
            try await gateway.test { api in
                // Keys out of order, spaces, an escape and a non-ASCII name: encoding the parsed event
                // again would change every one of them.
                let text = #"{ "type": "inquiry.completed", "specversion": "1.0", "source": "s", "id": "fwd-1", "#
                    + #""data": {"name": "Zoë", "note": "a\u0041b", "n": 1.50} }"#
                let reply = try await api.request(.post, "/v1/events", body: text)
                #expect(reply.status == .accepted, "\(reply.body)")
                let run = try #require(reply.json["runs"]?.array.first?["id"]?.stringValue)
                await receiver.waitForRequests(1)
                try await Self.eventually { try await gateway.store.listDeliveries(DeliveryQuery()).first?.status == .pending }
                clock.advance(by: 10)  // the retry is claimed from the store, body and all
                #expect(try await api.waitUntilFinished(run)["status"] == "completed")
                #expect(receiver.received.map(\.body) == [text, text])
                let verifier = StandardWebhooks(secrets: [try SigningSecret(Self.secret)])
                let headers = try #require(receiver.received.last).headers
                let delivery = try await deliveryOf(api, run: run)
                #expect(try verifier.verify(headers: { name in headers.first { $0.key.lowercased() == name }?.value },
                                            body: Array(text.utf8), now: Date()) == delivery["id"]?.stringValue,
                        "the signature verifies, over the body as received, for the delivery's id")
                #expect(delivery["attempts"]?.array.last?["request"]?["body_excerpt"] == .string(text))
                let stored = try gateway.store.pool.read { db in
                    try Row.fetchOne(db, sql: "SELECT body, body_event FROM deliveries")
                }
                #expect(stored?["body"] as String? == nil, "the event's text is not stored a second time")
                #expect(stored?["body_event"] as String? == reply.json["event_id"]?.stringValue)
            }
        }
    }

    @Test("429 with Retry-After sets the next attempt")
    func retryAfter() async throws {
        let receiver = TestReceiver(script: [.init(status: 429, headers: [("Retry-After", "7")]), .init(status: 200)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            let clock = ManualClock()
            let gateway = try await TestGateway(configurationDirectory: config.path, clock: clock)
            try await gateway.test { api in
                let run = try await start(api)
                try await Self.eventually {
                    let d = try await gateway.store.listDeliveries(DeliveryQuery()).first
                    return d?.attemptCount == 1 && d?.status == .pending
                }
                let delivery = try #require(try await gateway.store.listDeliveries(DeliveryQuery()).first)
                #expect(abs(delivery.nextAttemptAt!.timeIntervalSince(clock.now()) - 7) < 0.01)
                clock.advance(by: 7)
                #expect(try await api.waitUntilFinished(run)["status"] == "completed")
            }
        }
    }

    @Test("400 is final: one attempt, the delivery failed, the run failed; a manual retry resumes it")
    func finalThenManualRetry() async throws {
        let receiver = TestReceiver(script: [.init(status: 400, body: "bad"), .init(status: 200)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            let gateway = try await TestGateway(configurationDirectory: config.path)
            try await gateway.test { api in
                let run = try await start(api)
                let failed = try await api.waitUntilFinished(run)
                #expect(failed["status"] == "failed")
                #expect(failed["error"]?["class"] == "http_status")
                var delivery = try await deliveryOf(api, run: run)
                #expect(delivery["status"] == "failed")
                #expect(delivery["attempts"]!.array.count == 1)
                #expect(receiver.received.count == 1)

                let id = delivery["id"]!.stringValue!
                let retry = try await api.request(.post, "/v1/deliveries/\(id)/retry")
                #expect(retry.status == .accepted)
                let done = try await api.waitForRun(run) { $0.status == .completed }
                #expect(done["status"] == "completed")
                #expect(done["decision"] == "approved")
                delivery = try await deliveryOf(api, run: run)
                #expect(delivery["attempts"]!.array.map { $0["trigger"]!.stringValue! } == ["scheduled", "manual"])
                #expect(try await api.request(.post, "/v1/deliveries/\(id)/retry").status == .conflict)
                #expect(try await api.request(.post, "/v1/deliveries/dlv_nope/retry").status == .notFound)
            }
        }
    }

    @Test("a timeout and a refused connection are retried, then dead; on_error decides")
    func timeoutAndRefused() async throws {
        let receiver = TestReceiver(script: [.init(status: 200, delay: .seconds(3))])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url, onError: "continue")
            let clock = ManualClock()
            let gateway = try await TestGateway(configurationDirectory: config.path, clock: clock)
            try await gateway.test { api in
                let run = try await start(api)
                for attempt in 1 ... 3 {
                    try await Self.eventually {
                        let d = try await gateway.store.listDeliveries(DeliveryQuery()).first
                        return d?.attemptCount == attempt && d?.status != .sending
                    }
                    clock.advance(by: 60)
                }
                let done = try await api.waitUntilFinished(run)
                #expect(done["status"] == "completed", "on_error: continue")
                let delivery = try await deliveryOf(api, run: run)
                #expect(delivery["status"] == "dead")
                #expect(delivery["attempts"]!.array.allSatisfy { $0["error"]?["class"] == "timeout" })
                #expect(done["steps"]!.array.first { $0["id"] == "tell" }?["error"]?["class"] == "timeout")
            }
        }
        // Nothing listens on the receiver's old port now.
        let config = try Self.configuration(receiverURL: "http://127.0.0.1:\(receiver.port)")
        let clock = ManualClock()
        let gateway = try await TestGateway(configurationDirectory: config.path, clock: clock)
        try await gateway.test { api in
            let run = try await start(api)
            try await Self.eventually { try await gateway.store.listDeliveries(DeliveryQuery()).first?.attemptCount == 1 }
            let delivery = try await deliveryOf(api, run: run)
            #expect(delivery["attempts"]!.array[0]["error"]?["class"] == "connect")
            #expect(delivery["status"] == "pending", "a refused connection is retried")
        }
    }

    @Test("a redirect to 127.0.0.1 is refused while private networks are disallowed")
    func redirectRefused() async throws {
        let target = TestReceiver(script: [.init(status: 200)])
        try await target.serve {
            let front = TestReceiver(host: "127.0.0.2", script: [.init(status: 307, headers: [("Location", target.url + "/inner")])])
            try await front.serve {
                let config = try Self.configuration(receiverURL: front.url, extra: "redirects: true")
                let text = try String(contentsOfFile: config.file("connectors/crm.yaml"), encoding: .utf8)
                    .replacingOccurrences(of: "127.0.0.0/8", with: "127.0.0.2/32")
                try config.write("connectors/crm.yaml", text)
                let gateway = try await TestGateway(configurationDirectory: config.path)
                try await gateway.test { api in
                    let run = try await start(api)
                    let failed = try await api.waitUntilFinished(run)
                    #expect(failed["status"] == "failed")
                    #expect(failed["error"]?["class"] == "ssrf_blocked")
                    #expect(front.received.count == 1)
                    #expect(target.received.isEmpty)
                    let delivery = try await deliveryOf(api, run: run)
                    #expect(delivery["status"] == "failed")
                }
            }
        }
    }

    @Test("a delivery whose success starts the next one: both sent once, and the worker's room all given back")
    func chainedDeliveries() async throws {
        let receiver = TestReceiver(script: [.init(status: 200), .init(status: 200)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            try config.write("workflows/notify.yaml", """
                id: notify
                trigger: { api: { input: { ref: { type: string, required: true } } } }
                steps:
                  - id: tell
                    connector: crm
                    operation: notify
                  - id: tell_again
                    connector: crm
                    operation: notify
                  - id: done
                    action: approve
                """)
            let gateway = try await TestGateway(configurationDirectory: config.path)
            try await gateway.test { api in
                let run = try await start(api)
                let done = try await api.waitUntilFinished(run)
                #expect(done["status"] == "completed" && done["decision"] == "approved")
                #expect(receiver.received.count == 2)
                // The second delivery was made (and its room reserved) before the first one's
                // transaction, from the run the store remembered.
                #expect(gateway.store.recentRuns.hits.load(ordering: .relaxed) >= 2)
                try await Self.eventually { gateway.gateway.engine.deliveries.inFlight == 0 }
            }
        }
    }

    @Test("a 10 MiB response is read up to 1 MiB and logged as an excerpt")
    func largeResponse() async throws {
        let receiver = TestReceiver(script: [.init(status: 200, bodyBytes: 10 << 20)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            let gateway = try await TestGateway(configurationDirectory: config.path)
            try await gateway.test { api in
                let run = try await start(api)
                _ = try await api.waitUntilFinished(run)
                let delivery = try await deliveryOf(api, run: run)
                let response = delivery["attempts"]!.array[0]["response"]!
                #expect(response["body_size"]?.numberValue == Double(1 << 20))
                #expect(response["body_truncated"] == true)
                #expect(response["body_excerpt"]?.stringValue?.utf8.count == 4096)
            }
        }
    }

    @Test("circuit_breaker: { failures: 2 } opens after two failed attempts and holds the third back")
    func configuredBreaker() async throws {
        let receiver = TestReceiver(script: [.init(status: 500)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url, extra: "circuit_breaker: { failures: 2, open_for: 1m }")
            let gateway = try await TestGateway(configurationDirectory: config.path)
            try await gateway.test { api in
                try await api.request(.post, "/v1/workflows/notify/runs", json: ["ref": "breaker"])
                await receiver.waitForRequests(2, timeout: .seconds(20))
                // The third attempt is due within 2 s (1 s, doubled, with jitter): the open circuit holds it back.
                try await Sleep.for(.milliseconds(2500))
                #expect(receiver.received.count == 2)
                let listed = try await api.request(.get, "/v1/connectors").json["data"]!.array[0]
                #expect(listed["circuit"]?["state"] == "open", "\(listed["circuit"]?.text ?? "")")
            }
        }
    }

    @Test("POST /v1/connectors/{id}/test says in words what is wrong")
    func connectorTest() async throws {
        let receiver = TestReceiver(script: [.init(status: 200), .init(status: 401)])
        try await receiver.serve {
            let config = try Self.configuration(receiverURL: receiver.url)
            let gateway = try await TestGateway(configurationDirectory: config.path)
            try await gateway.test { api in
                let ok = try await api.request(.post, "/v1/connectors/crm/test").json
                #expect(ok["ok"] == true)
                #expect(receiver.received.first?.method == "HEAD")
                #expect(receiver.received.first?.headers["Authorization"] == "Bearer crm-token-secret")
                let refused = try await api.request(.post, "/v1/connectors/crm/test").json
                #expect(refused["status"] == "unauthorized")
                #expect(refused["detail"]?.stringValue?.contains("check auth") == true)
                #expect(try await api.request(.post, "/v1/connectors/nope/test").status == .notFound)
                let listed = try await api.request(.get, "/v1/connectors").json["data"]!.array[0]
                #expect(listed["circuit"]?["state"] == "closed")
                #expect(listed["operations"]?.arrayValue?.compactMap { $0["name"]?.stringValue } == ["request", "notify"])
            }
        }
        let config = try Self.configuration(receiverURL: "http://127.0.0.1:\(receiver.port)")
        let unreachable = try await Binary.run(["connectors", "test", "crm", "--config", config.path])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.contains("crm: unreachable: connect"))
        let text = try String(contentsOfFile: config.file("connectors/crm.yaml"), encoding: .utf8)
        try config.write("connectors/crm.yaml", text.replacingOccurrences(of: "allow_networks: [ 127.0.0.0/8 ]", with: ""))
        let blocked = try await Binary.run(["connectors", "test", "crm", "--config", config.path])
        #expect(blocked.stderr.contains("crm: refused_address"))
    }

    /// Waits (bounded) for a condition on the store.
    static func eventually(timeout: TimeInterval = 10, _ condition: @Sendable () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try await condition() { return }
            try await Sleep.for(.milliseconds(10))
        }
        Issue.record("condition not met within \(timeout) s")
    }
}
