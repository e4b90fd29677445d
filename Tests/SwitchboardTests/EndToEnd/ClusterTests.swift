import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import PostgresNIO
import Synchronization
import Testing
@testable import Switchboard

/// Three `switchboard serve` processes sharing one PostgreSQL database, one of them killed with
/// SIGKILL under load and started again. Runs when `SWITCHBOARD_TEST_POSTGRES_URL` is set
/// (`scripts/test` sets it); `SWITCHBOARD_CLUSTER_EVENTS` changes the number of events (20,000).
@Suite("End to end: three instances on PostgreSQL", .serialized, .timeLimit(.minutes(10)),
       .enabled(if: StoreKind.postgresURL != nil))
struct ClusterTests {
    @Test("events posted across three instances, one killed mid-load and started again: none lost, duplicates keep their webhook-id, every run's step ran once")
    func cluster() async throws {
        let total = Int(ProcessInfo.processInfo.environment["SWITCHBOARD_CLUSTER_EVENTS"] ?? "") ?? 20_000
        let receiver = TestReceiver(script: [.init(status: 200)])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try directory.writeSinkConnector(to: receiver)
            try directory.write("config/workflows/forward.yaml", """
                id: forward
                trigger: { event: cluster.forward }
                steps:
                  - id: send
                    connector: sink
                    operation: request
                    with: { path: /sink, body: "= data" }
                """)
            let (database, server, name) = try await Self.database()
            let key = try await Binary.run(["keys", "create", "--name", "cluster", "--database", database]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(key.hasPrefix("sk_"))
            // A killed instance refuses connections: fail those requests at once instead of retrying to connect.
            var client = HTTPClient.Configuration()
            client.connectionPool.retryConnectionEstablishment = false
            client.timeout = .init(connect: .seconds(2), read: .seconds(60))
            let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: client)
            var servers: [ServerProcess] = []
            do {
                for node in 0 ..< 3 { servers.append(try await Self.start(node, directory: directory, database: database)) }
                let accepted = Accepted()
                let started = Date()
                func phase(_ what: String) { print("cluster: \(what) after \(Int(Date().timeIntervalSince(started))) s, \(receiver.received.count) received") }

                // First half across the three; the second instance is killed once deliveries flow.
                let victim = servers[1]
                let killer = Task {
                    await receiver.waitForRequests(total / 8, timeout: .seconds(120))
                    victim.kill(signal: SIGKILL)
                }
                try await Self.post(range: 0 ..< total / 2, to: servers.map(\.port), key: key, http: http, into: accepted)
                phase("first half posted")
                await killer.value
                phase("killed")
                _ = await servers[1].waitForExit()
                // The second half, with the killed instance started again under the same id.
                servers[1] = try await Self.start(1, directory: directory, database: database)
                try await Self.post(range: total / 2 ..< total, to: servers.map(\.port), key: key, http: http, into: accepted)
                phase("second half posted")

                let expected = accepted.refs
                #expect(expected.count > total / 2, "most events were accepted (\(expected.count) of \(total))")
                let deadline = Date().addingTimeInterval(240)
                while Date() < deadline {
                    if Set(receiver.received.compactMap { try? JSON.parse($0.body)["ref"]?.stringValue }).isSuperset(of: expected) { break }
                    try await Sleep.for(.milliseconds(200))
                }
                phase("delivered")
                var idsByRef: [String: Set<String>] = [:]
                for request in receiver.received {
                    guard let ref = try? JSON.parse(request.body)["ref"]?.stringValue else { continue }
                    idsByRef[ref, default: []].insert(request.headers["webhook-id"] ?? "")
                }
                let lost = expected.subtracting(idsByRef.keys)
                #expect(lost.isEmpty, "every accepted event was delivered; \(lost.count) were not, e.g. \(lost.prefix(3))")
                #expect(idsByRef.values.allSatisfy { $0.count == 1 }, "a duplicate carries the webhook-id of its first copy")
                let duplicates = receiver.received.count - idsByRef.count
                print("cluster: \(total) events posted, \(expected.count) accepted, \(receiver.received.count) requests received, \(duplicates) duplicates")

                // The runs' histories: every run completed, with its one step and its one delivery.
                var settings = server
                settings.database = name
                let counts = try await StoreKind.adminRows(settings, """
                    SELECT (SELECT COUNT(*) FROM runs), (SELECT COUNT(*) FROM runs WHERE status = 'completed'),
                      (SELECT COUNT(*) FROM steps), (SELECT COUNT(*) FROM deliveries WHERE status = 'succeeded'),
                      (SELECT COUNT(*) FROM deliveries)
                    """).first?.decode((Int64, Int64, Int64, Int64, Int64).self)
                let (runs, completed, steps, succeeded, deliveries) = try #require(counts)
                #expect(runs >= Int64(expected.count) && completed == runs, "\(completed) of \(runs) runs completed")
                #expect(steps == runs && deliveries == runs, "one step and one delivery per run: \(steps) steps, \(deliveries) deliveries")
                #expect(succeeded == deliveries)

                await Self.stopGracefully(servers)
            } catch {
                for server in servers { server.kill(signal: SIGKILL) }
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
            try await StoreKind.admin(server, logger: .init(label: "test"), "DROP DATABASE \(name) WITH (FORCE)")
        }
    }

