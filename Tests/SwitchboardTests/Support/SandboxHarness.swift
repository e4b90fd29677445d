import AsyncHTTPClient
import CEL
import Foundation
import Synchronization
import Hummingbird
import Logging
#if canImport(Glibc)
import Glibc
#endif
@testable import Switchboard

/// The real gateway and the real sandbox, each on its own loopback port, in this process: the
/// gateway's connectors (the shipped `connectors/`) point at the sandbox, the sandbox's Slack
/// clicks and vendor callbacks go to the gateway, all over real HTTP with real signatures.
struct SandboxHarness: Sendable {
    let gateway: Gateway
    let store: SQLiteStore
    let sandbox: Sandbox
    let api: LiveClient
    let gatewayURL: String
    let sandboxURL: String

    /// Runs `body` with both servers up; stops them afterwards.
    static func run<T: Sendable>(callbackDelay: Duration = .milliseconds(50), environment extra: [String: String] = [:],
                                 _ body: @escaping @Sendable (SandboxHarness) async throws -> T) async throws -> T
    {
        let directory = try TemporaryDirectory()
        let gatewayPort = try freePort(), sandboxPort = try freePort()
        var settings = SandboxSettings()
        settings.port = sandboxPort
        settings.gatewayURL = "http://127.0.0.1:\(gatewayPort)"
        settings.callbackDelay = callbackDelay
        settings.personaFixtures = Repository.root.appendingPathComponent("fixtures/sources/persona").path
        var logger = Logger(label: "e2e")
        // Cancelling the servers at the end logs errors that say nothing about the test.
        logger.logLevel = .critical
        let sandbox = Sandbox(settings: settings, logger: logger)

        let environment = ProcessInfo.processInfo.environment.merging([
            "SLACK_WEBHOOK_URL": "\(settings.baseURL)/slack/webhook",
            "KYB_BASE_URL": "\(settings.baseURL)/kyb",
            "SLACK_API_BASE_URL": "\(settings.baseURL)/slack/api",
        ].merging(extra) { _, new in new }) { _, new in new }
        let context = ConnectorBuildContext(publicURL: settings.gatewayURL, secretKey: .ephemeral())
        let (configuration, _) = try Configuration.loadValid(
            directory: Repository.root.path, environment: EnvironmentInterpolator(environment: environment), context: context)
        let store = try SQLiteStore(path: directory.file("switchboard.sqlite"))
        try await store.migrate()
        let gateway = Gateway(store: store, configuration: configuration, pollInterval: .milliseconds(20), logger: logger)
        try await gateway.recordWorkflowVersions()
        let key = APIKeys.generate()
        try await store.createAPIKey(APIKeyRecord(name: "e2e", hash: APIKeys.hash(key), scopes: APIKeys.allScopes, createdAt: Date()))

        let started = AsyncStream<Void>.makeStream()
        let gatewayApp = try buildApplication(gateway: gateway, settings: ServerSettings(host: "127.0.0.1", port: gatewayPort),
                                          logger: logger) { _ in started.continuation.yield() }
        let sandboxApp = sandbox.buildApplication { _ in started.continuation.yield() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = directory }
        do {
            let result = try await withThrowingTaskGroup(of: T?.self) { group in
                // A server that stops before it listens (its port taken) ends the wait for both
                // start signals, and its error is thrown instead of waiting for ever.
                group.addTask {
                    do { try await gatewayApp.runService() } catch { started.continuation.finish(); throw error }
                    return nil
                }
                group.addTask {
                    do { try await sandboxApp.runService() } catch { started.continuation.finish(); throw error }
                    return nil
                }
                var iterator = started.stream.makeAsyncIterator()
                guard await iterator.next() != nil, await iterator.next() != nil else {
                    while try await group.next() != nil {}
                    throw CancellationError()
                }
                let harness = SandboxHarness(gateway: gateway, store: store, sandbox: sandbox,
                                             api: LiveClient(client: client, base: settings.gatewayURL, apiKey: key),
                                             gatewayURL: settings.gatewayURL, sandboxURL: settings.baseURL)
                group.addTask { try await body(harness) }
                while let result = try await group.next() {
                    if let value = result {
                        group.cancelAll()
                        return value
                    }
                }
                throw CancellationError()
            }
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    /// The Slack stand-in's messages.
    func slackMessages() async throws -> [JSON] {
        var request = HTTPClientRequest(url: sandboxURL + "/slack/messages")
        request.method = .GET
        let response = try await api.client.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (try JSON.parse(Data(buffer: body)))["data"]?.arrayValue ?? []
    }

    /// Waits (bounded) until the stand-in holds a message that satisfies `predicate`.
    func waitForSlackMessage(timeout: TimeInterval = 10, _ predicate: (JSON) -> Bool) async throws -> JSON? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let message = try await slackMessages().first(where: predicate) { return message }
            try await Sleep.for(.milliseconds(30))
        }
        return nil
    }

    /// GETs a sandbox path's JSON.
    func sandboxGet(_ path: String) async throws -> JSON {
        let response = try await api.client.execute(HTTPClientRequest(url: sandboxURL + path), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (try? JSON.parse(Data(buffer: body))) ?? .null
    }

    /// POSTs to a sandbox path with a JSON body.
    func sandboxPost(_ path: String, _ json: JSON) async throws -> JSON {
        var request = HTTPClientRequest(url: sandboxURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: json.encoded()))
        let response = try await api.client.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 4 << 20)
        return (try? JSON.parse(Data(buffer: body))) ?? .null
    }
}

/// Ports handed out so far in this process, from a range below the kernel's ephemeral ports
/// (32768–60999): a port picked there could be taken by any outgoing connection's local end
/// before the server binds it, and the server would then never start.
private let nextPort = Atomic(20_000 + Int(getpid() % 500) * 20)

/// A loopback port nobody in this process was given before, and free when asked for.
func freePort() throws -> Int {
    for _ in 0 ..< 1000 {
        let port = 20_000 + (nextPort.wrappingAdd(1, ordering: .relaxed).oldValue - 20_000) % 12_000
        if canBind(port) { return port }
    }
    throw POSIXError(.EADDRINUSE)
}

private func canBind(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
