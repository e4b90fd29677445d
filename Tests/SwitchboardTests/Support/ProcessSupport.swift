import Switchboard
import AsyncHTTPClient
import CEL
import Foundation
import NIOCore
import NIOHTTP1
import Synchronization

/// The built `switchboard` binary, next to the test bundle (or `SWITCHBOARD_BINARY`).
enum Binary {
    static let path: String = {
        if let path = ProcessInfo.processInfo.environment["SWITCHBOARD_BINARY"] { return path }
        let testBundle = URL(fileURLWithPath: CommandLine.arguments[0])
        var directory = testBundle.deletingLastPathComponent()
        if directory.lastPathComponent == "debug" || directory.lastPathComponent == "release" {
            return directory.appendingPathComponent("switchboard").path
        }
        // `swift test` may start the bundle by another path; fall back to the standard build folder.
        directory = Repository.root.appendingPathComponent(".build/debug")
        return directory.appendingPathComponent("switchboard").path
    }()

    struct Output {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs the binary to completion (bounded by `timeout`), feeding `input` on standard input.
    ///
    /// The waiting happens on a thread of its own: blocking one of the concurrency pool's threads
    /// (two on this machine) while another test did the same stalled every in-process test, now
    /// and then for good, when the process waited for a test server on that pool.
    static func run(_ arguments: [String], input: String? = nil, environment: [String: String] = [:],
                    directory: String? = nil, timeout: TimeInterval = 60) async throws -> Output
    {
        try await offThePool { try runBlocking(arguments, input: input, environment: environment, directory: directory,
                                                timeout: timeout) }
    }

    private static func runBlocking(_ arguments: [String], input: String?, environment: [String: String],
                                    directory: String?, timeout: TimeInterval) throws -> Output
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
        let out = Pipe(), err = Pipe(), inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        try process.run()
        if let input { inPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inPipe.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(timeout)
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return Output(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }
}

/// A `switchboard serve` process on a loopback port the OS picks.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    private final class OutputBuffer: Sendable {
        let text = Mutex("")
    }

    private let output = OutputBuffer()
    private(set) var port = 0

    init(config: String, database: String, extraEnvironment: [String: String] = [:], arguments extra: [String] = []) throws {
        process.executableURL = URL(fileURLWithPath: Binary.path)
        process.arguments = ["serve", "--config", config, "--database", database, "--port", "0", "--log-level",
                             ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_SERVER_LOG_LEVEL"] ?? "warning"] + extra
        var env = ProcessInfo.processInfo.environment
        // The load tests send thousands of requests a second from one key and one address; a test
        // of the request rate limit sets its own.
        env["SWITCHBOARD_RATE_LIMIT"] = env["SWITCHBOARD_RATE_LIMIT"] ?? "off"
        for (key, value) in extraEnvironment { env[key] = value }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        pipe.fileHandleForReading.readabilityHandler = { [output] handle in
            let data = handle.availableData
            if !data.isEmpty { output.text.withLock { $0 += String(decoding: data, as: UTF8.self) } }
        }
        try process.run()
    }

    var log: String { output.text.withLock { $0 } }

    /// Waits (at most `timeout`) for the "listening" line and reads the port from it.
    func waitUntilListening(timeout: TimeInterval = 30) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let range = log.range(of: #"listening on https?://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(log[range].split(separator: ":").last!)!
                return
            }
            if !process.isRunning { break }
            try await Sleep.for(.milliseconds(20))
        }
        throw ServerError(message: "server did not start: \(log)")
    }

    func kill(signal: Int32) {
        Foundation.kill(process.processIdentifier, signal)
    }

    /// Waits (at most `timeout`) for the process to exit and returns its status.
    func waitForExit(timeout: TimeInterval = 20) async -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { try? await Sleep.for(.milliseconds(20)) }
        if process.isRunning { return nil }
        return process.terminationStatus
    }

    deinit {
        if process.isRunning { Foundation.kill(process.processIdentifier, SIGKILL) }
    }

    struct ServerError: Error, CustomStringConvertible {
        let message: String
        var description: String { message }
    }
}

/// A small HTTP client for the process tests.
struct LiveClient {
    let client: HTTPClient
    let base: String
    let apiKey: String

    func request(_ method: HTTPMethod, _ path: String, json: JSON? = nil) async throws -> (status: Int, body: JSON) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(apiKey)")
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: json.encoded()))
        }
        let response = try await client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (Int(response.status.code), (try? JSON.parse(Data(buffer: body))) ?? .null)
    }

    /// Polls a run (bounded by `timeout`) until the predicate holds; returns the last state seen.
    func poll(run id: String, timeout: TimeInterval = 20, until predicate: (JSON) -> Bool) async throws -> JSON {
        let deadline = Date().addingTimeInterval(timeout)
        var last: JSON = .null
        while Date() < deadline {
            last = try await request(.GET, "/v1/runs/\(id)").body
            if predicate(last) { return last }
            try await Sleep.for(.milliseconds(50))
        }
        return last
    }
}

/// Runs blocking work (waiting for a process) on a dispatch thread instead of the concurrency pool.
func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try work() }) }
    }
}

/// A script of the repository's `scripts/` folder, run to its end.
enum Script {
    /// Runs `scripts/NAME ARGUMENTS...`, its output appended to the file `log` rather than a pipe
    /// (a daemon it starts, such as PostgreSQL's postmaster, may hold a pipe open for good); throws
    /// when it fails or outlives `timeout`.
    static func run(_ name: String, _ arguments: [String], log: String, timeout: TimeInterval = 60) async throws {
        try await offThePool {
            FileManager.default.createFile(atPath: log, contents: nil)
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            defer { try? output.close() }
            output.seekToEndOfFile()
            let process = Process()
            process.executableURL = Repository.root.appendingPathComponent("scripts").appendingPathComponent(name)
            process.arguments = arguments
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning {
                process.terminate()
                throw ScriptFailure(description: "scripts/\(name) \(arguments.joined(separator: " ")) ran past \(Int(timeout)) s")
            }
            guard process.terminationStatus == 0 else {
                let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
                throw ScriptFailure(description: "scripts/\(name) \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text.suffix(2000))")
            }
        }
    }

    struct ScriptFailure: Error, CustomStringConvertible {
        var description: String
    }
}
