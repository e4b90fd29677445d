import CEL
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
@testable import Switchboard

/// Paths of the repository, for fixtures and the shipped configuration.
enum Repository {
    static let root = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func fixture(_ path: String) throws -> JSON {
        try JSON.parse(Data(contentsOf: root.appendingPathComponent("fixtures").appendingPathComponent(path)))
    }
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-test-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    func write(_ name: String, _ text: String) throws {
        let full = file(name)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: full, atomically: true, encoding: .utf8)
    }

    /// Copies files of the repository (`workflows/x.yaml`, ...) under `folder`, keeping their paths.
    func copyExamples(_ files: [String], into folder: String) throws {
        for file in files {
            let target = self.file("\(folder)/\(file)")
            try FileManager.default.createDirectory(atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: Repository.root.appendingPathComponent(file).path, toPath: target)
        }
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// A clock the test moves by hand.
final class ManualClock: WallClock {
    private let current: Mutex<Date>
    init(_ start: Date = Date()) { current = Mutex(start) }
    func now() -> Date { current.withLock { $0 } }
    func advance(by seconds: TimeInterval) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
}

/// The real gateway on a temporary SQLite store, with an API key, for in-process API tests.
struct TestGateway {
    let directory: TemporaryDirectory
    let store: SQLiteStore
    let gateway: Gateway
    let apiKey: String

    init(configurationDirectory: String = Repository.root.path, clock: any WallClock = SystemWallClock(),
         scopes: [String] = APIKeys.allScopes, environment: [String: String] = [:]) async throws
    {
        directory = try TemporaryDirectory()
        store = try SQLiteStore(path: directory.file("switchboard.sqlite"))
        try await store.migrate()
        let interpolator = EnvironmentInterpolator(environment: ProcessInfo.processInfo.environment.merging(environment) { $1 })
        let (configuration, _) = try Configuration.loadValid(directory: configurationDirectory, environment: interpolator)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        gateway = Gateway(store: store, configuration: configuration, clock: clock, pollInterval: .milliseconds(20),
                          loader: ConfigurationLoader(directory: configurationDirectory, environment: interpolator,
                                                      context: ConnectorBuildContext(secretKey: configuration.secretKey)),
                          logger: logger)
        try await gateway.recordWorkflowVersions()
        apiKey = APIKeys.generate()
        try await store.createAPIKey(APIKeyRecord(name: "test", hash: APIKeys.hash(apiKey), scopes: scopes, createdAt: Date()))
    }

    /// Runs `body` against the application in-process, with the scheduler running.
    func test<Value: Sendable>(_ body: @Sendable (APIClient) async throws -> Value) async throws -> Value {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let app = try buildApplication(gateway: gateway, settings: ServerSettings(), logger: logger)
        return try await app.test(.router) { client in
            try await body(APIClient(client: client, apiKey: apiKey, gateway: gateway))
        }
    }

    /// Creates the `blocked-ips` list of the fixtures.
    func seedBlockedIPs() async throws {
        let list = try Repository.fixture("lists/blocked-ips.json")
        let items = (list["items"] ?? .null).stringList
        try await store.putList(ListRecord(name: "blocked-ips", kind: .ip, items: items))
        try await gateway.lists.refresh(from: store, force: true)
    }
}

/// Calls the API as a client would, with the test's key.
struct APIClient: Sendable {
    let client: any TestClientProtocol
    let apiKey: String
    let gateway: Gateway

    struct Reply: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: String
        var json: JSON { (try? JSON.parse(Data(body.utf8))) ?? .null }
    }

    @discardableResult
    func request(_ method: HTTPRequest.Method, _ uri: String, json: JSON? = nil, body: String? = nil,
                 headers extra: HTTPFields = [:], authenticated: Bool = true) async throws -> Reply
    {
        var headers = extra
        if authenticated && headers[.authorization] == nil { headers[.authorization] = "Bearer \(apiKey)" }
        var buffer: ByteBuffer?
        if let json {
            buffer = ByteBuffer(data: json.encoded())
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        } else if let body {
            buffer = ByteBuffer(string: body)
            if headers[.contentType] == nil { headers[.contentType] = "application/json" }
        }
        return try await client.execute(uri: uri, method: method, headers: headers, body: buffer) { response in
            Reply(status: response.status, headers: response.headers, body: String(buffer: response.body))
        }
    }

    /// Waits (bounded) until the run satisfies the predicate, and returns it with its steps.
    func waitForRun(_ id: String, timeout: Duration = .seconds(10),
                    until predicate: @escaping @Sendable (RunRecord) -> Bool) async throws -> JSON
    {
        let runID = RunID(id)
        let store = gateway.store
        _ = await gateway.engine.watcher.wait(for: runID, timeout: timeout, until: predicate) {
            try await store.loadRun(runID)?.run
        }
        return try await request(.get, "/v1/runs/\(id)").json
    }

    func waitUntilFinished(_ id: String) async throws -> JSON {
        try await waitForRun(id) { $0.status.isFinished }
    }
}

extension JSON {
    var array: [JSON] { if case let .array(a) = self { a } else { [] } }
    var number: Double? { if case let .number(n) = self { n } else { nil } }
    var stringList: [String] { array.compactMap(\.stringValue) }
}

extension Lease {
    /// The owner of the leases tests take.
    static let testOwner = InstanceID("test-instance")

    /// A lease for tests: held by `owner` from `now` for the usual duration.
    static func test(_ owner: InstanceID = testOwner, at now: Date) -> Lease {
        Lease(owner: owner, expiresAt: now.addingTimeInterval(duration))
    }
}
