import AsyncHTTPClient
import CEL
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import Switchboard

/// The console with a lot of data: fills a database with `count` runs (and as many
/// deliveries) spread over the last 30 days, then starts the `switchboard` binary beside this one
/// on it and times every console page, signed in with a key of every scope.
///
///   switchboard-bench console [COUNT] [DATABASE]    # DATABASE: sqlite:PATH or postgres://...
///
/// The runs are the shipped workflows' dry runs of the fixture events and KYB inputs, each copied
/// with new ids, times and inquiry ids (`inq_b<n>`) and written through the store's ingest, 64
/// at a time as the gateway writes them: event, run, steps and delivery in one transaction. Of
/// the deliveries 1 % are dead, 2 % failed, 1 % pending (due tomorrow), the rest succeeded;
/// of the runs left waiting by their dry run, one in 20 still waits. The KYB reports answer as
/// the sandbox does for a clean business. A database that already has
/// the runs is used again (filling a million takes minutes).
func benchmarkConsole(count: Int, database: String?) async throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let url = database ?? "sqlite:" + FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-console-bench-\(count).sqlite").path
    let (configuration, _) = try Configuration.loadValid(directory: root.path)
    let end = Date()
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    let found = try await DatabaseURL(url).withStore(logger: logger) { store -> (RunRecord, String, Delivery?) in
        if try await store.listRuns(RunQuery(limit: 1)).isEmpty {
            try await ConsoleFill(configuration: configuration, root: root, count: count, end: end).fill(store)
        } else {
            print("using the runs already in \(url)")
        }
        // A run, its event and its inquiry from half way back.
        guard let old = try await store.listRuns(RunQuery(workflow: "review-minors",
                                                          before: RunID.generate(at: end.addingTimeInterval(-15 * 86_400)), limit: 1)).first
        else { throw BenchError("the database has no runs from 15 days ago: empty it and fill it again") }
        let inquiry = try await store.loadRun(old.id)?.run.event?["data"]?["inquiry"]?["id"]?.stringValue ?? "inq_b0"
        let dead = try await store.listDeliveries(DeliveryQuery(status: .dead, limit: 1)).first
        return (old, inquiry, dead)
    }
    let (old, oldInquiry, dead) = found
    guard let oldEvent = old.trigger.eventID else { throw BenchError("the run 15 days back has no event") }

    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("switchboard").path
    let key = try BenchProcess.output(binary, ["keys", "create", "--name", "bench-\(getpid())", "--database", url])
        .trimmingCharacters(in: .whitespacesAndNewlines)
    let port = 18_190
    let server = Process()
    server.executableURL = URL(fileURLWithPath: binary)
    server.arguments = ["serve", "--config", root.path, "--database", url, "--port", String(port), "--log-level", "warning"]
    var environment = ProcessInfo.processInfo.environment
    environment["SWITCHBOARD_RATE_LIMIT"] = "off"
    server.environment = environment
    try server.run()
    defer { server.terminate(); server.waitUntilExit() }

    var configurationHTTP = HTTPClient.Configuration()
    configurationHTTP.redirectConfiguration = .disallow
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configurationHTTP)
    let base = "http://127.0.0.1:\(port)"
    try await BenchHTTP.waitUntilReady(client, base + "/ready")
    let login = try await BenchHTTP.send(client, base + "/console/login", method: .POST,
                                         form: [("key", key)], cookie: nil)
    guard let setCookie = login.cookie else { throw BenchError("sign-in answered \(login.status) without a cookie") }
    let cookie = String(setCookie.split(separator: ";")[0])
    let runsPage = try await BenchHTTP.send(client, base + "/console/runs", cookie: cookie)
    guard let csrf = runsPage.body.firstMatch(of: /name="csrf_token" value="([0-9a-f]+)"/).map({ String($0.1) }) else {
        throw BenchError("no CSRF token on the runs page")
    }
    let day = 86_400.0
    let since = end.addingTimeInterval(-20 * day).ISO8601Format(), until = end.addingTimeInterval(-19 * day).ISO8601Format()
    let midCursor = RunID.generate(at: end.addingTimeInterval(-15 * day)).rawValue
    let deliveryCursor = DeliveryID.generate(at: end.addingTimeInterval(-15 * day)).rawValue
    var pages: [(String, String, [(String, String)]?)] = [
        ("runs, first page", "/console/runs", nil),
        ("runs, a page 15 days back", "/console/runs?cursor=\(midCursor)", nil),
        ("runs, one day 20 days back", "/console/runs?since=\(since)&until=\(until)", nil),
        ("runs, status failed", "/console/runs?status=failed", nil),
        ("runs, status waiting", "/console/runs?status=waiting", nil),
        ("runs, decision declined", "/console/runs?decision=declined", nil),
        ("runs, workflow + status + decision", "/console/runs?workflow=review-minors&status=completed&decision=declined", nil),
        ("runs, workflow + status failed", "/console/runs?workflow=kyb-onboarding&status=failed", nil),
        ("runs, search run id (303)", "/console/runs?q=\(old.id.rawValue)", nil),
        ("runs, search event id", "/console/runs?q=\(oldEvent.rawValue)", nil),
        ("runs, search data.inquiry.id", "/console/runs?q=data.inquiry.id%3D\(oldInquiry)", nil),
        ("run, 15 days old", "/console/runs/\(old.id.rawValue)", nil),
        ("reviews", "/console/reviews", nil),
        ("deliveries, first page", "/console/deliveries", nil),
        ("deliveries, a page 15 days back", "/console/deliveries?cursor=\(deliveryCursor)", nil),
        ("deliveries, status dead", "/console/deliveries?status=dead", nil),
        ("deliveries, status failed + connector", "/console/deliveries?status=failed&connector=kyb", nil),
        ("deliveries, retry all: the count", "/console/deliveries/retry", [("csrf_token", csrf), ("status", "dead")]),
        ("workflows", "/console/workflows", nil),
        ("workflow review-minors", "/console/workflows/review-minors", nil),
        ("lists", "/console/lists", nil),
        ("list blocked-ips", "/console/lists/blocked-ips", nil),
        ("connectors", "/console/connectors", nil),
        ("audit", "/console/audit", nil),
    ]
    if let dead { pages.insert(("delivery, dead", "/console/deliveries/\(dead.id.rawValue)", nil), at: 18) }
    print("console pages over \(count) runs and deliveries (\(url)); 3 warm-up requests, then 15, one at a time")
    print("page".padding(toLength: 40, withPad: " ", startingAt: 0) + "status  median ms   max ms")
    var slowest = 0.0
    for (name, path, form) in pages {
        var times: [Double] = []
        var status = 0
        for round in 0 ..< 18 {
            let started = ContinuousClock.now
            let reply = try await BenchHTTP.send(client, base + path, method: form == nil ? .GET : .POST, form: form, cookie: cookie)
            let elapsed = ContinuousClock.now - started
            status = reply.status
            if round >= 3 { times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3) }
        }
        times.sort()
        slowest = max(slowest, times.last ?? 0)
        print(name.padding(toLength: 40, withPad: " ", startingAt: 0)
            + String(format: "%-8d%-11.1f%.1f", status, times[times.count / 2], times.last ?? 0))
    }
    print(String(format: "slowest answer: %.1f ms", slowest))
    try await client.shutdown()
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs of the shipped workflows as a gateway would have recorded them, many times over.
struct ConsoleFill {
    let configuration: Configuration
    let root: URL
    let count: Int
    let end: Date

