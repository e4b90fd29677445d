import AsyncHTTPClient
import CEL
import Foundation
import Testing
@testable import Switchboard

/// A run keeps the version of its workflow it started on: through a `switchboard serve` process,
/// a run waits for a review, the gateway stops, the workflow's file changes, the gateway starts
/// again; the review finishes the run by its old steps, and a new event runs the new ones.
@Suite("Workflow versions through a live gateway", .timeLimit(.minutes(3)))
struct WorkflowVersionTests {
    static func workflow(path: String) -> String {
        """
        id: vetted
        trigger: { event: case.opened }
        steps:
          - id: review
            wait: review
          - id: path
            action: tag
            with: { tag: \(path) }
          - id: done
            action: approve
        """
    }

    @Test("a run waiting for a review keeps its version across a restart with a changed file; new events run the new version")
    func pinned() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/vetted.yaml", Self.workflow(path: "old-path"))
        let database = "sqlite:" + directory.file("switchboard.sqlite")
        let made = try await Binary.run(["keys", "create", "--database", database, "--name", "versions"])
        try #require(made.status == 0, "\(made.stderr)")
        let key = try #require(made.stdout.split(separator: "\n").last.map(String.init))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        func event(_ id: String) -> JSON { ["specversion": "1.0", "id": .string(id), "source": "/test", "type": "case.opened", "data": [:]] }

        // v1: a run waits for its review.
        let first = try ServerProcess(config: directory.path, database: database)
        try await first.waitUntilListening()
        var api = LiveClient(client: http, base: "http://127.0.0.1:\(first.port)", apiKey: key)
        let started = try await api.request(.POST, "/v1/events", json: event("e-1"))
        let old = try #require(started.body["runs"]?.arrayValue?.first?["id"]?.stringValue, "\(started)")
        let waiting = try await api.poll(run: old) { $0["status"] == "waiting" }
        #expect(waiting["workflow_version"] == "v1")
        first.kill(signal: SIGTERM)
        #expect(await first.waitForExit() == 0)

        // v2 on disk; the gateway starts again.
        try directory.write("workflows/vetted.yaml", Self.workflow(path: "new-path"))
        let second = try ServerProcess(config: directory.path, database: database)
        try await second.waitUntilListening()
        api = LiveClient(client: http, base: "http://127.0.0.1:\(second.port)", apiKey: key)
        let shown = try await api.request(.GET, "/v1/workflows/vetted")
        #expect(shown.body["version"] == "v2")

        let decided = try await api.request(.POST, "/v1/runs/\(old)/review", json: ["decision": "approve"])
        #expect(decided.status == 202, "\(decided.body)")
        let finished = try await api.poll(run: old) { $0["status"] == "completed" }
        #expect(finished["tags"] == ["old-path"], "the old run finished by its own steps: \(finished)")
        #expect(finished["workflow_version"] == "v1")

        let next = try await api.request(.POST, "/v1/events", json: event("e-2"))
        let new = try #require(next.body["runs"]?.arrayValue?.first?["id"]?.stringValue)
        _ = try await api.poll(run: new) { $0["status"] == "waiting" }
        _ = try await api.request(.POST, "/v1/runs/\(new)/review", json: ["decision": "approve"])
        let newer = try await api.poll(run: new) { $0["status"] == "completed" }
        #expect(newer["tags"] == ["new-path"])
        #expect(newer["workflow_version"] == "v2")

        let versions = try await api.request(.GET, "/v1/workflows/vetted/versions").body["versions"]?.arrayValue ?? []
        #expect(versions.map { $0["version"] } == ["v1", "v2"])
        #expect(versions.map { $0["current"] } == [false, true])
        #expect(versions.allSatisfy { ($0["sha256"]?.stringValue?.count ?? 0) == 64 })
        second.kill(signal: SIGTERM)
        #expect(await second.waitForExit() == 0)
    }

    @Test("SIGHUP and `switchboard reload` make a running gateway read its files again; an invalid file changes nothing")
    func hangupAndCommand() async throws {
        let directory = try TemporaryDirectory()
        try directory.write("workflows/vetted.yaml", Self.workflow(path: "first"))
        let database = "sqlite:" + directory.file("switchboard.sqlite")
        let made = try await Binary.run(["keys", "create", "--database", database, "--name", "reloader", "--scopes", "workflows:read,workflows:write"])
        try #require(made.status == 0, "\(made.stderr)")
        let key = try #require(made.stdout.split(separator: "\n").last.map(String.init))
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        let server = try ServerProcess(config: directory.path, database: database)
        try await server.waitUntilListening()
        let api = LiveClient(client: http, base: "http://127.0.0.1:\(server.port)", apiKey: key)
        func version() async throws -> JSON? { try await api.request(.GET, "/v1/workflows/vetted").body["version"] }
        #expect(try await version() == "v1")

        try directory.write("workflows/vetted.yaml", Self.workflow(path: "second"))
        server.kill(signal: SIGHUP)
        var seen: JSON?
        for _ in 0 ..< 100 {
            seen = try await version()
            if seen == "v2" { break }
            try await Sleep.for(.milliseconds(50))
        }
        #expect(seen == "v2", "SIGHUP reloaded the file")

        try directory.write("workflows/vetted.yaml", Self.workflow(path: "third"))
        let environment = ["SWITCHBOARD_API_KEY": key]
        let reloaded = try await Binary.run(["reload", "--url", api.base], environment: environment)
        #expect(reloaded.status == 0, "\(reloaded.stderr)")
        #expect(reloaded.stdout.contains("vetted\tv3"), "\(reloaded.stdout)")

        try directory.write("workflows/vetted.yaml", "id: vetted\ntrigger: { event: case.opened }\nsteps:\n  - { id: a, if: 'data.x ==', then: [] }\n")
        let refused = try await Binary.run(["reload", "--url", api.base], environment: environment)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("vetted.yaml:4:"), "the problem's place: \(refused.stderr)")
        #expect(try await version() == "v3", "nothing changed")
        server.kill(signal: SIGTERM)
        #expect(await server.waitForExit() == 0)
    }
}
