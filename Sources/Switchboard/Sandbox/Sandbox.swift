import AsyncHTTPClient
import CEL
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// `switchboard sandbox`: a KYB vendor and a Slack workspace on loopback, with real HTTP and
/// real signatures, for the demo and the end-to-end tests.
///
/// - KYB vendor (`/sandbox/kyb`): orders reports (``SandboxKYBVendor`` describes the API),
///   answers them after ``SandboxSettings/callbackDelay`` through callbacks signed per Standard
///   Webhooks, with outcomes from ``SandboxOutcomes``; `POST /sandbox/kyb/control` makes it fail.
/// - Slack stand-in (`/sandbox/slack`): incoming webhook, `chat.postMessage`, `conversations.info`,
///   `auth.test` and `response_url`; a web page with working buttons (`GET /sandbox/slack`), the
///   messages as JSON (`GET /sandbox/slack/messages`), and `POST /sandbox/slack/messages/{id}/click`,
///   which sends a correctly signed interaction to the gateway.
/// - Persona stand-in (`/sandbox/persona`): a page with a button per recorded Persona webhook, and
///   `POST /sandbox/persona/send` (`{"fixture": NAME}`), which signs one as Persona does and sends
///   it to the gateway's `POST /v1/sources/persona`.
public final class Sandbox: Sendable {
    public let settings: SandboxSettings
    let state = Mutex(State())
    let scheduled: AsyncStream<ScheduledCallback>
    let schedule: AsyncStream<ScheduledCallback>.Continuation
    let logger: Logger

    struct State {
        var reports: [String: JSON] = [:]
        var messages: [JSON] = []
        var plan = SandboxFailurePlan()
        var sequence = 0
        /// What the Persona stand-in's page sent, and the gateway's answers.
        var personaSent: [JSON] = []
    }

    struct ScheduledCallback: Sendable {
        var url: String
        var reportID: String
        var body: String
    }

    public init(settings: SandboxSettings = SandboxSettings(), logger: Logger = Logger(label: "sandbox")) {
        self.settings = settings
        self.logger = logger
        (scheduled, schedule) = AsyncStream.makeStream(of: ScheduledCallback.self)
    }

    /// The sandbox's HTTP application, with the service that sends the vendor's callbacks.
    public func buildApplication(onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
        let router = Router()
        addVendorRoutes(router.group("sandbox/kyb"))
        addSlackRoutes(router.group("sandbox/slack"))
        addPersonaRoutes(router.group("sandbox/persona"))
        router.get("/") { _, _ in Response(status: .seeOther, headers: [.location: "/sandbox/slack"]) }
        var app = Application(router: router, configuration: .init(address: .hostname(settings.host, port: settings.port)),
                              onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) }, logger: logger)
        app.addServices(CallbackSender(sandbox: self))
        return app
    }

    func nextID(_ prefix: String) -> String {
        let n = state.withLock { state -> Int in
            state.sequence += 1
            return state.sequence
        }
        return "\(prefix)_\(String(Int(Date().timeIntervalSince1970 * 1000), radix: 36))\(n)"
    }

    /// Sends the vendor's signed callbacks after their delay; a refused callback is retried a
    /// few times, as vendors do.
    struct CallbackSender: Service {
        let sandbox: Sandbox

        func run() async throws {
            await withDiscardingTaskGroup { group in
                for await callback in sandbox.scheduled.cancelOnGracefulShutdown() {
                    group.addTask { await sandbox.send(callback) }
                }
                group.cancelAll()
            }
        }
    }

    func send(_ callback: ScheduledCallback) async {
        do { try await Sleep.for(settings.callbackDelay) } catch { return }
        guard let secret = try? SigningSecret(settings.callbackSecret) else { return }
        let body = Array(callback.body.utf8)
        for attempt in 1 ... 5 {
            let headers = StandardWebhooks(secrets: [secret])
                .headers(id: "msg_\(callback.reportID)", timestamp: Int64(Date().timeIntervalSince1970), body: body)
            var request = HTTPClientRequest(url: callback.url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            request.body = .bytes(ByteBuffer(bytes: body))
            do {
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
                _ = try? await response.body.collect(upTo: 1 << 16)
                logger.info("sandbox callback sent", metadata: ["report": "\(callback.reportID)", "status": "\(response.status.code)"])
                // 2xx: delivered; 409: the gateway has it already; other 4xx: it will never take it.
                if response.status.code < 500 && response.status.code != 429 { return }
            } catch {
                logger.info("sandbox callback failed", metadata: ["report": "\(callback.reportID)", "error": "\(error)"])
            }
            do { try await Sleep.for(.seconds(attempt)) } catch { return }
        }
    }
}

extension Response {
    static func text(_ text: String, status: HTTPResponse.Status = .ok, type: String = "text/plain; charset=utf-8") -> Response {
        Response(status: status, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}

extension Request {
    /// The body as bytes (at most 1 MiB).
    func sandboxBody() async throws -> [UInt8] {
        var request = self
        return Array(buffer: try await request.collectBody(upTo: 1 << 20))
    }
}
