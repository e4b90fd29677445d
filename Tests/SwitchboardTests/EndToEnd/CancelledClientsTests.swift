import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import NIOHTTP1
import Switchboard
import Testing

/// Clients that go away mid-request must not change the answers of others, and an error answer
/// must mean that nothing was committed.
@Suite("End to end: cancelled clients", .serialized, .timeLimit(.minutes(3)))
struct CancelledClientsTests {
    @Test("an event answered with an error was not committed; one answered 202 was")
    func answersMatchTheStore() async throws {
        let directory = try TemporaryDirectory()
        try directory.copyExamples(["workflows/decline-blocked-ip.yaml", "workflows/review-minors.yaml",
                                    "connectors/slack-reviews.yaml"], into: "config")
        let database = "sqlite:" + directory.file("switchboard.sqlite")
        let key = try await Binary.run(["keys", "create", "--name", "c", "--database", database]).stdout
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let server = try ServerProcess(config: directory.file("config"), database: database)
        try await server.waitUntilListening()
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let base = "http://127.0.0.1:\(server.port)"
        func post(_ n: Int) async throws -> Int {
            var request = HTTPClientRequest(url: base + "/v1/events")
            request.method = .POST
            request.headers.add(name: "Authorization", value: "Bearer \(key)")
            request.headers.add(name: "Content-Type", value: "application/json")
            let event: JSON = ["specversion": "1.0", "id": .string("c-\(n)"), "source": "test", "type": "inquiry.completed",
                               "data": ["inquiry": ["ip_address": "192.0.2.1", "birthdate": "1990-01-01"]]]
            request.body = .bytes(ByteBuffer(data: event.encoded()))
            // Generous: every request that is not cancelled must get its answer, on a loaded machine too.
            let response = try await http.execute(request, timeout: .seconds(60))
            _ = try await response.body.collect(upTo: 1 << 16)
            return Int(response.status.code)
        }
        // 1,200 requests; a third of them are cancelled a moment after they start.
        let answers = await withTaskGroup(of: (Int, Int?).self) { group in
            for n in 0 ..< 1_200 {
                group.addTask {
                    if n % 3 == 0 {
                        let task = Task { try await post(n) }
                        try? await Sleep.for(.microseconds(Int64(n % 7) * 300))
                        task.cancel()
                        return (n, try? await task.value)
                    }
                    return (n, try? await post(n))
                }
            }
            var answers: [Int: Int?] = [:]
            for await (n, status) in group { answers[n] = status }
            return answers
        }
        var checked = 0
        for (n, status) in answers.sorted(by: { $0.key < $1.key }) {
            guard let status else { continue }  // no answer: either outcome is allowed
            let again = try await post(n)
            if status == 202 || status == 200 {
                #expect(again == 200, "event c-\(n) was answered \(status) but is not in the store")
            } else {
                #expect(again == 202, "event c-\(n) was answered \(status) but was committed")
            }
            checked += 1
        }
        #expect(checked >= 800)
        #expect(answers.values.compactMap { $0 }.allSatisfy { $0 == 202 }, "nobody else's request failed")
        try await http.shutdown()
        server.kill(signal: SIGTERM)
        #expect(await server.waitForExit() == 0)
    }
}
