import AsyncHTTPClient
import CEL
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import Switchboard

/// What a client can send without harm: JSON nested too deep or holding too much is refused, a
/// client that sends its request a byte at a time is disconnected, and meanwhile others are served.
@Suite("Abuse limits", .timeLimit(.minutes(2)))
struct AbuseLimitsTests {
    static func nested(_ depth: Int) -> String {
        String(repeating: #"{"a":"#, count: depth) + "1" + String(repeating: "}", count: depth)
    }

    static func event(data: String) -> String {
        #"{"specversion":"1.0","id":"e-\#(UUID().uuidString)","source":"test","type":"abuse.test","data":\#(data)}"#
    }

    @Test("JSON nested deeper than 64 or holding more than 100,000 values is refused with 400, naming the limit")
    func jsonLimits() async throws {
        let gateway = try await TestGateway()
        try await gateway.test { api in
            let shallow = try await api.request(.post, "/v1/events", body: Self.event(data: Self.nested(20)))
            #expect(shallow.status == .accepted)
            let deep = try await api.request(.post, "/v1/events", body: Self.event(data: Self.nested(100)))
            #expect(deep.status == .badRequest)
            #expect(deep.body.contains("nested more than 64 levels"), "\(deep.body)")
            let many = "[" + Array(repeating: "0", count: 100_001).joined(separator: ",") + "]"
            let wide = try await api.request(.post, "/v1/events", body: Self.event(data: many))
            #expect(wide.status == .badRequest)
            #expect(wide.body.contains("more values than allowed"), "\(wide.body)")
        }
    }

    @Test("a client that sends its head or its body a byte at a time is disconnected; a well-behaved one is served meanwhile")
    func slowClients() async throws {
        let gateway = try await TestGateway()
        var settings = ServerSettings(host: "127.0.0.1", port: 0)
        settings.headTimeout = .seconds(2)
        settings.bodyTimeout = .seconds(2)
        var logger = Logger(label: "abuse")
        logger.logLevel = .critical
        let bound = AsyncStream<Int>.makeStream()
        let app = try buildApplication(gateway: gateway.gateway, settings: settings, logger: logger) { port in bound.continuation.yield(port) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            var ports = bound.stream.makeAsyncIterator()
            let port = try #require(await ports.next())

            let head = Array("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 40)
            async let slowHead = offThePool { try SlowClient.send(head, port: port, every: 0.25, limit: 12) }
            let body = Array("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n".utf8)
            async let slowBody = offThePool { try SlowClient.send(body, port: port, every: 0.25, limit: 12, headAtOnce: body.count) }

            // Meanwhile a client that behaves is served.
            try await Sleep.for(.milliseconds(500))
            let fine = try await offThePool { try SlowClient.send(Array("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".utf8),
                                                                   port: port, every: 0, limit: 5, readAnswer: true) }
            #expect(fine.answer.hasPrefix("HTTP/1.1 200"), "\(fine.answer)")

            let (headResult, bodyResult) = try await (slowHead, slowBody)
            #expect(headResult.closedAfter != nil && headResult.closedAfter! < 6, "a slow head is cut off: \(headResult)")
            #expect(bodyResult.closedAfter != nil && bodyResult.closedAfter! < 6, "a slow body is cut off: \(bodyResult)")
            group.cancelAll()
        }
    }
}

extension AbuseLimitsTests {
    @Test("one key sending far over --rate-limit gets 429 with Retry-After for the excess; one address too, without a key")
    func requestRate() async throws {
        let gateway = try await TestGateway()
        var settings = ServerSettings(host: "127.0.0.1", port: 0)
        // A rate far below what even a loaded machine serves, so that the excess is there to refuse.
        settings.rateLimit = RateLimitSpec("2/s")
        var logger = Logger(label: "abuse")
        logger.logLevel = .critical
        let bound = AsyncStream<Int>.makeStream()
        let app = try buildApplication(gateway: gateway.gateway, settings: settings, logger: logger) { port in bound.continuation.yield(port) }
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { Task { try? await http.shutdown() } }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService() }
            var ports = bound.stream.makeAsyncIterator()
            let port = try #require(await ports.next())
            func burst(_ path: String, key: String?) async throws -> (ok: Int, limited: Int, retryAfter: Bool, seconds: Double) {
                let started = ContinuousClock.now
                // Eight clients, each as fast as its answers come: 200 requests in all.
                let statuses = try await withThrowingTaskGroup(of: [(UInt, Bool)].self) { clients in
                    for _ in 0 ..< 8 {
                        clients.addTask {
                            var answers: [(UInt, Bool)] = []
                            for _ in 0 ..< 25 {
                                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                                if let key { request.headers.add(name: "Authorization", value: "Bearer \(key)") }
                                let response = try await http.execute(request, timeout: .seconds(30))
                                _ = try await response.body.collect(upTo: 1 << 20)
                                answers.append((response.status.code, response.headers.first(name: "Retry-After") != nil))
                            }
                            return answers
                        }
                    }
                    return try await clients.reduce(into: []) { $0 += $1 }
                }
                let seconds = (ContinuousClock.now - started).timeInterval
                return (statuses.filter { $0.0 == 200 }.count, statuses.filter { $0.0 == 429 }.count,
                        statuses.filter { $0.0 == 429 }.allSatisfy(\.1), seconds)
            }
            let keyed = try await burst("/v1/runs", key: gateway.apiKey)
            #expect(keyed.ok + keyed.limited == 200)
            #expect(keyed.limited > 0 && keyed.retryAfter, "the excess is refused with Retry-After: \(keyed)")
            #expect(Double(keyed.ok) <= 2 + 2 * keyed.seconds + 2, "at most the burst and the rate got through: \(keyed)")
            try await Sleep.for(.seconds(2))  // the address's bucket fills again
            let anonymous = try await burst("/health", key: nil)
            #expect(anonymous.limited > 0 && anonymous.retryAfter, "an address without a key is held too: \(anonymous)")
            group.cancelAll()
        }
    }
}

