import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import Switchboard

/// DESIGN's abuse limits against a `switchboard serve` process with its default limits: a 100 MiB
/// body, 10,000 headers, JSON nested 100,000 deep and 5,000 requests in a rush from one key are
/// refused without harm, while a well-behaved client from another address is served throughout,
/// and the process stays under 200 MB.
@Suite("Abuse against a live gateway", .timeLimit(.minutes(3)))
struct AbuseRunTests {
    @Test("oversized bodies, header floods, deep JSON and a request flood are refused; a polite client is served; memory stays under 200 MB")
    func abuse() async throws {
        let directory = try TemporaryDirectory()
        let database = "sqlite:" + directory.file("switchboard.sqlite")
        let flooder = try await Self.key(database, name: "flooder"), polite = try await Self.key(database, name: "polite")
        // A request rate limit (per key and per address) that a flood from a debug build on a busy
        // machine still exceeds many times over; the polite client stays well under it.
        let rate = 20
        let server = try ServerProcess(config: Repository.root.path, database: database,
                                       extraEnvironment: ["SWITCHBOARD_RATE_LIMIT": "\(rate)/s"])
        try await server.waitUntilListening()
        let port = server.port

        // A well-behaved client from another loopback address: one request every 100 ms.
        let served = PoliteLog()
        let politeClient = Task {
            let deadline = Date().addingTimeInterval(120)
            while !Task.isCancelled, Date() < deadline {
                let started = Date()
                let answer = try? await offThePool {
                    try RawHTTP.exchange(Array("GET /v1/runs?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(polite)\r\nConnection: close\r\n\r\n".utf8),
                                         port: port, from: "127.0.0.2", timeout: 10)
                }
                served.add(status: answer?.status ?? 0, seconds: Date().timeIntervalSince(started))
                try? await Sleep.for(.milliseconds(100))
            }
        }

        // 100 MiB announced and sent: 413, and the connection closed long before the end.
        let bigHead = "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(flooder)\r\nContent-Type: application/json\r\nContent-Length: \(100 << 20)\r\n\r\n"
        let big = try await offThePool { try RawHTTP.exchange(Array(bigHead.utf8), port: port, streaming: 100 << 20, timeout: 30) }
        #expect(big.status == 413 || big.status == nil, "a 100 MiB body: \(big)")
        #expect(big.bodyBytesSent < 100 << 20, "the gateway stopped reading: \(big.bodyBytesSent) bytes sent")

        // 10,000 headers: refused (431/400) or the connection closed; never served.
        var flood = "GET /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(flooder)\r\n"
        for index in 0 ..< 10_000 { flood += "X-Flood-\(index): \(index)\r\n" }
        let floodBytes = Array((flood + "\r\n").utf8)
        let headers = try await offThePool { try RawHTTP.exchange(floodBytes, port: port, timeout: 30) }
        #expect(headers.status.map { $0 >= 400 } ?? true, "10,000 headers: \(headers)")

        // JSON nested 100,000 deep (about 600 kB, under the body limit): 400 naming the depth.
        let deep = AbuseLimitsTests.event(data: AbuseLimitsTests.nested(100_000))
        let deepAnswer = try await offThePool {
            try RawHTTP.exchange(Array("POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(flooder)\r\nContent-Type: application/json\r\nContent-Length: \(deep.utf8.count)\r\nConnection: close\r\n\r\n\(deep)".utf8),
                                 port: port, timeout: 30)
        }
        #expect(deepAnswer.status == 400, "JSON nested 100,000 deep: \(deepAnswer)")
        #expect(deepAnswer.body.contains("64"), "the answer names the depth limit: \(deepAnswer.body.prefix(200))")

        // 5,000 requests from one key, 32 at a time: at most the bucket's worth served, the rest 429.
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let started = ContinuousClock.now
        let counts = try await withThrowingTaskGroup(of: [Int: Int].self) { group in
            for _ in 0 ..< 32 {
                group.addTask {
                    var counts: [Int: Int] = [:]
                    for _ in 0 ..< 5_000 / 32 + 1 {
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/v1/runs?limit=1")
                        request.headers.add(name: "Authorization", value: "Bearer \(flooder)")
                        let response = try await http.execute(request, timeout: .seconds(30))
                        _ = try await response.body.collect(upTo: 1 << 20)
                        let status = Int(response.status.code)
                        counts[status, default: 0] += 1
                        if status == 429 { #expect(response.headers.first(name: "Retry-After") != nil) }
                    }
                    return counts
                }
            }
            return try await group.reduce(into: [:]) { total, counts in total.merge(counts, uniquingKeysWith: +) }
        }
        let seconds = (ContinuousClock.now - started).timeInterval
        try await http.shutdown()
        let ok = counts[200, default: 0], limited = counts[429, default: 0]
        #expect(ok + limited == counts.values.reduce(0, +), "only 200 and 429: \(counts)")
        #expect(limited > 0, "the flood was limited: \(counts) in \(seconds) s")
        #expect(Double(ok) <= Double(rate) * (1 + seconds) + 20, "at most the burst and the rate got through: \(ok) in \(seconds) s")
        #expect(limited > counts.values.reduce(0, +) / 2, "most of the flood was refused: \(counts)")

        politeClient.cancel()
        _ = await politeClient.result
        let answered = served.all
        let slowest = answered.map(\.seconds).max() ?? 0
        #expect(answered.count >= 5, "the polite client made its requests: \(answered.count)")
        #expect(answered.allSatisfy { $0.status == 200 }, "the polite client was always served: \(answered.map(\.status))")
        #expect(slowest < 2, "and promptly: slowest \(slowest) s")

        let peak = try #require(Self.peakResidentMegabytes(server.process.processIdentifier))
        #expect(peak < 200, "peak resident memory \(peak) MB")
        print("abuse: 100 MiB body \(big); 10,000 headers \(headers.status.map(String.init) ?? "closed"); 5,000 requests in \(String(format: "%.1f", seconds)) s: \(ok) served, \(limited) refused with 429; polite client \(answered.count) requests, slowest \(String(format: "%.3f", slowest)) s; peak RSS \(peak) MB")
        #expect(server.process.isRunning, "the gateway is still running: \(server.log.suffix(2000))")
        server.kill(signal: SIGTERM)
        #expect(await server.waitForExit() == 0)
    }

    static func key(_ database: String, name: String) async throws -> String {
        let made = try await Binary.run(["keys", "create", "--database", database, "--name", name])
        try #require(made.status == 0, "\(made.stderr)")
        return try #require(made.stdout.split(separator: "\n").last.map(String.init))
    }

    /// The process's peak resident set (VmHWM), in MB.
    static func peakResidentMegabytes(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = line.split(separator: " ").compactMap({ Int($0) }).first
        else { return nil }
        return kilobytes / 1024
    }

    final class PoliteLog: Sendable {
        struct Entry: Sendable {
            var status: Int
            var seconds: Double
        }

        private let entries = Mutex<[Entry]>([])
        func add(status: Int, seconds: Double) { entries.withLock { $0.append(Entry(status: status, seconds: seconds)) } }
        var all: [Entry] { entries.withLock { $0 } }
    }
}

/// One HTTP/1.1 exchange on a plain blocking socket, for requests no HTTP client would send.
enum RawHTTP {
    struct Answer: Sendable, CustomStringConvertible {
        /// The status line's code; nil when the server closed the connection without answering.
        var status: Int?
        var body: String
        /// How much of a streamed body went out before the server stopped taking it.
        var bodyBytesSent = 0
        var description: String { "status \(status.map(String.init) ?? "none (closed)"), \(bodyBytesSent) body bytes sent, \(body.prefix(120))" }
    }

