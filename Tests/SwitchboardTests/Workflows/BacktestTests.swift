import CEL
import Foundation
import HTTPTypes
import Testing
@testable import Switchboard

/// Backtests: recorded runs replayed through a changed definition, with the answers their
/// originals received; only the changed decisions are reported, and nothing is written.
@Suite("Backtests", .timeLimit(.minutes(2)))
struct BacktestTests {
    static func inquiry(_ id: String, ip: String?, birthdate: String = "1990-01-01") -> JSON {
        var inquiry: [String: JSON] = ["id": .string(id), "birthdate": .string(birthdate), "name_first": "Ana"]
        if let ip { inquiry["ip_address"] = .string(ip) }
        return ["specversion": "1.0", "id": .string("evt-\(id)"), "source": "/persona", "type": "inquiry.completed",
                "data": ["inquiry": .object(inquiry)]]
    }

    /// The shipped decline-blocked-ip with its condition changed: 203.0.113.7 is no longer
    /// declined, 192.0.2.10 now is.
    static let candidate = try! String(contentsOf: Repository.root.appendingPathComponent("workflows/decline-blocked-ip.yaml"), encoding: .utf8)
        .replacingOccurrences(of: "if: has(data.inquiry.ip_address) && inList('blocked-ips', data.inquiry.ip_address)",
                              with: "if: has(data.inquiry.ip_address) && data.inquiry.ip_address != '203.0.113.7' && (inList('blocked-ips', data.inquiry.ip_address) || data.inquiry.ip_address == '192.0.2.10')")

    @Test("a changed list condition: the matrix holds exactly the changed runs; an unchanged file changes nothing; nothing is written")
    func changedCondition() async throws {
        #expect(Self.candidate.contains("192.0.2.10"), "the candidate differs from the shipped file")
        let gateway = try await TestGateway()
        try await gateway.seedBlockedIPs()
        try await gateway.test { api in
            var runs: [String: String] = [:]  // inquiry → decline-blocked-ip run
            for (id, ip) in [("exact", "203.0.113.7"), ("range", "198.51.100.20"), ("now-blocked", "192.0.2.10"),
                             ("clean", "10.1.2.3"), ("none", nil)] as [(String, String?)] {
                let answer = try await api.request(.post, "/v1/events", json: Self.inquiry(id, ip: ip)).json
                runs[id] = answer["runs"]?.array.first { $0["workflow"] == "decline-blocked-ip" }?["id"]?.stringValue
            }
            for id in runs.values { _ = try await api.waitUntilFinished(id) }
            let before = try await api.request(.get, "/v1/runs?limit=500").json["data"]?.array.count

            var request = try await api.request(.post, "/v1/workflows/decline-blocked-ip/backtest", body: Self.candidate,
                                                headers: [.contentType: "application/yaml"])
            #expect(request.status == .ok, "\(request.body)")
            let report = request.json
            #expect(report["replayed"] == 5)
            #expect(report["changed"] == 2)
            #expect(report["unchanged"] == 3)
            let matrix = report["matrix"]?.array ?? []
            #expect(matrix.count == 2)
            let unblocked = matrix.first { $0["from"] == "declined" && $0["to"] == .null }
            #expect(unblocked?["count"] == 1)
            #expect(unblocked?["runs"] == [.string(runs["exact"]!)])
            let blocked = matrix.first { $0["from"] == .null && $0["to"] == "declined" }
            #expect(blocked?["runs"] == [.string(runs["now-blocked"]!)])
            #expect(report["failed"] == [] && report["unknown"] == [])

            // The shipped file, unchanged: nothing changes.
            let shipped = try String(contentsOf: Repository.root.appendingPathComponent("workflows/decline-blocked-ip.yaml"), encoding: .utf8)
            request = try await api.request(.post, "/v1/workflows/decline-blocked-ip/backtest", body: shipped,
                                            headers: [.contentType: "application/yaml"])
            #expect(request.json["changed"] == 0 && request.json["unchanged"] == 5)
            #expect(try await api.request(.get, "/v1/runs?limit=500").json["data"]?.array.count == before, "nothing was written")

            // The command line reads the same store and says the same.
            let file = gateway.directory.file("candidate.yaml")
            try Self.candidate.write(toFile: file, atomically: true, encoding: .utf8)
            let cli = try await Binary.run(["backtest", file, "--config", Repository.root.path,
                                            "--database", "sqlite:" + gateway.directory.file("switchboard.sqlite"), "--json"])
            #expect(cli.status == 0, "\(cli.stderr)")
            let printed = try JSON.parse(cli.stdout)
            #expect(printed["changed"] == 2 && printed["matrix"] == report["matrix"], "\(cli.stdout)")
            let text = try await Binary.run(["backtest", file, "--config", Repository.root.path,
                                             "--database", "sqlite:" + gateway.directory.file("switchboard.sqlite")])
            #expect(text.stdout.contains("5 run(s) replayed") && text.stdout.contains("declined → none: 1"), "\(text.stdout)")

            // Another workflow's id, or a file that does not read: 422 naming the problem.
            let other = try await api.request(.post, "/v1/workflows/review-minors/backtest", body: Self.candidate,
                                              headers: [.contentType: "application/yaml"])
            #expect(other.status == .unprocessableContent)
            let broken = try await api.request(.post, "/v1/workflows/decline-blocked-ip/backtest",
                                               body: "id: decline-blocked-ip\ntrigger: { event: x }\nsteps:\n  - { id: a, if: 'data ==', then: [] }\n",
                                               headers: [.contentType: "application/yaml"])
            #expect(broken.status == .unprocessableContent)
            #expect(broken.json["errors"]?.array.first?["line"] == 4)
        }
    }

