import AsyncHTTPClient
import CEL
import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The one place that sends: takes the deliveries this process's commits hand over
/// (``DeliveryQueue``) and claims due ones from the store, applies each connector's flow control,
/// signs, sends, logs every attempt, and decides between success, retry and giving up.
public final class DeliveryWorker: Service {
    let store: any Store
    let clock: any WallClock
    let logger: Logger
    let metrics: GatewayMetrics
    let sender: HTTPSender
    let allowPrivateNetworks: Bool
    /// Where deliveries come from: handed over by this process's commits, or claimed from the store.
    let queue: DeliveryQueue
    /// The run engine: a delivery that settles its step advances the run in the same transaction.
    let engine: RunEngine
    /// Rung when a step starts waiting for a callback, which may already have arrived.
    let callbacksDoorbell: Doorbell?
    let pollInterval: Duration
    /// Attempts older than this are pruned.
    let attemptRetention: TimeInterval
    /// The connectors deliveries go through, and each one's flow control; replaced by a reload.
    private let installed: Mutex<Installed>

    private struct Installed {
        var connectors: [String: any Connector]
        var flows: [String: ConnectorFlow]
        /// What each flow was made from: a connector whose file is unchanged keeps its flow
        /// (its rate, its slots, its circuit breaker's state) across a reload.
        var madeFrom: [String: ConnectorConfig]
    }

    init(store: any Store, connectors: [String: any Connector], clock: any WallClock, metrics: GatewayMetrics, logger: Logger,
         client: HTTPClient, allowPrivateNetworks: Bool, pollInterval: Duration = .milliseconds(100),
         attemptRetention: TimeInterval = 30 * 86_400, engine: RunEngine,
         callbacksDoorbell: Doorbell? = nil)
    {
        self.callbacksDoorbell = callbacksDoorbell
        self.store = store
        self.clock = clock
        self.metrics = metrics
        self.logger = logger
        sender = HTTPSender(client: client)
        self.allowPrivateNetworks = allowPrivateNetworks
        queue = engine.deliveries
        self.pollInterval = pollInterval
        self.attemptRetention = attemptRetention
        self.engine = engine
        installed = Mutex(Installed(connectors: [:], flows: [:], madeFrom: [:]))
        install(connectors, configs: [:])
    }

    /// Deliveries made from now on go through these connectors. A connector whose configuration is
    /// the same as before keeps its flow control; a new or changed one starts afresh.
    public func install(_ connectors: [String: any Connector], configs: [String: ConnectorConfig]) {
        installed.withLock { installed in
            var flows: [String: ConnectorFlow] = [:]
            for (id, connector) in connectors {
                if let config = configs[id], let before = installed.madeFrom[id], before.kind == config.kind,
                   before.settings == config.settings, let flow = installed.flows[id]
                {
                    flows[id] = flow
                    continue
                }
                flows[id] = ConnectorFlow(connector: id, settings: connector.delivery, shared: store.sharedLimits.map {
                    SharedFlow(limits: $0, connector: id, holder: engine.instance, logger: logger)
                })
            }
            installed = Installed(connectors: connectors, flows: flows, madeFrom: configs)
        }
    }

    /// The circuit breaker's state of a connector, for GET /v1/connectors.
    func circuitState(_ connector: String) -> JSON? { installed.withLock { $0.flows[connector] }?.breaker.json }