    /// A dry run of a workflow on one fixture: the run, its steps, and its first connector step.
    struct Template {
        var workflow: Workflow
        var result: DryRun.Result
        var event: JSON?
        var connectorStep: (id: String, connector: String, operation: String)?
    }

    func templates() throws -> [Template] {
        let lists = ListIndexSnapshot(lists: [ListRecord(name: "blocked-ips", kind: .ip, items: ["203.0.113.7", "198.51.100.0/24"])])
        var templates: [Template] = []
        let events = root.appendingPathComponent("fixtures/events")
        for file in try FileManager.default.contentsOfDirectory(atPath: events.path).sorted() where file.hasSuffix(".json") {
            let event = try JSON.parse(Data(contentsOf: events.appendingPathComponent(file)))
            for workflow in configuration.workflows {
                guard case .event = workflow.trigger,
                      let result = try? DryRun.execute(workflow, event: event, input: nil, lists: lists,
                                                       connectors: configuration.connectorInstances) else { continue }
                templates.append(Template(workflow: workflow, result: result, event: event,
                                          connectorStep: Self.connectorStep(workflow, result)))
            }
        }
        let inputs = root.appendingPathComponent("fixtures/inputs")
        if let kyb = configuration.workflow("kyb-onboarding") {
            // The vendor's reports as the sandbox answers for a clean business.
            guard case let .object(outputs) = try JSON.parse(Data(contentsOf: inputs.appendingPathComponent("kyb-clean.outputs.json"))) else {
                throw BenchError("fixtures/inputs/kyb-clean.outputs.json is not an object")
            }
            for file in try FileManager.default.contentsOfDirectory(atPath: inputs.path).sorted()
            where file.hasSuffix(".json") && !file.contains(".outputs") {
                let input = try JSON.parse(Data(contentsOf: inputs.appendingPathComponent(file)))
                guard let result = try? DryRun.execute(kyb, event: nil, input: input, lists: lists,
                                                       connectors: configuration.connectorInstances, outputs: outputs) else { continue }
                templates.append(Template(workflow: kyb, result: result, event: nil, connectorStep: Self.connectorStep(kyb, result)))
            }
        }
        return templates
    }