/// A client on a plain socket that sends a request byte by byte.
enum SlowClient {
    struct Result: Sendable, CustomStringConvertible {
        /// Seconds until the server closed the connection; nil if it never did within the limit.
        var closedAfter: Double?
        var answer: String
        var description: String { "closed after \(closedAfter.map { String(format: "%.1f s", $0) } ?? "never"), answer \(answer.prefix(60))" }
    }

    /// Sends `bytes` (the first `headAtOnce` at once, the rest one every `every` seconds), then
    /// waits; stops after `limit` seconds.
    static func send(_ bytes: [UInt8], port: Int, every: Double, limit: Double, headAtOnce: Int = 0,
                     readAnswer: Bool = false) throws -> Result {
        let fd = try LoopbackSocket.connect(port: port)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 0, tv_usec: 100_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let start = Date()
        func closedByServer() -> Bool {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let n = recv(fd, &buffer, buffer.count, 0)
            return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        }
        var index = 0
        if headAtOnce > 0 {
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, headAtOnce, Int32(MSG_NOSIGNAL)) }
            index = headAtOnce
        }
        if every == 0 {
            _ = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, bytes.count, Int32(MSG_NOSIGNAL)) }
            index = bytes.count
        }
        var answer: [UInt8] = []
        while Date().timeIntervalSince(start) < limit {
            if index < bytes.count {
                let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + index, 1, Int32(MSG_NOSIGNAL)) }
                if sent < 0 { return Result(closedAfter: Date().timeIntervalSince(start), answer: "") }
                index += 1
            }
            if readAnswer {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { answer += buffer.prefix(n) }
                if n == 0 { break }
                continue
            }
            let waitUntil = Date().addingTimeInterval(max(every, 0.1))
            while Date() < waitUntil {
                if closedByServer() { return Result(closedAfter: Date().timeIntervalSince(start), answer: "") }
            }
        }
        return Result(closedAfter: nil, answer: String(decoding: answer, as: UTF8.self))
    }
}