    @Test("a connector's rate_limit and concurrency hold for the three instances together")
    func sharedLimits() async throws {
        let total = 300, rate = 30, concurrency = 3
        // 50 ms an answer: three in flight could go 60 a second, above the rate.
        let receiver = TestReceiver(script: [.init(status: 200, delay: .milliseconds(50))])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try directory.writeSinkConnector(to: receiver, extra: "rate_limit: \(rate)/s\nconcurrency: \(concurrency)")
            try directory.write("config/workflows/forward.yaml", """
                id: forward
                trigger: { event: cluster.forward }
                steps:
                  - { id: send, connector: sink, operation: request, with: { path: /sink, body: "= data" } }
                """)
            let (database, server, name) = try await Self.database()
            let key = try await Binary.run(["keys", "create", "--name", "cluster", "--database", database]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            var servers: [ServerProcess] = []
            do {
                for node in 0 ..< 3 { servers.append(try await Self.start(node, directory: directory, database: database)) }
                let accepted = Accepted()
                try await Self.post(range: 0 ..< total, to: servers.map(\.port), key: key, http: http, into: accepted)
                #expect(accepted.refs.count == total)
                await receiver.waitForRequests(total, timeout: .seconds(120))
                let times = receiver.received.map(\.at).sorted()
                #expect(times.count == total)

                // A token bucket of `rate` a second, bursts of one second's worth: in any second at
                // most 2 × rate requests (a little more for the network's jitter); each instance
                // counting alone would have let three times the rate through.
                var busiest = 0
                for (index, start) in times.enumerated() {
                    busiest = max(busiest, times[index...].prefix { $0 - start < .seconds(1) }.count)
                }
                let span = times.last! - times.first!
                print("cluster limits: \(total) requests in \(span), at most \(busiest) in one second, \(receiver.mostInFlight) at once")
                #expect(busiest <= 2 * rate + 5, "at most \(2 * rate) requests in any second; saw \(busiest)")
                let least = Double(total - rate) / Double(rate) * 0.9
                #expect(span.timeInterval >= least, "\(total) requests at \(rate)/s take at least \(least) s; took \(span)")
                #expect(receiver.mostInFlight <= concurrency, "at most \(concurrency) requests at once; saw \(receiver.mostInFlight)")

                await Self.stopGracefully(servers)
            } catch {
                for server in servers { server.kill(signal: SIGKILL) }
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
            try await StoreKind.admin(server, logger: .init(label: "test"), "DROP DATABASE \(name) WITH (FORCE)")
        }
    }

    /// Stops each instance with SIGTERM and expects a graceful exit.
    static func stopGracefully(_ servers: [ServerProcess]) async {
        for server in servers {
            server.kill(signal: SIGTERM)
            #expect(await server.waitForExit() == 0, "graceful shutdown exits 0: \(server.log.suffix(2000))")
        }
    }

    /// Refs of the events an instance answered 202 (or 200, a duplicate) for.
    final class Accepted: Sendable {
        private let seen = Mutex<Set<String>>([])
        func add(_ ref: String) { seen.withLock { _ = $0.insert(ref) } }
        var refs: Set<String> { seen.withLock { $0 } }
    }

    /// A new database of its own on the test server: its URL, the server, and its name.
    static func database() async throws -> (url: String, server: PostgresSettings, name: String) {
        let url = try #require(StoreKind.postgresURL)
        let server = try PostgresSettings(url: url)
        let name = "switchboard_cluster_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try await StoreKind.admin(server, logger: .init(label: "test"), "CREATE DATABASE \(name)")
        return ("postgres://\(server.username)@\(server.host):\(server.port)/\(name)?sslmode=disable", server, name)
    }

    static func start(_ node: Int, directory: TemporaryDirectory, database: String) async throws -> ServerProcess {
        let server = try ServerProcess(config: directory.file("config"), database: database,
                                       extraEnvironment: ["SWITCHBOARD_INSTANCE_ID": "node-\(node)"])
        try await server.waitUntilListening()
        return server
    }

    /// Posts the events of `range` round-robin to the instances, 24 at a time; a refused
    /// connection (a killed instance) is not an accepted event.
    static func post(range: Range<Int>, to ports: [Int], key: String, http: HTTPClient, into accepted: Accepted) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0 ..< 24 {
                group.addTask {
                    for n in stride(from: range.lowerBound + worker, to: range.upperBound, by: 24) {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(ports[n % ports.count])/v1/events")
                        request.method = .POST
                        request.headers.add(name: "Authorization", value: "Bearer \(key)")
                        request.headers.add(name: "Content-Type", value: "application/json")
                        let event: JSON = ["specversion": "1.0", "id": .string("c-\(n)"), "source": "test", "type": "cluster.forward",
                                           "data": ["ref": .string("c-\(n)")]]
                        request.body = .bytes(ByteBuffer(data: event.encoded()))
                        guard let response = try? await http.execute(request, timeout: .seconds(60)) else { continue }
                        _ = try? await response.body.collect(upTo: 1 << 16)
                        if response.status.code == 202 || response.status.code == 200 { accepted.add("c-\(n)") }
                    }
                }
            }
            try await group.waitForAll()
        }
    }
}
