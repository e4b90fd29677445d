import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// Vendor callbacks at POST /v1/callbacks/{connector}: signatures, replays, and callbacks that
/// arrive before their step has recorded the vendor's report id.
@Suite("Callbacks: verification, replay protection, early callbacks", .timeLimit(.minutes(3)))
struct CallbackInboxTests {
    static let workflow = """
        id: tin
        trigger: { api: { input: { name: { type: string, required: true } } } }
        steps:
          - id: tin
            connector: kyb
            operation: tin_check
            with: { business_name: "= input.name", ein: "12-3456789" }
        """

    /// A gateway whose `kyb` connector (the shipped file) orders reports from `vendor`.
    static func gateway(vendor: TestReceiver, clock: any WallClock = SystemWallClock()) async throws -> (TestGateway, TemporaryDirectory) {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/tin.yaml", workflow)
        try directory.write("connectors/kyb.yaml", try String(contentsOf: Repository.root.appendingPathComponent("connectors/kyb.yaml"), encoding: .utf8))
        let gateway = try await TestGateway(configurationDirectory: directory.path, clock: clock,
                                            environment: ["KYB_BASE_URL": vendor.url])
        return (gateway, directory)
    }

    /// A sandbox-vendor callback for `report`, signed with `secret`.
    static func callback(report: String, messageID: String, secret: String = "whsec_c3dpdGNoYm9hcmQtc2FuZGJveC1jYWxsYmFja3M=",
                         at time: Date = Date()) throws -> (String, HTTPFields) {
        let body: JSON = ["type": "report.completed",
                          "data": ["id": .string(report), "type": "tin_check", "status": "completed",
                                   "result": ["tin_status": "MATCH", "tin_type": "EIN"]]]
        var headers: HTTPFields = [.contentType: "application/json"]
        for (name, value) in StandardWebhooks(secrets: [try SigningSecret(secret)])
            .headers(id: messageID, timestamp: Int64(time.timeIntervalSince1970), body: Array(body.text.utf8))
        {
            headers[HTTPField.Name(name)!] = value
        }
        return (body.text, headers)
    }

    @Test("a callback that arrives before its step recorded the report id is kept, then matched; a replay and a bad signature get 401")
    func earlyReplayAndSignature() async throws {
        // The vendor answers the order slowly, so its callback comes first: 6 s leaves room for a
        // machine loaded by the rest of the suite between the order and the callback (2 s did not,
        // once the suite ran browser, process and cluster tests side by side).
        let vendor = TestReceiver(script: [.init(status: 201, body: #"{"id": "rep_early", "status": "pending"}"#, delay: .seconds(6))])
        try await vendor.serve {
            let (gateway, directory) = try await Self.gateway(vendor: vendor)
            try await gateway.test { api in
                let started = try await api.request(.post, "/v1/workflows/tin/runs", json: ["name": "Acme"])
                let run = try #require(started.json["id"]?.stringValue)
                await vendor.waitForRequests(1)

                let ordered = try await api.request(.get, "/v1/runs/\(run)").json
                #expect((ordered["steps"]?.arrayValue ?? []).first?["delivery_id"]?.stringValue?.hasPrefix("dlv_") == true)

                let (body, headers) = try Self.callback(report: "rep_early", messageID: "msg_1")
                let early = try await api.request(.post, "/v1/callbacks/kyb", body: body, headers: headers, authenticated: false)
                #expect(early.status == .accepted, "\(early.body)")
                #expect(early.json["status"] == "pending")

                let done = try await api.waitForRun(run, timeout: .seconds(30)) { $0.status == .completed }
                let step = done["steps"]?.arrayValue?.first { $0["id"] == "tin" }
                #expect(step?["output"]?["result"] == "match")
                #expect(step?["output"]?["match"] == true)

                let replay = try await api.request(.post, "/v1/callbacks/kyb", body: body, headers: headers, authenticated: false)
                #expect(replay.status == .unauthorized)

                let (forged, forgedHeaders) = try Self.callback(report: "rep_early", messageID: "msg_2",
                                                                secret: "whsec_" + Data("wrong".utf8).base64EncodedString())
                let refused = try await api.request(.post, "/v1/callbacks/kyb", body: forged, headers: forgedHeaders, authenticated: false)
                #expect(refused.status == .unauthorized)
                #expect(refused.headers[.contentType] == "application/problem+json")

                let log = try await api.request(.get, "/v1/callbacks?connector=kyb").json["data"]?.arrayValue ?? []
                #expect(Set(log.compactMap { $0["status"]?.stringValue }) == ["matched", "replayed", "rejected"])
                #expect(log.first { $0["status"] == "matched" }?["run_id"] == .string(run))
                #expect(try await api.request(.post, "/v1/callbacks/nope", body: body, headers: headers, authenticated: false).status == .notFound)
                let metrics = try await api.request(.get, "/metrics", authenticated: false).body
                for outcome in ["pending", "replayed", "rejected"] {
                    #expect(metrics.contains(#"switchboard_callbacks_total{connector="kyb",outcome="\#(outcome)"} 1"#), "\(outcome)")
                }
            }
            _ = directory
        }
    }

    @Test("a callback no step claims within ten minutes is reported as unmatched")
    func unmatched() async throws {
        let vendor = TestReceiver(script: [.init(status: 201, body: #"{"id": "rep_1", "status": "pending"}"#)])
        let clock = ManualClock()
        try await vendor.serve {
            let (gateway, directory) = try await Self.gateway(vendor: vendor, clock: clock)
            try await gateway.test { api in
                let (body, headers) = try Self.callback(report: "rep_nobody", messageID: "msg_9", at: clock.now())
                #expect(try await api.request(.post, "/v1/callbacks/kyb", body: body, headers: headers, authenticated: false).status == .accepted)
                await gateway.gateway.callbacks.sweep()
                #expect(try await api.request(.get, "/v1/callbacks?status=pending").json["data"]?.arrayValue?.count == 1)
                clock.advance(by: CallbackInbox.earlyCallbackLifetime + 1)
                await gateway.gateway.callbacks.sweep()
                let unmatched = try await api.request(.get, "/v1/callbacks?status=unmatched").json["data"]?.arrayValue ?? []
                #expect(unmatched.count == 1)
                #expect(unmatched.first?["correlation"] == "rep_nobody")
            }
            _ = directory
        }
    }
}
