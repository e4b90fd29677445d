import CEL
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// Takes connectors' inbound callbacks (`POST /v1/callbacks/{connector}`): verifies their
/// signature, refuses replays, and hands each to the step that waits for its correlation id.
///
/// A vendor may call back before the response to its own request was recorded; such a callback
/// is kept (``earlyCallbackLifetime``) and matched as soon as its step records the id. As a
/// service it sweeps those pending callbacks: when rung by the delivery worker, and every second.
public final class CallbackInbox: Service {
    let store: any Store
    let live: LiveConfiguration
    var configuration: Configuration { live.current }
    let scheduler: RunScheduler
    let clock: any WallClock
    let logger: Logger
    let metrics: GatewayMetrics
    /// Rung when a step starts waiting for a callback, so that early callbacks match at once.
    let doorbell: Doorbell
    /// How long a callback that matches no step yet is kept.
    public static let earlyCallbackLifetime: TimeInterval = 600

    init(store: any Store, live: LiveConfiguration, scheduler: RunScheduler, clock: any WallClock, logger: Logger,
         metrics: GatewayMetrics, doorbell: Doorbell) {
        self.metrics = metrics
        self.doorbell = doorbell
        self.store = store
        self.live = live
        self.scheduler = scheduler
        self.clock = clock
        self.logger = logger
    }

    /// What became of a callback, as the HTTP answer says it.
    public enum Answer: Sendable, Equatable {
        case matched(RunID)
        case pending
        /// 404: no such connector, or it takes no callbacks.
        case unknownConnector
        /// 401: the signature or timestamp is wrong.
        case rejected(String)
        /// 409: the message id was seen before.
        case replayed
        /// 400: verified but unreadable.
        case invalid(String)
    }

    /// Verifies, records and applies one callback.
    public func receive(connector id: String, headers: [(String, String)], body: [UInt8]) async throws -> Answer {
        guard let connector = configuration.connectorInstances[id], let callbacks = connector.callbacks else {
            return .unknownConnector
        }
        let now = clock.now()
        let request = SignedRequest(connector: id, headers: headers, body: body, receivedAt: now)
        let verifiedID: String?
        switch try await request.verify(with: callbacks.verifier, store: store, metrics: metrics, logger: logger) {
        case let .success(messageID): verifiedID = messageID
        case let .failure(refusal): return .rejected(refusal.message)
        }
        let message: CallbackMessage
        do {
            message = try callbacks.read(body: body, headers: headers, verifiedMessageID: verifiedID)
        } catch {
            try await store.recordCallback(InboundCallback(id: .generate(at: now), connector: id, status: .invalid,
                                                           messageID: verifiedID, error: error.message, receivedAt: now))
            metrics.callbackReceived(connector: id, outcome: "invalid")
            return .invalid(error.message)
        }
        let callback = InboundCallback(id: .generate(at: now), connector: id, status: .pending, messageID: message.messageID,
                                       correlation: message.correlation, payload: message.payload, receivedAt: now,
                                       expiresAt: now.addingTimeInterval(Self.earlyCallbackLifetime))
        let receipt = try await store.receiveCallback(callback, change: change)
        logger.info("callback received", metadata: ["connector": "\(id)", "correlation": "\(message.correlation)",
                                                    "outcome": "\(receipt)"])
        let outcome = switch receipt {
        case .matched: "matched"
        case .pending: "pending"
        case .replayed: "replayed"
        }
        metrics.callbackReceived(connector: id, outcome: outcome)
        switch receipt {
        case let .matched(run):
            scheduler.submit(run)
            return .matched(run)
        case .pending: return .pending
        case .replayed: return .replayed
        }
    }

    /// What a matched callback does to its step: read by the connector of the step that waits for
    /// it (a `wait: callback` step takes the payload as its output), then the engine's rule.
    var change: @Sendable (CallbackMatch) -> CallbackChange? {
        { [live, clock] match in
            // The run's own version; the current one if this instance has not read that version
            // (recorded by another instance since it started): the step's kind rarely changes.
            let workflow = (try? live.workflow(match.workflow, version: match.workflowVersion).get())
                ?? live.current.workflow(match.workflow)
            let configuration = live.current
            let step = workflow?.stepsByID[match.stepID]
            var outcome = ConnectorOutcome.done(match.payload)
            if case let .connector(connectorID, operation, _)? = step?.kind,
               let callbacks = configuration.connectorInstances[connectorID]?.callbacks
            {
                outcome = callbacks.outcome(operation: operation, payload: match.payload)
            }
            return outcome.change(for: match, step: step, at: clock.now())
        }
    }

    /// Matches pending callbacks whose step now waits, and expires old ones.
    public func sweep() async {
        do {
            let runs = try await store.matchPendingCallbacks(at: clock.now(), change: change)
            for run in runs { scheduler.submit(run) }
        } catch {
            logger.warning("matching pending callbacks failed", metadata: ["error": "\(error)"])
        }
    }

    public func run() async throws {
        await withDiscardingTaskGroup { group in
            let stopping = SharedFlag()
            group.addTask { [doorbell] in
                try? await gracefulShutdown()
                stopping.withLock { $0 = true }
                doorbell.ring()
            }
            while !stopping.withLock({ $0 }) {
                await sweep()
                await doorbell.wait(upTo: .seconds(1))
            }
        }
    }
}

/// A flag shared between a loop and the task that stops it.
final class SharedFlag: Sendable {
    private let value = Mutex(false)
    func withLock<R>(_ body: (inout Bool) -> R) -> R { value.withLock { body(&$0) } }
}
