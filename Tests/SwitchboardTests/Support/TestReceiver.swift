import Switchboard
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A loopback HTTP server that answers as each test scripts and records every request.
final class TestReceiver: Sendable {
    struct Answer: Sendable {
        var status: Int = 200
        var headers: [(String, String)] = []
        var body: String = "{\"ok\": true}"
        var bodyBytes: Int? = nil  // a body of this many bytes instead
        var delay: Duration? = nil
    }

    struct Received: Sendable {
        var method: String
        var path: String
        var headers: [String: String]
        var body: String
        /// When it arrived.
        var at = ContinuousClock.now
    }

    private struct State {
        var script: [Answer]
        var received: [Received] = []
        var port = 0
        var waiters: [(Int, CheckedContinuation<Void, Never>)] = []
        var inFlight = 0
        var mostInFlight = 0
    }

    private let state: Mutex<State>
    let host: String

    init(host: String = "127.0.0.1", script: [Answer]) {
        self.host = host
        state = Mutex(State(script: script))
    }

    var port: Int { state.withLock { $0.port } }
    var received: [Received] { state.withLock { $0.received } }
    var url: String { "http://\(host):\(port)" }
    /// The most requests it was answering at once.
    var mostInFlight: Int { state.withLock { $0.mostInFlight } }

    func setScript(_ script: [Answer]) { state.withLock { $0.script = script } }

    /// Waits (bounded) until `count` requests have arrived.
    func waitForRequests(_ count: Int, timeout: Duration = .seconds(10)) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [self] in
                await withCheckedContinuation { continuation in
                    let ready = state.withLock { state in
                        if state.received.count >= count { return true }
                        state.waiters.append((count, continuation))
                        return false
                    }
                    if ready { continuation.resume() }
                }
            }
            group.addTask { try? await Sleep.for(timeout) }
            await group.next()
            group.cancelAll()
            let pending = state.withLock { state in
                let all = state.waiters.map(\.1)
                state.waiters = []
                return all
            }
            for waiter in pending { waiter.resume() }
        }
    }

    private func next(_ request: Received) -> Answer {
        let (answer, ready) = state.withLock { state -> (Answer, [CheckedContinuation<Void, Never>]) in
            state.received.append(request)
            state.inFlight += 1
            state.mostInFlight = max(state.mostInFlight, state.inFlight)
            let answer = state.script.count > 1 ? state.script.removeFirst() : (state.script.first ?? Answer())
            let count = state.received.count
            let ready = state.waiters.filter { $0.0 <= count }.map(\.1)
            state.waiters.removeAll { $0.0 <= count }
            return (answer, ready)
        }
        for waiter in ready { waiter.resume() }
        return answer
    }

    /// Runs the receiver while `body` runs.
    func serve<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        let router = Router()
        router.on("**", method: .post) { [self] request, _ in try await handle(request) }
        router.on("**", method: .get) { [self] request, _ in try await handle(request) }
        router.on("**", method: .put) { [self] request, _ in try await handle(request) }
        router.on("**", method: .head) { [self] request, _ in try await handle(request) }
        for method in [HTTPRequest.Method.get, .post, .put, .head] {
            router.on("/", method: method) { [self] request, _ in try await handle(request) }
        }
        var logger = Logger(label: "receiver")
        logger.logLevel = .critical
        let started = AsyncStream<Void>.makeStream()
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: 0)),
                              onServerRunning: { [self] channel in
                                  state.withLock { $0.port = channel.localAddress?.port ?? 0 }
                                  started.continuation.yield()
                              }, logger: logger)
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await app.runService(); return nil }
            var iterator = started.stream.makeAsyncIterator()
            await iterator.next()
            group.addTask { try await body() }
            while let result = try await group.next() {
                if let value = result {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }

    private func handle(_ request: Request) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 16 << 20)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.rawName] = field.value }
        let answer = next(Received(method: request.method.rawValue, path: request.uri.path, headers: headers,
                                   body: String(buffer: buffer)))
        if let delay = answer.delay { try? await Sleep.for(delay) }
        state.withLock { $0.inFlight -= 1 }
        var fields = HTTPFields()
        for (name, value) in answer.headers { fields[HTTPField.Name(name)!] = value }
        if let size = answer.bodyBytes {
            return Response(status: .init(code: answer.status), headers: fields,
                            body: ResponseBody(byteBuffer: ByteBuffer(repeating: UInt8(ascii: "x"), count: size)))
        }
        return Response(status: .init(code: answer.status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(string: answer.body)))
    }
}

extension TemporaryDirectory {
    /// Writes `config/connectors/sink.yaml`: an http connector `sink` that signs (with the delivery
    /// tests' secret) and sends to `receiver`, which it may reach on loopback.
    func writeSinkConnector(to receiver: TestReceiver, extra: String = "") throws {
        try write("config/connectors/sink.yaml", """
            id: sink
            kind: http
            base_url: \(receiver.url)
            signing: { secret: "\(DeliveryEngineTests.secret)" }
            allow_networks: [ 127.0.0.0/8 ]
            \(extra)
            """)
    }
}
