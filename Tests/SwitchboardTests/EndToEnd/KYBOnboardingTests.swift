import CEL
import Foundation
import Testing
@testable import Switchboard

/// Example 3 end to end: four KYB reports go to the sandbox vendor over real HTTP in parallel,
/// its signed callbacks are verified and matched, and the decision follows the documented outcomes.
@Suite("Example 3: KYB onboarding against the sandbox vendor", .timeLimit(.minutes(3)))
struct KYBOnboardingTests {
    @Test("each documented input gets its decision", arguments: [
        ("Acme Robotics LLC", "12-3456789", "approved"),
        ("Sanctioned Shipping Ltd", "12-3456789", "declined"),
        ("Acme Robotics LLC", "00-0000000", "declined"),
        ("Dissolved Widgets Inc", "12-3456789", "needs_review"),
        ("Scandal Media Group", "12-3456789", "needs_review"),
    ])
    func decisions(name: String, ein: String, expected: String) async throws {
        try await SandboxHarness.run { harness in
            let input: JSON = ["business_name": .string(name), "business_address": "1 Main St, Springfield, IL 62701",
                               "ein": .string(ein)]
            let started = try await harness.api.request(.POST, "/v1/workflows/kyb-onboarding/runs", json: input)
            #expect(started.status == 202)
            let id = try #require(started.body["id"]?.stringValue)
            let run = try await harness.api.poll(run: id) { ["completed", "failed"].contains($0["status"]?.stringValue ?? "") }
            #expect(run["status"] == "completed", "\(run)")
            #expect(run["decision"] == .string(expected), "\(name) / \(ein)")
            let steps = run["steps"]?.arrayValue ?? []
            for report in ["watchlist", "adverse_media", "lookup", "tin"] {
                let step = steps.first { $0["id"]?.stringValue == report }
                #expect(step?["status"] == "completed", "\(report): \(step ?? .null)")
                #expect(step?["parent"] == "reports")
            }
            // Every report was ordered once and answered by a verified callback matched to its step.
            let deliveries = try await harness.api.request(.GET, "/v1/deliveries?run=\(id)").body["data"]?.arrayValue ?? []
            #expect(deliveries.count == 4)
            let callbacks = try await harness.api.request(.GET, "/v1/callbacks?connector=kyb&status=matched").body["data"]?.arrayValue ?? []
            #expect(callbacks.filter { $0["run_id"]?.stringValue == id }.count == 4)
        }
    }

    @Test("normalized outputs: a watchlist hit, an inactive business and a TIN mismatch read the same whatever the vendor")
    func outputs() async throws {
        try await SandboxHarness.run { harness in
            let input: JSON = ["business_name": "Sanctioned Dissolved Co", "business_address": "2 Elm St, Dover, DE 19901",
                               "ein": "00-0000000"]
            let id = try #require(try await harness.api.request(.POST, "/v1/workflows/kyb-onboarding/runs", json: input).body["id"]?.stringValue)
            let run = try await harness.api.poll(run: id) { $0["status"] == "completed" }
            let output = { (step: String) in (run["steps"]?.arrayValue ?? []).first { $0["id"]?.stringValue == step }?["output"] ?? .null }
            #expect(output("watchlist")["has_match"] == true)
            #expect(output("watchlist")["hits"]?.arrayValue?.first?["list"] == "OFAC SDN")
            #expect(output("lookup")["status"] == "inactive")
            #expect(output("lookup")["found"] == true)
            #expect(output("tin")["result"] == "mismatch")
            #expect(output("tin")["match"] == false)
            #expect(output("adverse_media")["has_match"] == false)
            #expect(run["tags"]?.stringList == ["watchlist-hit"])
        }
    }

    @Test("a vendor that answers 500 twice is retried, and the run still completes")
    func retries() async throws {
        try await SandboxHarness.run { harness in
            _ = try await harness.sandboxPost("/kyb/control", ["fail_status": 500, "fail_count": 2])
            let input: JSON = ["business_name": "Acme Robotics LLC", "business_address": "1 Main St, Springfield, IL 62701",
                               "ein": "12-3456789"]
            let id = try #require(try await harness.api.request(.POST, "/v1/workflows/kyb-onboarding/runs", json: input).body["id"]?.stringValue)
            let run = try await harness.api.poll(run: id, timeout: 30) { $0["status"] == "completed" }
            #expect(run["decision"] == "approved")
            let deliveries = try await harness.api.request(.GET, "/v1/deliveries?run=\(id)").body["data"]?.arrayValue ?? []
            let attempts = deliveries.compactMap { $0["attempt_count"]?.numberValue }.reduce(0, +)
            #expect(attempts == 6, "four orders, two of them retried once: \(deliveries)")
        }
    }

    @Test("when the vendor never calls back, the polling fallback finishes the reports")
    func polling() async throws {
        try await SandboxHarness.run(environment: ["KYB_POLL_INTERVAL": "1s"]) { harness in
            _ = try await harness.sandboxPost("/kyb/control", ["callbacks": false])
            let input: JSON = ["business_name": "Scandal Media Group", "business_address": "5 Press St, New York, NY 10001",
                               "ein": "12-3456789"]
            let id = try #require(try await harness.api.request(.POST, "/v1/workflows/kyb-onboarding/runs", json: input).body["id"]?.stringValue)
            let run = try await harness.api.poll(run: id, timeout: 20) { $0["status"] == "completed" }
            #expect(run["decision"] == "needs_review", "\(run)")
            let deliveries = try await harness.api.request(.GET, "/v1/deliveries?run=\(id)").body["data"]?.arrayValue ?? []
            // A poll that finds its report still pending (a loaded machine) polls again a second later.
            #expect(deliveries.count >= 8, "four orders and at least one poll each: \(deliveries.count)")
            #expect(deliveries.allSatisfy { $0["status"] == "succeeded" })
            let callbacks = try await harness.api.request(.GET, "/v1/callbacks?connector=kyb").body["data"]?.arrayValue ?? []
            #expect(callbacks.isEmpty)
        }
    }
}