    @Test("reviews and connector results are replayed as the originals received them; a step never run before is unknown")
    func recordedAnswers() async throws {
        let slack = TestReceiver(script: [TestReceiver.Answer(body: "ok")])
        try await slack.serve {
        let gateway = try await TestGateway(environment: ["SLACK_WEBHOOK_URL": slack.url + "/webhook"])
        try await gateway.test { api in
            var minors: [String] = []
            for id in ["m1", "m2", "m3"] {
                let answer = try await api.request(.post, "/v1/events", json: Self.inquiry(id, ip: nil, birthdate: "2012-06-01")).json
                minors += (answer["runs"]?.array ?? []).filter { $0["workflow"] == "review-minors" }.compactMap { $0["id"]?.stringValue }
            }
            for (run, decision) in zip(minors, ["approve", "decline", "approve"]) {
                _ = try await api.waitForRun(run) { $0.status == .waiting }
                #expect(try await api.request(.post, "/v1/runs/\(run)/review", json: ["decision": .string(decision)]).status == .accepted)
                _ = try await api.waitUntilFinished(run)
            }
            let file = try String(contentsOf: Repository.root.appendingPathComponent("workflows/review-minors.yaml"), encoding: .utf8)
            let same = try await api.request(.post, "/v1/workflows/review-minors/backtest", body: file,
                                             headers: [.contentType: "application/yaml"]).json
            #expect(same["replayed"] == 3)
            #expect(same["unchanged"] == 3, "each review is replayed with its recorded decision: \(same)")
            #expect(same["unknown"] == [])

            // A candidate that asks a vendor first: the originals never did, so the answer is unknown.
            let asking = file.replacingOccurrences(of: "steps:\n", with: """
                steps:
                  - id: screen
                    connector: kyb
                    operation: business_watchlist
                    with: { business_name: "= data.inquiry.name_first", business_address: "-", ein: "12-3456789" }

                """)
            let unknown = try await api.request(.post, "/v1/workflows/review-minors/backtest", body: asking,
                                                headers: [.contentType: "application/yaml"]).json
            #expect((unknown["unknown"]?.array ?? []).count == 3, "\(unknown)")
            #expect(unknown["unknown"]?.array.first?["step"] == "screen")
        }
        }
    }
}
