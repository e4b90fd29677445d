import AsyncHTTPClient
import CEL
import Foundation
import Testing
@testable import Switchboard

/// Timers through a `switchboard serve` process: a schedule runs about once per tick of
/// `every: 2s` and, stopped for 10 s and started again, makes one catch-up run, not five; a child
/// run started for later (`start_workflow ... after:`) starts after its delay across a restart.
@Suite("Schedules and delayed starts through a live gateway", .timeLimit(.minutes(2)))
struct ScheduleProcessTests {
    @Test("every: 2s runs about once per tick; after 10 s down, one catch-up run")
    func everyTwoSeconds() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/heartbeat.yaml", ScheduleTests.workflow)
        let database = "sqlite:" + directory.file("switchboard.sqlite")
        let made = try await Binary.run(["keys", "create", "--database", database, "--name", "schedules"])
        try #require(made.status == 0, "\(made.stderr)")
        let key = try #require(made.stdout.split(separator: "\n").last.map(String.init))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func ticks(_ api: LiveClient) async throws -> [Date] {
            let runs = try await api.request(.GET, "/v1/runs?workflow=heartbeat&limit=100").body["data"]?.arrayValue ?? []
            return runs.compactMap { $0["trigger"]?["scheduled_at"]?.stringValue.flatMap { Date(rfc3339: $0) } }.sorted()
        }

        let first = try ServerProcess(config: directory.path, database: database)
        try await first.waitUntilListening()
        var api = LiveClient(client: http, base: "http://127.0.0.1:\(first.port)", apiKey: key)
        let started = Date()
        try await Sleep.for(.seconds(7))
        let before = try await ticks(api)
        let window = Date().timeIntervalSince(started)
        #expect(before.count >= Int(window / 2) - 1 && before.count <= Int(window / 2) + 1, "\(before.count) runs in \(window) s")
        #expect(zip(before, before.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 2 }, "one run per tick: \(before)")
        first.kill(signal: SIGTERM)
        #expect(await first.waitForExit() == 0)

        try await Sleep.for(.seconds(10))
        let restartedAt = Date()
        let second = try ServerProcess(config: directory.path, database: database)
        try await second.waitUntilListening()
        api = LiveClient(client: http, base: "http://127.0.0.1:\(second.port)", apiKey: key)
        try await Sleep.for(.milliseconds(800))
        let after = try await ticks(api)
        // Five ticks passed while it was down: one catch-up run for the last of them, then (if a
        // tick came since the restart) the regular one.
        let new = after.filter { $0 > before.last! }
        #expect((1 ... 2).contains(new.count), "one catch-up run, not five: \(new)")
        #expect(new.first.map { restartedAt.timeIntervalSince($0) < 2.5 } == true, "for the last missed tick: \(new), restart \(restartedAt)")
        #expect(zip(new, new.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 2 })
        second.kill(signal: SIGTERM)
        #expect(await second.waitForExit() == 0)
    }

    @Test("start_workflow with after: 3s: the child starts after the delay, though the gateway stopped meanwhile")
    func delayedChildAcrossRestart() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/scoring.yaml", StartWorkflowTests.workflows["scoring"]!)
        try directory.write("workflows/soon.yaml", """
            id: soon
            trigger: { api: {} }
            steps:
              - id: reverify
                start_workflow: scoring
                input: { case: "later" }
                after: 3s
            """)
        let database = "sqlite:" + directory.file("switchboard.sqlite")
        let made = try await Binary.run(["keys", "create", "--database", database, "--name", "timers"])
        try #require(made.status == 0, "\(made.stderr)")
        let key = try #require(made.stdout.split(separator: "\n").last.map(String.init))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }

        let first = try ServerProcess(config: directory.path, database: database)
        try await first.waitUntilListening()
        var api = LiveClient(client: http, base: "http://127.0.0.1:\(first.port)", apiKey: key)
        let started = Date()
        let parent = try #require(try await api.request(.POST, "/v1/workflows/soon/runs", json: [:]).body["id"]?.stringValue)
        let done = try await api.poll(run: parent) { $0["status"] == "completed" }
        let child = try #require(done["steps"]?.arrayValue?.first?["output"]?["run_id"]?.stringValue, "\(done)")
        #expect(try await api.request(.GET, "/v1/runs/\(child)").body["status"] == "waiting")
        first.kill(signal: SIGTERM)
        #expect(await first.waitForExit() == 0)

        try await Sleep.for(.seconds(4))
        let second = try ServerProcess(config: directory.path, database: database)
        try await second.waitUntilListening()
        api = LiveClient(client: http, base: "http://127.0.0.1:\(second.port)", apiKey: key)
        let finished = try await api.poll(run: child, timeout: 10) { $0["status"] == "completed" }
        #expect(finished["decision"] == "approved", "\(finished)")
        let began = try #require((finished["steps"]?.arrayValue?.first?["started_at"]?.stringValue).flatMap { Date(rfc3339: $0) })
        #expect(began.timeIntervalSince(started) >= 3, "not before its delay")
        second.kill(signal: SIGTERM)
        #expect(await second.waitForExit() == 0)
    }
}
