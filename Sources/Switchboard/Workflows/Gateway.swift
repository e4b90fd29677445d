import AsyncHTTPClient
import CEL
import Crypto
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

/// The gateway's operations, shared by the HTTP API and the command line: ingest, API
/// triggers, reviews, and API-key checks. Built once by ``buildApplication``.
public final class Gateway: Sendable {
    public let store: any Store
    /// The configuration and the stored versions of its workflows.
    public let live: LiveConfiguration
    /// The configuration new events and API triggers use.
    public var configuration: Configuration { live.current }
    public let engine: RunEngine
    public let scheduler: RunScheduler
    public let lists: ListIndex
    public let metrics: GatewayMetrics
    public let deliveryWorker: DeliveryWorker
    public let callbacks: CallbackInbox
    let httpClient: HTTPClient
    let clock: any WallClock
    let logger: Logger
    /// Recent key lookups by token.
    private let keyCache = Mutex<[String: (APIKeyRecord?, Date)]>([:])
    /// How long a key lookup is cached; revoking a key takes effect within this time.
    static let keyCacheLifetime: TimeInterval = 2

    /// Beats for this instance and renews its leases.
    let heartbeat: InstanceHeartbeat
    /// Where a reload reads the configuration again; nil: this gateway cannot reload.
    let loader: ConfigurationLoader?

    /// - Parameter instance: this instance's id, the owner of its leases (``InstanceID``).
    public init(store: any Store, configuration: Configuration, clock: any WallClock = SystemWallClock(),
                concurrency: Int = 32, pollInterval: Duration = .milliseconds(200), allowPrivateNetworks: Bool = false,
                instance: InstanceID = .local(withProcess: false), loader: ConfigurationLoader? = nil, logger: Logger)
    {
        self.store = store
        live = LiveConfiguration(configuration)
        self.clock = clock
        self.logger = logger
        metrics = GatewayMetrics()
        lists = ListIndex()
        engine = RunEngine(store: store, live: live, lists: lists, clock: clock, instance: instance,
                           metrics: metrics, logger: logger)
        heartbeat = InstanceHeartbeat(store: store, instance: instance, clock: clock, logger: logger)
        let scheduler = RunScheduler(engine: engine, concurrency: concurrency, pollInterval: pollInterval, logger: logger)
        self.scheduler = scheduler
        var clientConfiguration = HTTPClient.Configuration()
        clientConfiguration.redirectConfiguration = .disallow
        clientConfiguration.timeout = .init(connect: .seconds(5), read: .seconds(30))
        clientConfiguration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        // Without a tracer the client makes no span per request; with the default (no-op) tracer it
        // still built one and its attributes on every attempt (~1.5 % of the CPU when forwarding).
        clientConfiguration.tracing.tracer = nil
        // One attempt is one try to connect: a refused connection fails the attempt at once and the
        // delivery's own retry policy (backoff, jitter, the circuit breaker, the log) takes over.
        // The client's default retried it silently until the connect timeout, so an attempt to a
        // receiver that was down held a concurrency slot for 5 s.
        clientConfiguration.connectionPool.retryConnectionEstablishment = false
        httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
        callbacks = CallbackInbox(store: store, live: live, scheduler: scheduler, clock: clock, logger: logger,
                                  metrics: metrics, doorbell: engine.callbacksAwaited)
        deliveryWorker = DeliveryWorker(
            store: store, connectors: [:], clock: clock, metrics: metrics, logger: logger,
            client: httpClient, allowPrivateNetworks: allowPrivateNetworks,
            pollInterval: min(pollInterval, .milliseconds(100)),
            engine: engine, callbacksDoorbell: callbacks.doorbell)
        deliveryWorker.install(configuration.connectorInstances, configs: configuration.connectors)
        self.loader = loader
    }

    /// Records the loaded workflows' contents as versions in the store, before events and API
    /// triggers start runs on them (``LiveConfiguration/recordVersions(in:at:)``).
    public func recordWorkflowVersions() async throws {
        try await live.recordVersions(in: store, at: clock.now())
    }

    /// What a reload did.
    public enum ReloadOutcome: Sendable {
        /// The new configuration is in use: new events and API triggers run its workflows
        /// (versions recorded), deliveries made from now on use its connectors.
        case reloaded(Configuration)
        /// The configuration read has errors; the running one stays in place.
        case invalid([ConfigurationProblem])
        /// This gateway was started without a configuration directory to read again.
        case unavailable
    }

