import AsyncHTTPClient
import CEL
import Foundation
import Testing

/// `switchboard serve` as a real process on a loopback port, killed and restarted.
@Suite("End to end: serve as a process", .serialized, .timeLimit(.minutes(3)))
struct ServerProcessTests {
    static let slowWorkflow = """
        id: slow
        description: A run that is mid-flight for thirty seconds.
        trigger: { event: test.slow }
        steps:
          - id: before
            action: tag
            with: { tag: before }
          - id: pause
            wait: 30s
          - id: after
            action: approve
        """

    @Test("examples 1 and 2 decide; runs mid-flight survive SIGKILL; SIGTERM exits 0")
    func crashAndResume() async throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples(["workflows/decline-blocked-ip.yaml", "workflows/review-minors.yaml",
                                    "connectors/slack-reviews.yaml"], into: "config")
        try directory.write("config/workflows/slow.yaml", Self.slowWorkflow)
        let database = "sqlite:" + directory.file("switchboard.sqlite")

        let key = try await Binary.run(["keys", "create", "--name", "e2e", "--database", database])
        #expect(key.status == 0, "\(key.stderr)")
        let apiKey = key.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(apiKey.hasPrefix("sk_") && !apiKey.contains("\n"))
        let list = try await Binary.run(["lists", "add", "blocked-ips", "203.0.113.7", "198.51.100.0/24", "2001:db8:bad::/48",
                                   "--kind", "ip", "--database", database])
        #expect(list.status == 0, "\(list.stderr)")

        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            var server = try ServerProcess(config: directory.file("config"), database: database)
            try await server.waitUntilListening()
            var api = LiveClient(client: http, base: "http://127.0.0.1:\(server.port)", apiKey: apiKey)

            // Examples 1 and 2: each fixture's decisions.
            let expected: [String: (String?, String?)] = [
                "blocked-ip-exact": ("declined", nil), "blocked-ip-cidr": ("declined", nil), "blocked-ipv6": ("declined", nil),
                "adult": (nil, nil), "minor": (nil, "needs_review"), "missing-birthdate": (nil, "needs_review"),
                "malformed-birthdate": (nil, "needs_review"),
            ]
            for (fixture, decisions) in expected {
                let reply = try await api.request(.POST, "/v1/events", json: try Repository.fixture("events/inquiry-\(fixture).json"))
                #expect(reply.status == 202)
                for run in reply.body["runs"]?.array ?? [] {
                    let state = try await api.poll(run: run["id"]!.stringValue!) { ["completed", "waiting", "failed"].contains($0["status"]?.stringValue ?? "") }
                    let want = run["workflow"] == "decline-blocked-ip" ? decisions.0 : decisions.1
                    #expect(state["decision"]?.stringValue == want, "\(fixture) \(run["workflow"]!)")
                }
            }

            // Runs mid-flight: each waits thirty seconds, time enough to see them all waiting while the
            // rest of the suite (other serve processes among them) loads the machine.
            var slowRuns: [String] = []
            for n in 0 ..< 20 {
                let event: JSON = ["specversion": "1.0", "id": .string("slow-\(n)"), "source": "test", "type": "test.slow", "data": [:]]
                let reply = try await api.request(.POST, "/v1/events", json: event)
                slowRuns.append(reply.body["runs"]!.array[0]["id"]!.stringValue!)
            }
            var beforeStarted: [String: JSON] = [:]
            for id in slowRuns {
                let state = try await api.poll(run: id) { $0["status"] == "waiting" }
                #expect(state["status"] == "waiting")
                beforeStarted[id] = state["steps"]?.array.first { $0["id"] == "before" }?["started_at"]
            }
            server.kill(signal: SIGKILL)
            _ = await server.waitForExit()

            server = try ServerProcess(config: directory.file("config"), database: database)
            try await server.waitUntilListening()
            api = LiveClient(client: http, base: "http://127.0.0.1:\(server.port)", apiKey: apiKey)
            for id in slowRuns {
                let state = try await api.poll(run: id, timeout: 60) { $0["status"] == "completed" }
                #expect(state["status"] == "completed")
                #expect(state["decision"] == "approved")
                #expect(state["tags"]?.stringList == ["before"], "the tag step ran once")
                let steps = state["steps"]?.array ?? []
                #expect(steps.map { $0["id"]!.stringValue! } == ["before", "pause", "after"])
                #expect(steps.first?["started_at"] == beforeStarted[id], "the finished step was not run again")
            }

            server.kill(signal: SIGTERM)
            #expect(await server.waitForExit() == 0, "graceful shutdown exits 0: \(server.log)")
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }
}
