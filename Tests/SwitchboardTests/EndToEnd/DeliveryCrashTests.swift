import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import Switchboard
import Testing

/// At-least-once delivery across a SIGKILL of the gateway process.
@Suite("End to end: deliveries survive SIGKILL", .serialized, .timeLimit(.minutes(5)))
struct DeliveryCrashTests {
    @Test("2,000 deliveries in flight to a slow receiver: none lost, duplicates keep their webhook-id")
    func crash() async throws {
        // Slow enough (64 at a time, 1 s each: about 30 s for all) that the kill finds deliveries in flight even when
        // posting is slow on a loaded machine.
        let receiver = TestReceiver(script: [.init(status: 200, delay: .seconds(1))])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try directory.writeSinkConnector(to: receiver, extra: "concurrency: 64")
            try directory.write("config/workflows/forward.yaml", """
                id: forward
                trigger: { api: { input: { ref: { type: string, required: true } } } }
                steps:
                  - id: send
                    connector: sink
                    operation: request
                    with: { path: /sink, body: "= input" }
                """)
            let database = "sqlite:" + directory.file("switchboard.sqlite")
            let key = try await Binary.run(["keys", "create", "--name", "crash", "--database", database]).stdout
                .trimmingCharacters(in: .whitespacesAndNewlines)
            let http = HTTPClient(eventLoopGroupProvider: .singleton)
            do {
                var server = try ServerProcess(config: directory.file("config"), database: database)
                try await server.waitUntilListening()
                let api = LiveClient(client: http, base: "http://127.0.0.1:\(server.port)", apiKey: key)
                let total = 2_000
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0 ..< 32 {
                        group.addTask {
                            for n in stride(from: worker, to: total, by: 32) {
                                let reply = try await api.request(.POST, "/v1/workflows/forward/runs", json: ["ref": .string("r\(n)")])
                                #expect(reply.status == 202)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                await receiver.waitForRequests(200)
                server.kill(signal: SIGKILL)
                _ = await server.waitForExit()
                let beforeRestart = receiver.received.count
                #expect(beforeRestart < total, "the kill happened with deliveries in flight")

                server = try ServerProcess(config: directory.file("config"), database: database)
                try await server.waitUntilListening()
                let deadline = Date().addingTimeInterval(90)
                while Date() < deadline {
                    let refs = Set(receiver.received.compactMap { try? JSON.parse($0.body)["ref"]?.stringValue })
                    if refs.count == total { break }
                    try await Sleep.for(.milliseconds(100))
                }
                var idsByRef: [String: Set<String>] = [:]
                for request in receiver.received {
                    guard let ref = try? JSON.parse(request.body)["ref"]?.stringValue else { continue }
                    idsByRef[ref, default: []].insert(request.headers["webhook-id"] ?? "")
                }
                #expect(idsByRef.count == total, "every delivery reached the receiver")
                #expect(idsByRef.values.allSatisfy { $0.count == 1 }, "a duplicate carries the webhook-id of its first copy")
                server.kill(signal: SIGTERM)
                #expect(await server.waitForExit() == 0)
            } catch {
                try? await http.shutdown()
                throw error
            }
            try await http.shutdown()
        }
    }
}