    /// Reads the configuration again and, when it is valid in full, puts it in place of the
    /// running one. Runs in flight keep the versions they started on. `audit` (who asked) is
    /// recorded as `configuration.reloaded` with the outcome.
    public func reload(audit: AuditEntry? = nil) async throws -> ReloadOutcome {
        guard let loader else { return .unavailable }
        let (configuration, problems) = loader.load()
        let errors = problems.filter { $0.severity == .error }
        var entry = audit ?? AuditEntry(at: clock.now(), actor: .system, name: "reload", action: "configuration.reloaded",
                                        target: "configuration")
        entry.action = "configuration.reloaded"
        guard errors.isEmpty else {
            entry.outcome = "invalid"
            entry.details = ["problems": .number(Double(errors.count))]
            try await store.recordAudit(entry)
            logger.warning("reload refused: the configuration has errors; the running one stays",
                           metadata: ["errors": "\(errors.count)", "first": "\(errors[0])"])
            return .invalid(errors)
        }
        try await live.install(configuration, store: store, at: clock.now())
        let installed = live.current
        deliveryWorker.install(installed.connectorInstances, configs: installed.connectors)
        entry.details = ["workflows": .array(installed.workflows.map { .string("\($0.id)@v\($0.version ?? 0)") })]
        try await store.recordAudit(entry)
        logger.info("configuration reloaded", metadata: [
            "workflows": "\(installed.workflows.map { "\($0.id)@v\($0.version ?? 0)" }.joined(separator: ", "))",
            "connectors": "\(installed.connectors.keys.sorted().joined(separator: ", "))",
        ])
        return .reloaded(installed)
    }

    /// The services that run beside the HTTP server, in start order (they stop in reverse).
    public var services: [any Service] {
        [HTTPClientService(client: httpClient), heartbeat, scheduler, deliveryWorker, callbacks, ScheduleRunner(gateway: self),
         WorkHintListener(store: store, wake: [scheduler.doorbell.ring, engine.deliveries.ring])]
    }

    /// The answer to an event: its id and the runs it started.
    public struct IngestAnswer: Sendable {
        public var eventID: EventID
        public var runs: [RunReference]
        public var duplicate: Bool

        /// `{"event_id", "runs": [{"id", "workflow"}]}`, written directly: this answers every event.
        var text: String {
            var writer = JSONObjectWriter(capacity: 128)
            writer.member("event_id", eventID.rawValue)
            writer.member("runs", objects: runs) { object, run in run.write(into: &object) }
            return writer.text
        }
    }

    /// Why an event was not ingested.
    public enum IngestError: Error, Equatable {
        /// The signed request that carried it was received before (``EventRecord/receipt``).
        case replayed
    }

    /// Persists an event and the runs it triggers in one transaction, then hands the runs to the scheduler.
    /// - Parameter receipt: the signed request that carried the event (an event source), written
    ///   in the same transaction; a receipt seen before throws ``IngestError/replayed``.
    public func ingest(_ event: CloudEvent, idempotencyKey: String?, receipt: InboundCallback? = nil) async throws -> IngestAnswer {
        let now = clock.now()
        let eventID = EventID.generate(at: now)
        let workflows = admitted(configuration.workflows(forEvent: event.type), event: event.raw, at: now)
        // The text stored is the text the runs see: the event as it arrived (encoded when built in code).
        let text = event.text ?? event.raw.text
        let runs = workflows.map { workflow in
            var run = RunRecord(id: .generate(at: now), workflow: workflow.id, trigger: RunTrigger(eventID: eventID), event: event.raw,
                                eventText: text, createdAt: now, workflowVersion: workflow.version)
            run.searchTerms = workflow.searchTerms(of: run)
            return run
        }
        return try await record(event, id: eventID, text: text, dedupeKey: idempotencyKey ?? event.id, receipt: receipt, runs: runs,
                                at: now)
    }