    static func connectorStep(_ workflow: Workflow, _ result: DryRun.Result) -> (id: String, connector: String, operation: String)? {
        for step in result.steps {
            if case let .connector(connector, operation, _)? = workflow.stepsByID[step.id]?.kind { return (step.id, connector, operation) }
        }
        return nil
    }

    func fill(_ store: any Store) async throws {
        let templates = try templates()
        let list = try JSON.parse(Data(contentsOf: root.appendingPathComponent("fixtures/lists/blocked-ips.json")))
        try await store.putList(ListRecord(name: "blocked-ips", kind: .ip,
                                           items: list["items"]?.arrayValue?.compactMap { $0.stringValue } ?? []))
        print("filling with \(count) runs and deliveries from \(templates.count) dry runs of the shipped workflows")
        let started = ContinuousClock.now
        let start = end.addingTimeInterval(-30 * 86_400)
        let spacing = 30 * 86_400 / Double(count)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for n in 0 ..< count {
                if n >= 64 { try await group.next() }
                let at = start.addingTimeInterval(Double(n) * spacing)
                let template = templates[n % templates.count]
                // One run in 20 of those waiting for an answer still waits.
                let answered = (n / templates.count) % 20 != 0
                group.addTask { try await Self.write(n, template, answered: answered, at: at, end: end, store) }
                if n > 0, n % 100_000 == 0 { print("  \(n) in \(ContinuousClock.now - started)") }
            }
            try await group.waitForAll()
        }
        print("filled in \(ContinuousClock.now - started)")
    }

    static func write(_ n: Int, _ template: Template, answered: Bool, at: Date, end: Date, _ store: any Store) async throws {
        var run = template.result.run
        run.id = .generate(at: at)
        run.createdAt = at
        run.updatedAt = at.addingTimeInterval(2)
        var steps = template.result.steps
        if run.status == .waiting || run.status == .running || run.status == .pending, answered {
            // Answered since: the review or the vendor's callback came.
            run.status = .completed
            run.decision = n % 3 == 0 ? .declined : .approved
            run.wakeAt = nil
            for index in steps.indices where steps[index].status == .waiting || steps[index].status == .running {
                steps[index].status = .completed
                steps[index].endedAt = at.addingTimeInterval(2)
            }
        }
        for index in steps.indices {
            let offset = steps[index].startedAt.timeIntervalSince(template.result.run.createdAt)
            steps[index].startedAt = at.addingTimeInterval(offset)
            steps[index].endedAt = steps[index].endedAt.map { at.addingTimeInterval($0.timeIntervalSince(template.result.run.createdAt)) }
        }
        let kind = (n / 7) % 100  // every template's deliveries fail now and then
        let status: DeliveryStatus = switch kind {
        case 0: .dead
        case 1, 2: .failed
        case 3: .pending
        default: .succeeded
        }
        let step = template.connectorStep ?? (id: steps.last?.id ?? "notify", connector: "crm", operation: "send")
        var delivery = Delivery(
            id: .generate(at: at), runID: run.id, stepID: step.id, connector: step.connector, operation: step.operation, status: status,
            request: OutboundRequest(method: "POST", url: "https://vendor.example.com/v1/\(step.operation)",
                                     headers: [("content-type", "application/json")], body: #"{"reference":"b\#(n)"}"#),
            attemptCount: status == .dead ? 6 : (status == .pending ? 0 : 1),
            nextAttemptAt: status == .pending ? end.addingTimeInterval(86_400) : nil,
            lastError: status == .dead || status == .failed ? StepError(errorClass: "http_status", message: "HTTP 503 from the vendor") : nil,
            detached: template.connectorStep == nil, createdAt: at, updatedAt: at.addingTimeInterval(1))
        if status == .pending { delivery.updatedAt = at }
        guard var event = template.event else {
            var input = run.input ?? .object([:])
            input = input.setting(["ein"], .string(String(format: "%02d-%07d", n / 10_000_000, n % 10_000_000)))
            run.input = input
            run.searchTerms = template.workflow.searchTerms(of: run)
            try await store.createRuns([RunCheckpoint(run: run, steps: steps, deliveries: [delivery])])
            return
        }
        event = event.setting(["id"], .string("bench-\(n)")).setting(["data", "inquiry", "id"], .string("inq_b\(n)"))
        let eventID = EventID.generate(at: at)
        run.trigger = RunTrigger(eventID: eventID)
        run.event = event
        run.searchTerms = template.workflow.searchTerms(of: run)
        let record = EventRecord(id: eventID, dedupeKey: "bench-\(n)", type: event["type"]?.stringValue ?? "", source: "bench",
                                 payload: event, receivedAt: at, runs: [RunReference(id: run.id, workflow: run.workflow)])
        _ = try await store.ingest(record, runs: [RunCheckpoint(run: run, steps: steps, deliveries: [delivery])])
    }
}