    public func run() async throws {
        // What this instance held before it stopped is sent again now; what others held, once their leases expire.
        let released = try await store.releaseLeases(heldBy: engine.instance)
        if released > 0 { logger.info("took back deliveries left sending", metadata: ["count": "\(released)"]) }
        try await store.sharedLimits?.releaseSlots(heldBy: engine.instance)
        queue.open()
        var lastHousekeeping = Date.distantPast
        await withDiscardingTaskGroup { group in
            group.addTask { [queue] in
                try? await gracefulShutdown()
                queue.close()
            }
            // Due times come without anyone ringing (a retry's backoff ends): look at the store regularly.
            let ticker = Task { [queue, pollInterval] in
                while !Task.isCancelled {
                    try? await Sleep.for(pollInterval)
                    queue.ring()
                }
            }
            defer { ticker.cancel() }
            while true {
                let work = await queue.next()
                if work.closed { break }
                var due = work.handed
                if work.claimRoom > 0 {
                    var claimed: [Delivery] = []
                    do {
                        claimed = try await store.claimDueDeliveries(at: clock.now(), limit: work.claimRoom, lease: engine.newLease())
                    } catch {
                        logger.error("claiming deliveries failed", metadata: ["error": "\(error)"])
                    }
                    queue.release(work.claimRoom - claimed.count)
                    // A full claim may have left more behind.
                    if claimed.count == work.claimRoom { queue.ring() }
                    due += claimed
                    if !claimed.isEmpty {
                        metrics.counter("switchboard_delivery_intake_total", [("path", "claimed")]).increment(by: claimed.count)
                    }
                }
                if !work.handed.isEmpty {
                    metrics.counter("switchboard_delivery_intake_total", [("path", "handed")]).increment(by: work.handed.count)
                }
                for delivery in due {
                    group.addTask { [self] in
                        await attempt(delivery)
                        queue.finished()
                    }
                }
                if Date().timeIntervalSince(lastHousekeeping) > 5 {
                    lastHousekeeping = Date()
                    await housekeeping()
                }
            }
        }
        logger.info("delivery worker stopped")
    }