    /// Starts the run of a schedule's tick: once per workflow and tick, however many instances
    /// ask, because the tick is recorded as an event whose id is `schedule:<workflow>:<tick>`,
    /// deduplicated as every event is. The run's input is `{scheduled_at}`.
    public func startScheduled(_ workflow: Workflow, tick: Date) async throws -> IngestAnswer {
        let now = clock.now()
        let eventID = EventID.generate(at: now)
        let key = "schedule:\(workflow.id):\(tick.rfc3339)"
        let raw: JSON = ["specversion": "1.0", "id": .string(key), "source": .string("switchboard:schedule/\(workflow.id)"),
                         "type": "switchboard.schedule.tick", "time": .string(tick.rfc3339),
                         "data": ["workflow": .string(workflow.id), "scheduled_at": .string(tick.rfc3339)]]
        let event = CloudEvent(id: key, source: "switchboard:schedule/\(workflow.id)", type: "switchboard.schedule.tick", raw: raw,
                               text: raw.text)
        var run = RunRecord(id: .generate(at: now), workflow: workflow.id, trigger: RunTrigger(eventID: eventID, scheduledAt: tick),
                            event: raw, eventText: raw.text, input: ["scheduled_at": .string(tick.rfc3339)], createdAt: now,
                            workflowVersion: workflow.version)
        run.searchTerms = workflow.searchTerms(of: run)
        return try await record(event, id: eventID, text: raw.text, dedupeKey: key, receipt: nil, runs: [run], at: now)
    }

    /// Persists an event with the runs made for it, in one transaction, then hands the runs to
    /// the scheduler; or answers with the original when the event was seen before.
    private func record(_ event: CloudEvent, id eventID: EventID, text: String, dedupeKey: String, receipt: InboundCallback?,
                        runs: [RunRecord], at now: Date) async throws -> IngestAnswer {
        let references = runs.map { RunReference(id: $0.id, workflow: $0.workflow) }
        var record = EventRecord(id: eventID, dedupeKey: dedupeKey, type: event.type, source: event.source,
                                 payload: event.raw, receivedAt: now, runs: references)
        record.payloadText = text
        record.receipt = receipt
        let checkpoints = engine.startInline(runs)
        let outcome = try await engine.commit(checkpoints, after: nil) { checkpoints in
            try await store.ingest(record, runs: checkpoints)
        } committed: { outcome in
            if case .accepted = outcome { true } else { false }
        }
        switch outcome {
        case .accepted:
            metrics.eventReceived(type: event.type, outcome: "accepted")
            for checkpoint in checkpoints where checkpoint.run.status == .pending { scheduler.submit(checkpoint.run.id) }
            return IngestAnswer(eventID: eventID, runs: references, duplicate: false)
        case let .duplicate(original):
            metrics.eventReceived(type: event.type, outcome: "duplicate")
            return IngestAnswer(eventID: original.id, runs: original.runs, duplicate: true)
        case .replayed:
            metrics.eventReceived(type: event.type, outcome: "replayed")
            throw IngestError.replayed
        }
    }

    /// The workflows whose `trigger.if` admits the event; a filter that fails to evaluate starts no
    /// run, and is logged and counted.
    private func admitted(_ workflows: [Workflow], event: JSON, at now: Date) -> [Workflow] {
        guard workflows.contains(where: { $0.triggerFilter != nil }) else { return workflows }
        let snapshot = lists.snapshot
        return workflows.filter { workflow in
            switch workflow.admits(event, lists: snapshot, now: now) {
            case let .success(admitted): return admitted
            case let .failure(error):
                logger.warning("trigger.if failed; no run started",
                               metadata: ["workflow": "\(workflow.id)", "error": "\(error.message)",
                                          "expression": "\(error.expression ?? "")"])
                metrics.triggerFilterFailed(workflow: workflow.id)
                return false
            }
        }
    }

    /// Starts a run of an API-triggered workflow; the input must already be valid.
    public func startRun(_ workflow: Workflow, input: JSON) async throws -> RunRecord {
        let now = clock.now()
        var run = RunRecord(id: .generate(at: now), workflow: workflow.id, trigger: RunTrigger(api: true), input: input,
                            createdAt: now, workflowVersion: workflow.version)
        run.searchTerms = workflow.searchTerms(of: run)
        let checkpoints = engine.startInline([run])
        try await engine.commit(checkpoints, after: nil) { try await store.createRuns($0) } committed: { true }
        return checkpoints[0].run
    }

    /// Why a review could not be applied.
    public enum ReviewError: Error, Equatable {
        case runNotFound
        case noReviewWaiting
    }

