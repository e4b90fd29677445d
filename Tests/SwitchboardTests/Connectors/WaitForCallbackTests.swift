import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// `wait: callback` on an http connector with `callbacks:`: the customer's system calls back,
/// signed, carrying the id the step expects.
@Suite("wait: callback on an http connector", .timeLimit(.minutes(3)))
struct WaitForCallbackTests {
    static let secret = "shipping-callback-secret"

    static func configure(_ directory: TemporaryDirectory, receiver: String) throws {
        try directory.write("connectors/shop.yaml", """
            id: shop
            kind: http
            base_url: \(receiver)
            signing: off
            allow_networks: [127.0.0.1/32]
            callbacks:
              scheme: hmac-sha256
              header: X-Shop-Signature
              secret: \(secret)
              correlation: body.order_id
              message_id: body.event_id
            """)
        try directory.write("workflows/ship.yaml", """
            id: ship
            trigger: { api: { input: { item: { type: string, required: true } } } }
            steps:
              - id: order
                connector: shop
                operation: request
                with: { path: /orders, body: "= {'item': input.item}" }
              - id: shipped
                wait: callback
                connector: shop
                correlation: steps.order.output.body.id
                timeout: 1h
              - id: decide
                if: steps.shipped.output.status == "shipped"
                then: [ { id: approve, action: approve } ]
                else: [ { id: decline, action: decline } ]
            """)
    }

    static func signed(_ body: JSON, secret: String = secret) throws -> (String, HTTPFields) {
        let text = body.text
        var headers: HTTPFields = [.contentType: "application/json"]
        for (name, value) in InboundVerifier.sign(.hmacSHA256(header: "X-Shop-Signature"), secret: try SigningSecret(secret),
                                                  body: Array(text.utf8), timestamp: 0)
        {
            headers[HTTPField.Name(name)!] = value
        }
        return (text, headers)
    }

    @Test("the callback carrying the order id resolves the wait; its payload is the output; replays and strangers change nothing")
    func resolves() async throws {
        let receiver = TestReceiver(script: [.init(status: 201, body: #"{"id": "o-17"}"#)])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try Self.configure(directory, receiver: receiver.url)
            let gateway = try await TestGateway(configurationDirectory: directory.path)
            try await gateway.test { api in
                // A callback for another order is kept, and matches nothing.
                let (other, otherHeaders) = try Self.signed(["event_id": "e-0", "order_id": "o-99", "status": "shipped"])
                #expect(try await api.request(.post, "/v1/callbacks/shop", body: other, headers: otherHeaders, authenticated: false).status == .accepted)

                let run = try #require(try await api.request(.post, "/v1/workflows/ship/runs", json: ["item": "lamp"]).json["id"]?.stringValue)
                // The order's delivery settled and the wait started: the run now waits until the wait's timeout.
                _ = try await api.waitForRun(run) { $0.status == .waiting && $0.wakeAt != nil }
                let awaited = try await gateway.store.loadRun(RunID(run))?.steps.first { $0.id == "shipped" }?.awaitedCallback
                #expect(awaited == CallbackKey(connector: "shop", correlation: "o-17"))
                let shown = try await api.request(.get, "/v1/runs/\(run)").json
                #expect((shown["steps"]?.arrayValue ?? []).first { $0["id"] == "shipped" }?["awaiting"] == ["connector": "shop", "correlation": "o-17"])

                let (forged, forgedHeaders) = try Self.signed(["event_id": "e-1", "order_id": "o-17", "status": "lost"], secret: "guess")
                #expect(try await api.request(.post, "/v1/callbacks/shop", body: forged, headers: forgedHeaders, authenticated: false).status == .unauthorized)

                let (body, headers) = try Self.signed(["event_id": "e-2", "order_id": "o-17", "status": "shipped"])
                let matched = try await api.request(.post, "/v1/callbacks/shop", body: body, headers: headers, authenticated: false)
                #expect(matched.status == .ok)
                #expect(matched.json["run_id"] == .string(run))
                let done = try await api.waitUntilFinished(run)
                #expect(done["decision"] == "approved")
                #expect((done["steps"]?.arrayValue ?? []).first { $0["id"] == "shipped" }?["output"]?["status"] == "shipped")
                #expect(try await api.request(.post, "/v1/callbacks/shop", body: body, headers: headers, authenticated: false).status == .unauthorized)
            }
        }
    }

    @Test("a callbacks: block with a bad scheme, no secret or a correlation that does not compile is a configuration error")
    func validation() throws {
        let directory = try TemporaryDirectory()
        try directory.write("connectors/shop.yaml", """
            id: shop
            kind: http
            base_url: http://127.0.0.1:9
            signing: off
            callbacks: { scheme: rot13, secret: x, correlation: "body." }
            """)
        let (_, problems) = Configuration.load(directory: directory.path)
        #expect(problems.contains { $0.message.contains("callbacks.scheme: 'rot13' is not a scheme") && $0.line == 5 }, "\(problems)")
        try directory.write("connectors/shop.yaml", """
            id: shop
            kind: http
            base_url: http://127.0.0.1:9
            signing: off
            callbacks: { scheme: standard-webhooks, secret: "whsec_c2VjcmV0", correlation: "body." }
            """)
        let (_, again) = Configuration.load(directory: directory.path)
        #expect(again.contains { $0.message.contains("callbacks.correlation: expression does not compile") }, "\(again)")
    }
}