    /// Sends `head`, then `streaming` bytes of body in 64 KiB pieces (stopping when the server
    /// closes or answers), and reads the answer until the server closes or `timeout` passes.
    static func exchange(_ head: [UInt8], port: Int, from source: String = "127.0.0.1", streaming: Int = 0,
                         timeout: Double) throws -> Answer {
        let fd = try LoopbackSocket.connect(port: port, from: source)
        defer { close(fd) }
        var wait = timeval(tv_sec: 0, tv_usec: 200_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        let deadline = Date().addingTimeInterval(timeout)
        var sent = 0
        while sent < head.count, Date() < deadline {
            let n = head.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, head.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EAGAIN || errno == EWOULDBLOCK { continue } else { break } }
            sent += n
        }
        var answer: [UInt8] = []
        var bodySent = 0
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 64 << 10)
        func readSome() -> Bool {  // false once the server closed
            var buffer = [UInt8](repeating: 0, count: 64 << 10)
            let n = recv(fd, &buffer, buffer.count, 0)
            if n > 0 { answer += buffer.prefix(n) }
            return !(n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
        }
        var open = true
        while bodySent < streaming, Date() < deadline, answer.isEmpty {
            let n = piece.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, min(piece.count, streaming - bodySent), Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            if n > 0 { bodySent += n; continue }
            if n < 0, errno != EAGAIN, errno != EWOULDBLOCK { open = false; break }
            open = readSome()
            if !open { break }
        }
        func complete() -> Bool {  // a whole answer: its head, and as much body as Content-Length says
            let text = String(decoding: answer, as: UTF8.self)
            guard let end = text.range(of: "\r\n\r\n") else { return false }
            let length = text[..<end.lowerBound].split(separator: "\r\n")
                .first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
            return text[end.upperBound...].utf8.count >= length
        }
        while open, Date() < deadline, !complete() { open = readSome() }
        let text = String(decoding: answer, as: UTF8.self)
        let status = text.hasPrefix("HTTP/1.1 ") ? Int(text.dropFirst(9).prefix(3)) : nil
        let body = text.range(of: "\r\n\r\n").map { String(text[$0.upperBound...]) } ?? ""
        return Answer(status: status, body: body, bodyBytesSent: bodySent)
    }
}