    /// Resolves the run's waiting `wait: review` step with a decision.
    /// - Parameters:
    ///   - audit: who decided, from where: the entry `review.decided` is written with the decision.
    ///   - followUps: deliveries that report the decision (a Slack message update), given the
    ///     review step's id and output; persisted in the same transaction as the decision.
    public func review(run id: RunID, decision: String, reviewer: String?, extra: [String: JSON] = [:], audit: AuditEntry? = nil,
                       followUps: @Sendable (_ step: String, _ output: JSON) -> [Delivery] = { _, _ in [] }) async throws -> RunRecord
    {
        guard let snapshot = try await store.loadRun(id) else { throw ReviewError.runNotFound }
        try await live.prepare(for: snapshot.run, store: store)
        guard let workflow = try? live.workflow(for: snapshot.run).get() else { throw ReviewError.noReviewWaiting }
        let kinds = workflow.stepsByID
        let waiting = snapshot.steps.first { step in
            guard step.status == .waiting, case .wait(.review)? = kinds[step.id]?.kind else { return false }
            return step.output == nil
        }
        guard let step = waiting else { throw ReviewError.noReviewWaiting }
        var fields: [String: JSON] = ["decision": .string(decision), "reviewer": reviewer.map(JSON.string) ?? .null,
                                      "decided_at": .string(clock.now().rfc3339)]
        fields.merge(extra) { current, _ in current }
        let output = JSON.object(fields)
        var entry = audit
        entry?.details = ["decision": .string(decision), "step": .string(step.id), "reviewer": reviewer.map(JSON.string) ?? .null]
        switch try await store.answer(.decision(output, run: id, step: step.id), followUps: followUps(step.id, output), audit: entry) {
        case .resolved:
            scheduler.submit(id)
            engine.deliveries.ring()
            logger.info("review recorded", metadata: ["run_id": "\(id)", "step_id": "\(step.id)", "decision": "\(decision)"])
            return snapshot.run
        case .runNotFound: throw ReviewError.runNotFound
        case .stepNotWaiting: throw ReviewError.noReviewWaiting
        }
    }

    /// The key a bearer token belongs to, if it is valid: not revoked, not expired. Lookups are
    /// cached briefly. A token that is no key, a revoked and an expired key are all nil alike, so
    /// that an answer never tells whether a key exists.
    ///
    /// The cache is keyed by the token itself, in memory only, so that a cached lookup costs no
    /// SHA-256 (about 1 % of ingest's CPU); the store keeps only hashes.
    public func authenticate(token: String) async throws -> APIKeyRecord? {
        let now = clock.now()
        if let (cached, at) = keyCache.withLock({ $0[token] }), now.timeIntervalSince(at) < Self.keyCacheLifetime {
            return cached?.isValid(at: now) == true ? cached : nil
        }
        let record = try await store.apiKey(hash: APIKeys.hash(token))
        let valid = record?.isValid(at: now) == true ? record : nil
        keyCache.withLock { cache in
            if cache.count > 10_000 { cache.removeAll() }
            cache[token] = (valid, now)
        }
        return valid
    }
}

/// Owns the shared HTTP client: shuts it down once the services that send have stopped.
struct HTTPClientService: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        // Also when cancelled rather than stopped gracefully: a client never shut down stops the
        // process when it is freed. The shutdown runs in a task of its own, which cancellation
        // does not reach.
        try await Task { try await client.shutdown() }.value
    }
}

/// API keys: `sk_` and 32 random bytes in hex; the store keeps only the SHA-256.
public enum APIKeys {
    /// Every scope a key may hold (a key created without `--scopes` has all): what each allows is the `access` of the routes in ``Gateway/routes``.
    public static let allScopes = ["events:write", "runs:read", "runs:write", "reviews:write", "deliveries:read",
                                   "deliveries:write", "lists:read", "lists:write", "workflows:read", "workflows:write",
                                   "connectors:read", "connectors:write", "admin"]

    public static func generate() -> String {
        var random = SystemRandomNumberGenerator()
        let bytes = (0 ..< 32).map { _ in UInt8.random(in: 0 ... 255, using: &random) }
        return "sk_" + Hex.encode(bytes)
    }

    public static func hash(_ key: String) -> String {
        Hex.encode(Array(SHA256.hash(data: Data(key.utf8))))
    }
}

/// Lowercase hexadecimal, with a lookup table (String(format:) is slow on Linux).
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode(_ bytes: some Sequence<UInt8>) -> String {
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