extension JSON {
    /// This value with `value` at `path`, objects made on the way.
    func setting(_ path: [String], _ value: JSON) -> JSON {
        guard let first = path.first else { return value }
        var fields: [String: JSON] = if case let .object(existing) = self { existing } else { [:] }
        fields[first] = (fields[first] ?? .null).setting(Array(path.dropFirst()), value)
        return .object(fields)
    }
}

enum BenchProcess {
    static func output(_ binary: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw BenchError("\(binary) \(arguments.joined(separator: " ")) failed") }
        return String(decoding: data, as: UTF8.self)
    }
}

enum BenchHTTP {
    struct Reply {
        var status: Int
        var body: String
        var cookie: String?
    }

    static func send(_ client: HTTPClient, _ url: String, method: HTTPMethod = .GET, form: [(String, String)]? = nil,
                     cookie: String?) async throws -> Reply {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let cookie { request.headers.add(name: "Cookie", value: cookie) }
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: FormEncoding.encode(form)))
        }
        let response = try await client.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 16 << 20)
        return Reply(status: Int(response.status.code), body: String(buffer: body), cookie: response.headers.first(name: "Set-Cookie"))
    }

    /// Polls `url` every 100 ms for up to 120 s until it answers 200.
    static func waitUntilReady(_ client: HTTPClient, _ url: String) async throws {
        for _ in 0 ..< 1200 {
            if let reply = try? await send(client, url, cookie: nil), reply.status == 200 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("\(url) did not answer 200 within 120 s")
    }
}
