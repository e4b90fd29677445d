import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import Synchronization
import Testing
@testable import Switchboard

/// PostgreSQL stopped for ten seconds under load and started again: ingest answers 503 with
/// `Retry-After` meanwhile, `/ready` says the instance is not ready, the instance recovers without a
/// restart, and every accepted event is delivered. The test runs a PostgreSQL cluster of its own
/// (`scripts/postgres-cluster`), since it stops it; it runs when `SWITCHBOARD_TEST_POSTGRES_URL`
/// is set (`scripts/test` sets it, and installs PostgreSQL).
@Suite("End to end: a PostgreSQL outage under load", .serialized, .timeLimit(.minutes(5)),
       .enabled(if: StoreKind.postgresURL != nil))
struct DatabaseOutageTests {
    @Test("ten seconds without the database: 503 with Retry-After, /ready 503, recovery without a restart, nothing accepted lost")
    func outage() async throws {
        let receiver = TestReceiver(script: [.init(status: 200)])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try directory.writeSinkConnector(to: receiver)
            try directory.write("config/workflows/forward.yaml", """
                id: forward
                trigger: { event: outage.forward }
                steps:
                  - { id: send, connector: sink, operation: request, with: { path: /sink, body: "= data" } }
                """)
            // The postgres user runs the cluster when the tests run as root: it must reach the folder.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: directory.path)
            let cluster = directory.file("cluster"), log = directory.file("cluster.log")
            let port = 56_000 + Int.random(in: 0 ..< 2000)
            try await Script.run("postgres-cluster", ["create", cluster, "\(port)"], log: log)
            do {
                try await exercise(receiver: receiver, directory: directory, cluster: cluster, log: log,
                                   database: "postgres://postgres@127.0.0.1:\(port)/postgres?sslmode=disable")
            } catch {
                try? await Script.run("postgres-cluster", ["remove", cluster], log: log)
                throw error
            }
            try await Script.run("postgres-cluster", ["remove", cluster], log: log)
        }
    }

    /// What the clients saw.
    final class Answers: Sendable {
        struct Seen: Sendable {
            var accepted: Set<String> = []
            var unavailable = 0
            var unavailableWithoutRetryAfter = 0
            var other: [Int: Int] = [:]
        }

        let seen = Mutex(Seen())
        /// Whether the clients go on posting.
        let posting = Mutex(true)
    }

    func exercise(receiver: TestReceiver, directory: TemporaryDirectory, cluster: String, log: String, database: String) async throws {
        let key = try await Binary.run(["keys", "create", "--name", "outage", "--database", database]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try ServerProcess(config: directory.file("config"), database: database)
        try await server.waitUntilListening()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let answers = Answers()
        let started = Date()
        func phase(_ what: String) { print("outage: \(what) after \(String(format: "%.1f", Date().timeIntervalSince(started))) s") }
        do {
            // Four clients post events until told to stop, each waiting a little between events.
            let load = Task {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for client in 0 ..< 4 {
                        group.addTask {
                            var n = 0
                            while answers.posting.withLock({ $0 }) {
                                n += 1
                                let ref = "o-\(client)-\(n)"
                                var request = HTTPClientRequest(url: "http://127.0.0.1:\(server.port)/v1/events")
                                request.method = .POST
                                request.headers.add(name: "Authorization", value: "Bearer \(key)")
                                request.headers.add(name: "Content-Type", value: "application/json")
                                let event: JSON = ["specversion": "1.0", "id": .string(ref), "source": "test",
                                                   "type": "outage.forward", "data": ["ref": .string(ref)]]
                                request.body = .bytes(ByteBuffer(data: event.encoded()))
                                if let response = try? await http.execute(request, timeout: .seconds(30)) {
                                    _ = try? await response.body.collect(upTo: 1 << 16)
                                    let status = Int(response.status.code)
                                    answers.seen.withLock { seen in
                                        switch status {
                                        case 200, 202: seen.accepted.insert(ref)
                                        case 503:
                                            seen.unavailable += 1
                                            if response.headers.first(name: "Retry-After") == nil { seen.unavailableWithoutRetryAfter += 1 }
                                        default: seen.other[status, default: 0] += 1
                                        }
                                    }
                                }
                                try await Sleep.for(.milliseconds(20))
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            // Load before the outage: some events accepted (a loaded machine takes longer).
            let loading = ContinuousClock.now
            while answers.seen.withLock({ $0.accepted.count }) < 20 && ContinuousClock.now - loading < .seconds(30) {
                try await Sleep.for(.milliseconds(100))
            }
            let before = answers.seen.withLock { $0.accepted.count }
            #expect(before >= 20, "events were accepted before the outage (\(before))")

            try await Script.run("postgres-cluster", ["stop", cluster], log: log)
            phase("database stopped")
            let stopped = ContinuousClock.now
            // Within 5 s (and a little for a loaded machine) the instance says it is not ready.
            var notReady: Duration?
            while notReady == nil && ContinuousClock.now - stopped < .seconds(9) {
                if try await status(of: "/ready", port: server.port, http: http) == 503 { notReady = ContinuousClock.now - stopped }
                try await Sleep.for(.milliseconds(200))
            }
            #expect(notReady != nil, "/ready answers 503 while the database is gone")
            phase("/ready 503 after \(notReady.map { "\($0)" } ?? "never")")
            try await Sleep.for(max(.zero, stopped + .seconds(10) - ContinuousClock.now))
            let during = answers.seen.withLock { $0 }
            #expect(during.unavailable > 0, "writes answered 503 while the database was gone")
            #expect(during.unavailableWithoutRetryAfter == 0, "every 503 says when to retry")

            try await Script.run("postgres-cluster", ["start", cluster], log: log)
            phase("database started")
            let restarted = ContinuousClock.now
            var ready = false
            while !ready && ContinuousClock.now - restarted < .seconds(30) {
                ready = try await status(of: "/ready", port: server.port, http: http) == 200
                if !ready { try await Sleep.for(.milliseconds(200)) }
            }
            #expect(ready, "ready again without a restart")
            phase("ready again")
            let recovered = answers.seen.withLock { $0.accepted.count }
            try await Sleep.for(.seconds(3))
            answers.posting.withLock { $0 = false }
            try await load.value
            let seen = answers.seen.withLock { $0 }
            #expect(seen.accepted.count > recovered, "events are accepted again after the outage")
            #expect(seen.other.isEmpty, "only 202, 200 and 503 answers: \(seen.other)")

            let deadline = ContinuousClock.now + .seconds(90)
            var delivered: Set<String> = []
            while ContinuousClock.now < deadline {
                delivered = Set(receiver.received.compactMap { try? JSON.parse($0.body)["ref"]?.stringValue })
                if delivered.isSuperset(of: seen.accepted) { break }
                try await Sleep.for(.milliseconds(200))
            }
            let lost = seen.accepted.subtracting(delivered)
            #expect(lost.isEmpty, "every accepted event was delivered; \(lost.count) of \(seen.accepted.count) were not")
            print("outage: \(seen.accepted.count) accepted, \(seen.unavailable) answered 503, \(receiver.received.count) delivered")
            #expect(server.process.isRunning, "the instance was not restarted")
            server.kill(signal: SIGTERM)
            let exit = await server.waitForExit()
            #expect(exit == 0, "graceful shutdown exits 0, not \(exit.map { "\($0)" } ?? "never"): \(server.log.suffix(4000))")
        } catch {
            answers.posting.withLock { $0 = false }
            server.kill(signal: SIGKILL)
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }

    func status(of path: String, port: Int, http: HTTPClient) async throws -> Int {
        let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        guard let response = try? await http.execute(request, timeout: .seconds(10)) else { return 0 }
        _ = try? await response.body.collect(upTo: 1 << 16)
        return Int(response.status.code)
    }
}
