import AsyncHTTPClient
import CEL
import Foundation
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
        let key = APIKeys.generate()
        try await store.createAPIKey(APIKeyRecord(name: "e2e", hash: APIKeys.hash(key), scopes: APIKeys.allScopes, createdAt: Date()))

        let started = AsyncStream<Void>.makeStream()
        let gatewayApp = buildApplication(gateway: gateway, settings: ServerSettings(host: "127.0.0.1", port: gatewayPort),
                                          logger: logger) { _ in started.continuation.yield() }
        let sandboxApp = sandbox.buildApplication { _ in started.continuation.yield() }
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        defer { _ = directory }
        do {
            let result = try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await gatewayApp.runService(); return nil }
                group.addTask { try await sandboxApp.runService(); return nil }
                var iterator = started.stream.makeAsyncIterator()
                await iterator.next()
                await iterator.next()
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

/// A loopback port nobody listens on right now.
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw POSIXError(.EMFILE) }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}