    private func housekeeping() async {
        do {
            let now = clock.now()
            let backlog = try await store.deliveryBacklog(at: now)
            Gauge(label: "switchboard_delivery_queue_depth", factory: metrics.factory).record(backlog.due)
            Gauge(label: "switchboard_delivery_oldest_due_seconds", factory: metrics.factory)
                .record(backlog.oldestDue.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            for (id, flow) in installed.withLock({ $0.flows }) {
                let open: Double = if case .closed = flow.breaker.current { 0 } else { 1 }
                Gauge(label: "switchboard_circuit_open", dimensions: [("connector", id)], factory: metrics.factory).record(open)
            }
            let rescued = try await store.releaseExpiredLeases(at: now)
            if rescued > 0 {
                logger.info("took over deliveries whose lease expired", metadata: ["count": "\(rescued)"])
                queue.ring()
            }
            let pruned = try await store.pruneAttempts(before: now.addingTimeInterval(-attemptRetention), limit: 1000)
            if pruned > 0 { logger.info("pruned delivery attempts", metadata: ["count": "\(pruned)"]) }
        } catch {
            logger.warning("delivery housekeeping failed", metadata: ["error": "\(error)"])
        }
    }

    /// One attempt of one delivery, and its consequence. While the store cannot be reached the
    /// result is kept and recorded again every second, for as long as a lease lives: the request
    /// was sent, and what it did must not be forgotten (once the lease has lapsed, the delivery is
    /// sent again by whoever takes it, and this result would be fenced anyway).
    func attempt(_ delivery: Delivery) async {
        let result = await perform(delivery)
        let giveUp = ContinuousClock.now + .seconds(Lease.duration)
        while true {
            do {
                try await engine.settle(result, of: delivery)
                switch result.outcome {
                case .awaiting: callbacksDoorbell?.ring()
                case .followUp: queue.ring()
                default: break
                }
                return
            } catch let error as StoreError where error.code == .unavailable && ContinuousClock.now < giveUp {
                logger.warning("recording a delivery attempt failed; trying again in a second", metadata: [
                    "delivery_id": "\(delivery.id)", "error": "\(error)"])
                try? await Sleep.for(.seconds(1))
            } catch {
                logger.error("recording a delivery attempt failed", metadata: ["delivery_id": "\(delivery.id)", "error": "\(error)"])
                return
            }
        }
    }

    private func perform(_ delivery: Delivery) async -> AttemptResult {
        let number = delivery.attemptCount + 1
        let (connector, flow) = installed.withLock { ($0.connectors[delivery.connector], $0.flows[delivery.connector]) }
        guard let connector, let flow else {
            return AttemptResult(deliveryID: delivery.id, attempt: nil, outcome: .gaveUp(.failed, StepError(
                errorClass: "not_configured", message: "connector '\(delivery.connector)' is not configured")))
        }
        let settings = connector.delivery
        if !delivery.manual, let until = await flow.breaker.permit(now: clock.now()) {
            return AttemptResult(deliveryID: delivery.id, attempt: nil, outcome: .postponed(until: until))
        }
        let stopping = queue
        guard !queue.isClosed, let turn = await flow.turn(abandon: { stopping.isClosed }) else {
            // Stopping before its turn came: not sent, and due again at once for the next start.
            return AttemptResult(deliveryID: delivery.id, attempt: nil, outcome: .postponed(until: clock.now()))
        }

        let startedAt = clock.now()
        let started = ContinuousClock.now
        var headers = delivery.request.headers.compactMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        headers.append(("Idempotency-Key", delivery.id.rawValue))
        let body = Array((delivery.request.body ?? "").utf8)
        if let signing = settings.signing {
            headers += signing.headers(id: delivery.id.rawValue, timestamp: Int64(startedAt.timeIntervalSince1970), body: body)
        } else {
            headers.append(("webhook-id", delivery.id.rawValue))
        }
        var sent = headers
        connector.authenticate(&sent, url: delivery.request.url)
        let ssrf = SSRFGuard(allowAll: allowPrivateNetworks, allowed: settings.allowNetworks)
        let outcome = await sender.send(method: delivery.request.method, url: delivery.request.url, headers: sent,
                                        body: delivery.request.body, guard: ssrf, followRedirects: settings.followRedirects,
                                        timeout: settings.totalTimeout)
        let duration = ContinuousClock.now - started
        let now = clock.now()
        await turn.end()

        var attempt = DeliveryAttempt(
            deliveryID: delivery.id, number: number, trigger: delivery.manual ? .manual : .scheduled, startedAt: startedAt,
            durationMilliseconds: Int(duration.timeInterval * 1000),
            requestText: Self.loggedRequest(method: delivery.request.method, url: delivery.request.url, headers: sent,
                                            body: body, secretHeaders: settings.secretHeaders),
            responseText: outcome.response.map(Self.loggedResponse), errorClass: outcome.errorClass,
            errorMessage: outcome.errorMessage)

        metrics.timer("switchboard_delivery_attempt_duration_seconds", [("connector", delivery.connector)])
            .recordNanoseconds(Int64(duration.timeInterval * 1e9))
        let policy = settings.retry.overridden(by: delivery.retry)
        let result: AttemptResult.Outcome
        if var response = outcome.response {
            response.stage = delivery.request.stage
            switch connector.outcome(operation: delivery.operation, response: response) {
            case let .done(output):
                await flow.breaker.record(success: true, now: now)
                result = .succeeded(output: output)
            case let .awaitCallback(correlation):
                await flow.breaker.record(success: true, now: now)
                result = .awaiting(correlation: correlation)
            case let .next(request):
                await flow.breaker.record(success: true, now: now)
                result = .followUp(request)
            case .pending:
                await flow.breaker.record(success: true, now: now)
                result = .gaveUp(.failed, StepError(
                    errorClass: "invalid_response",
                    message: "connector '\(delivery.connector)' neither finished nor named what to wait for (delivery \(delivery.id))"))
            case let .failed(error):
                let retryable = RetryPolicy.isRetryable(status: response.status)
                await flow.breaker.record(success: !retryable, now: now)
                attempt.errorClass = "http_status"
                attempt.errorMessage = error.message
                if retryable, let next = policy.nextAttempt(afterAttempts: number, createdAt: delivery.createdAt, now: now,
                                                            retryAfter: RetryPolicy.retryAfter(response.header("retry-after"), now: now))
                {
                    result = .retry(at: next)
                } else {
                    result = .gaveUp(retryable ? .dead : .failed, StepError(
                        errorClass: "http_status", message: "\(error.message) (delivery \(delivery.id), attempt \(number))"))
                }
            }
        } else {
            let errorClass = outcome.errorClass ?? "connect"
            let message = outcome.errorMessage ?? errorClass
            if errorClass == "ssrf_blocked" {
                result = .gaveUp(.failed, StepError(errorClass: errorClass, message: message))
            } else {
                await flow.breaker.record(success: false, now: now)
                if let next = policy.nextAttempt(afterAttempts: number, createdAt: delivery.createdAt, now: now, retryAfter: nil) {
                    result = .retry(at: next)
                } else {
                    result = .gaveUp(.dead, StepError(errorClass: errorClass,
                                                      message: "\(message) (delivery \(delivery.id), attempt \(number))"))
                }
            }
        }
        let label = switch result {
        case .succeeded, .awaiting, .followUp: "succeeded"
        case .retry: "retry"
        case let .gaveUp(status, _): status.rawValue
        case .postponed: "postponed"
        }
        metrics.counter("switchboard_deliveries_total", [("connector", delivery.connector), ("outcome", label)]).increment()
        logger.debug("delivery attempt", metadata: [
            "delivery_id": "\(delivery.id)", "connector": "\(delivery.connector)", "attempt": "\(number)",
            "status": "\(outcome.response?.status ?? 0)", "error_class": "\(outcome.errorClass ?? "none")", "outcome": "\(label)",
        ])
        return AttemptResult(deliveryID: delivery.id, attempt: attempt, outcome: result)
    }

    /// Makes a connector's harmless live call, through the same guard and client as deliveries.
    public func test(connector id: String) async -> ConnectorTestResult? {
        guard let connector = installed.withLock({ $0.connectors[id] }) else { return nil }
        return await ConnectorCheck(sender: sender, allowPrivateNetworks: allowPrivateNetworks).run(connector)
    }

    static let alwaysSecret: Set<String> = ["authorization", "cookie", "set-cookie", "proxy-authorization", "webhook-signature",
                                            "x-api-key", "x-slack-signature"]

    /// Headers as a JSON object in name order (a name sent twice shows its last value), secret
    /// ones as `••••`.
    static func redact(_ headers: [(String, String)], secret: Set<String>, into writer: inout JSONObjectWriter) {
        let sorted = headers.enumerated().sorted { ($0.element.0, $0.offset) < ($1.element.0, $1.offset) }
        for (index, entry) in sorted.enumerated() {
            let (name, value) = entry.element
            if index + 1 < sorted.count, sorted[index + 1].element.0 == name { continue }
            let lower = name.lowercased()
            writer.member(name, alwaysSecret.contains(lower) || secret.contains(lower) ? "••••" : value)
        }
    }

    static func excerpt(_ body: [UInt8]) -> String {
        String(decoding: body.prefix(HTTPSender.excerptLimit), as: UTF8.self)
    }

    /// An attempt's request as logged, JSON text written directly (members in key order, as
    /// ``JSON/text`` would write them). The body is the delivery's, the same on every attempt, so
    /// it is not copied into each attempt: the delivery log shows the delivery's body as the excerpt.
    static func loggedRequest(method: String, url: String, headers: [(String, String)], body: [UInt8],
                              secretHeaders: Set<String>) -> String
    {
        var writer = JSONObjectWriter()
        writer.member("body_size", body.count)
        writer.member("headers", object: { redact(headers, secret: secretHeaders, into: &$0) })
        writer.member("method", method)
        writer.member("url", url)
        return writer.text
    }

    /// An attempt's response as logged, JSON text written directly.
    static func loggedResponse(_ response: ConnectorResponse) -> String {
        var writer = JSONObjectWriter(capacity: 512)
        writer.member("body_excerpt", excerpt(response.body))
        writer.member("body_size", response.body.count)
        writer.member("body_truncated", response.truncated)
        writer.member("headers", object: { redact(response.headers, secret: [], into: &$0) })
        writer.member("status", response.status)
        return writer.text
    }
}
