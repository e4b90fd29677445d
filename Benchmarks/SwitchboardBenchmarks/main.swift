// Benchmarks of Switchboard, run with a release build (see Benchmarks/README.md):
//
//   swift run -c release --scratch-path .build-release switchboard-bench cel
//   swift run -c release --scratch-path .build-release switchboard-bench fuzz [COUNT] [SEED]
//   switchboard-bench load URL RATE SECONDS   # POST CloudEvents at a fixed rate (key in SWITCHBOARD_API_KEY)
//   swift run -c release --scratch-path .build-release switchboard-bench runs   # the run interpreter, one core
//   swift run -c release --scratch-path .build-release switchboard-bench store  # the store's work per forwarded event
//   swift run -c release --scratch-path .build-release switchboard-bench backtest [COUNT]  # replaying recorded runs
//   swift run -c release --scratch-path .build-release switchboard-bench console [COUNT] [DATABASE]  # console pages, many runs
//
// `cel` measures evaluations per second on one core and allocations per evaluation for the
// four expressions of the CEL issue; each figure is the median of five one-second runs.
import AsyncHTTPClient
import CEL
import CELFuzzing
import Foundation
import MallocCounter
import NIOCore
import Switchboard

struct Case {
    let name: String
    let source: String
    let variables: [String: CELValue]
    let context: CELContext
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

/// Calls `body` in batches for 1 s, five times; returns the median calls per second.
func medianRate(batch: Int, _ body: () throws -> Void) rethrows -> Double {
    var rates: [Double] = []
    for _ in 0 ..< 5 {
        var count = 0
        let start = DispatchTime.now().uptimeNanoseconds
        var elapsed: UInt64 = 0
        while elapsed < 1_000_000_000 {
            for _ in 0 ..< batch { try body() }
            count += batch
            elapsed = DispatchTime.now().uptimeNanoseconds - start
        }
        rates.append(Double(count) / (Double(elapsed) / 1e9))
    }
    return median(rates)
}

func benchmarkCEL() throws {
    let data: JSON = [
        "inquiry": ["status": "completed", "score": 0.93, "birthdate": "2009-03-14", "ip_address": "198.51.100.77"],
        "hits": .array((0 ..< 10).map { i in ["score": .number(Double(i) / 10), "list": i % 3 == 0 ? "pep" : "ofac"] }),
        "country": "CA",
    ]
    var items: [String] = []
    for i in 0 ..< 5_000 { items.append("10.\(i / 256 % 256).\(i % 256).\(i % 200 + 1)") }
    for i in 0 ..< 4_990 { items.append("172.\(16 + i / 4096).\((i / 16) % 256).\((i % 16) * 16)/28") }
    for i in 0 ..< 10 { items.append("198.51.\(100 + i).0/24") }
    let lists = ListIndexSnapshot(lists: [ListRecord(name: "blocked-ips", kind: .ip, items: items)])
    let now = CELTimestamp(Date())!
    let variables: [String: CELValue] = ["data": CELValue(json: data)]
    let context = CELContext(now: now, host: lists)
    let cases = [
        Case(name: "(a) status and score", source: "data.inquiry.status == 'completed' && data.inquiry.score > 0.8",
             variables: variables, context: context),
        Case(name: "(b) age under 18", source: "age(data.inquiry.birthdate) < 18", variables: variables, context: context),
        Case(name: "(c) inList, 10,000 items", source: "inList('blocked-ips', data.inquiry.ip_address)",
             variables: variables, context: context),
        Case(name: "(d) 20 nodes, macro over 10", source:
            "data.hits.filter(h, h.score > 0.5 && h.list != 'pep').size() > 0 && data.country in ['US', 'CA']",
            variables: variables, context: context),
    ]
    print("CEL evaluation, one core, median of 5 runs of 1 s")
    print("case                          evals/s      allocations/eval  result")
    for benchmark in cases {
        let program = try ExpressionEnvironment.shared.compile(benchmark.source)
        let result = try program.evaluate(benchmark.variables, context: benchmark.context)
        let rate = try medianRate(batch: 1000) { _ = try program.evaluate(benchmark.variables, context: benchmark.context) }
        let before = malloc_counter_allocations()
        for _ in 0 ..< 10_000 { _ = try program.evaluate(benchmark.variables, context: benchmark.context) }
        let allocations = Double(malloc_counter_allocations() - before) / 10_000
        print(benchmark.name.padding(toLength: 30, withPad: " ", startingAt: 0)
            + String(format: "%-13.0f%-18.1f", rate, allocations) + TypedJSON.encode(result).text)
    }
}

/// Runs of examples 1 and 2 taken as far as they go in memory, as ingest does before it commits
/// (through `DryRun`, which is the same interpreter without a store): runs/s on one core and
/// allocations per run, for a ~1 KiB event like the ingest benchmark's.
func benchmarkRuns() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let (configuration, _) = try Configuration.loadValid(directory: root.path)
    let lists = ListIndexSnapshot(lists: [ListRecord(name: "blocked-ips", kind: .ip, items: ["203.0.113.7", "198.51.100.0/24"])])
    let padding = String(repeating: "x", count: 700)
    let event: JSON = [
        "specversion": "1.0", "id": "bench-1", "source": "https://identity.example.com", "type": "inquiry.completed",
        "data": ["inquiry": ["id": "inq_1", "ip_address": "192.0.2.44", "birthdate": "1990-04-12", "name_first": "Ada",
                             "note": .string(padding)]],
    ]
    print("run interpreter, one core, median of 5 runs of 1 s (adult inquiry, no decision)")
    print("workflow                      runs/s       allocations/run")
    for id in ["decline-blocked-ip", "review-minors"] {
        guard let workflow = configuration.workflow(id) else { continue }
        let run = { () throws in
            _ = try DryRun.execute(workflow, event: event, input: nil, lists: lists, connectors: configuration.connectorInstances)
        }
        let rate = try medianRate(batch: 100, run)
        let before = malloc_counter_allocations()
        for _ in 0 ..< 1000 { try run() }
        let allocations = Double(malloc_counter_allocations() - before) / 1000
        print(id.padding(toLength: 30, withPad: " ", startingAt: 0) + String(format: "%-13.0f%.0f", rate, allocations))
    }
}

func fuzz(count: Int, seed: UInt64) {
    var rng = SeededGenerator(state: seed)
    var compiled = 0
    let start = Date()
    for i in 0 ..< count {
        let source = i % 2 == 0 ? ExpressionFuzzer.expression(depth: 6, using: &rng) : ExpressionFuzzer.malformed(using: &rng)
        if ExpressionFuzzer.run(source) { compiled += 1 }
    }
    let seconds = Date().timeIntervalSince(start)
    print("fuzz: \(count) inputs (seed \(seed)), \(compiled) compiled, \(count - compiled) rejected, no crash, \(String(format: "%.1f", seconds)) s")
}

/// Sends events at a fixed rate (unlike wrk, which sends as fast as answers come back), so that
/// latency can be measured at a given load. Stops after `seconds`; at most 512 requests in flight.
func load(url: String, rate: Int, seconds: Int, eventType: String) async throws {
    let key = ProcessInfo.processInfo.environment["SWITCHBOARD_API_KEY"] ?? ""
    let client = HTTPClient(eventLoopGroupProvider: .singleton)
    let total = rate * seconds
    let start = ContinuousClock.now
    let prefix = "load-\(Int(Date().timeIntervalSince1970))"
    let padding = String(repeating: "x", count: 700)
    var failures = 0
    try await withThrowingTaskGroup(of: Bool.self) { group in
        var inFlight = 0
        var n = 0
        // Requests go out in ticks of 5 ms, each sending what is due by then: one sleep per tick
        // rather than per request keeps the generator's own cost low on a shared machine.
        while n < total {
            try await ContinuousClock().sleep(for: .milliseconds(5))
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let due = min(total, Int(seconds * Double(rate)))
            while n < due {
            if inFlight >= 512, let ok = try await group.next() {
                inFlight -= 1
                if !ok { failures += 1 }
            }
            inFlight += 1
            let index = n
            n += 1
            group.addTask {
                var request = HTTPClientRequest(url: url)
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(key)")
                request.headers.add(name: "Content-Type", value: "application/json")
                let body = #"{"specversion":"1.0","id":"\#(prefix)-\#(index)","source":"load","type":"\#(eventType)","data":{"n":\#(index),"note":"\#(padding)"}}"#
                request.body = .bytes(ByteBuffer(string: body))
                let response = try await client.execute(request, timeout: .seconds(30))
                _ = try await response.body.collect(upTo: 1 << 20)
                return response.status.code == 202
            }
            }
        }
        for try await ok in group where !ok { failures += 1 }
    }
    try await client.shutdown()
    let elapsed = ContinuousClock.now - start
    print("load: \(total) events at \(rate)/s in \(elapsed), \(failures) not answered 202")
}

/// The store's share of forwarding one event, without HTTP: ingest (event, run, step and its
/// delivery, committed `sending`), then the attempt's result committed with the run completed from
/// the copy the store remembers, by 32 concurrent callers sharing group commits, on
/// a new SQLite file. Prints events/s and the process's CPU per event for five rounds of `count`.
func benchmarkStore(count: Int) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-store-bench-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try SQLiteStore(path: directory.appendingPathComponent("bench.sqlite").path)
    try await store.migrate()
    let padding = String(repeating: "x", count: 700)
    let complete: @Sendable (RunSnapshot) -> RunCheckpoint? = { snapshot in
        guard let send = snapshot.steps.first else { return nil }
        var run = snapshot.run
        run.status = .completed
        run.updatedAt = Date()
        // As the interpreter finishes a step: with the output its delivery answered.
        return RunCheckpoint(run: run, steps: [StepRecord(id: send.id, parent: nil, sequence: send.sequence, status: .completed,
                                                          output: send.output, startedAt: send.startedAt, endedAt: Date())])
    }
    @Sendable func forward(_ n: Int) async throws {
        let now = Date()
        let text = #"{"specversion":"1.0","id":"e-\#(n)","source":"bench","type":"bench.forward","data":{"note":"\#(padding)"}}"#
        let payload = try JSON.parse(Data(text.utf8))
        let event = EventRecord(id: .generate(at: now), dedupeKey: "e-\(n)", type: "bench.forward", source: "bench", payload: payload,
                                payloadText: text, receivedAt: now, runs: [])
        let run = RunRecord(id: .generate(at: now), workflow: "forward", status: .waiting, trigger: RunTrigger(eventID: event.id),
                            event: payload, createdAt: now)
        let delivery = Delivery(id: .generate(at: now), runID: run.id, stepID: "send", connector: "sink", operation: "request",
                                status: .sending, request: OutboundRequest(method: "POST", url: "http://127.0.0.1:18081/hook", body: text),
                                nextAttemptAt: now, createdAt: now)
        let step = StepRecord(id: "send", parent: nil, sequence: 1, status: .waiting, startedAt: now, deliveryID: delivery.id)
        var accepted = event
        accepted.runs = [RunReference(id: run.id, workflow: run.workflow)]
        _ = try await store.ingest(accepted, runs: [RunCheckpoint(run: run, steps: [step], deliveries: [delivery])])
        let attempt = DeliveryAttempt(
            deliveryID: delivery.id, number: 1, trigger: .scheduled, startedAt: now, durationMilliseconds: 1,
            request: ["method": "POST", "url": "http://127.0.0.1:18081/hook", "body_size": 800,
                      "headers": ["content-type": "application/json", "webhook-id": .string(delivery.id.rawValue),
                                  "webhook-signature": "••••", "webhook-timestamp": "1764201600"]],
            response: ["status": 200, "headers": ["content-type": "application/json"], "body_size": 11, "body_excerpt": #"{"ok":true}"#],
            errorClass: nil, errorMessage: nil)
        // As the engine settles it: the transition, the run as remembered with the answer, the checkpoint.
        let result = AttemptResult(deliveryID: delivery.id, attempt: attempt, outcome: .succeeded(output: ["status": 200]))
        let commit = result.transition(of: delivery, at: Date())
        guard let change = commit.step, var snapshot = try await store.loadRun(run.id, allowStale: true),
              change.apply(to: &snapshot) != nil, let checkpoint = complete(snapshot),
              try await store.commitAttempt(commit, checkpoint: checkpoint) == .committed
        else {
            throw CancellationError()
        }
    }
    print("store work per forwarded event, 32 concurrent callers, rounds of \(count) events")
    var rates: [Double] = []
    var cpus: [Double] = []
    for round in 0 ..< 5 {
        let cpuBefore = processCPUSeconds()
        let start = DispatchTime.now().uptimeNanoseconds
        try await withThrowingTaskGroup(of: Void.self) { group in
            for caller in 0 ..< 32 {
                group.addTask {
                    for n in stride(from: caller, to: count, by: 32) { try await forward(round * count + n) }
                }
            }
            try await group.waitForAll()
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        rates.append(Double(count) / seconds)
        cpus.append((processCPUSeconds() - cpuBefore) / Double(count) * 1e6)
        print(String(format: "round %d: %.0f events/s, %.0f µs CPU per event", round + 1, rates.last!, cpus.last!))
    }
    print(String(format: "median: %.0f events/s, %.0f µs CPU per event", median(rates), median(cpus)))
}

/// User and system CPU seconds of this process so far.
/// Records COUNT runs of example 1 (decline-blocked-ip) through the gateway on a new SQLite
/// database, a fifth of them from blocked addresses, then backtests a changed condition: the time
/// to read the recorded runs, and to replay them.
func benchmarkBacktest(count: Int) async throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("switchboard-backtest-bench-\(getpid())")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try SQLiteStore(path: directory.appendingPathComponent("bench.sqlite").path)
    try await store.migrate()
    try await store.putList(ListRecord(name: "blocked-ips", kind: .ip, items: ["203.0.113.7", "198.51.100.0/24"]))
    let (configuration, _) = try Configuration.loadValid(directory: root.path)
    let lists = ListIndexSnapshot(lists: try await store.lists())
    guard let workflow = configuration.workflow("decline-blocked-ip") else { fatalError("no example 1") }
    // Recorded as the engine records them: each run taken to its end in memory, then stored.
    var batch: [RunCheckpoint] = []
    for n in 0 ..< count {
        let ip = n % 5 == 0 ? "198.51.100.\(n % 250)" : "192.0.2.\(n % 250)"
        let event: JSON = ["specversion": "1.0", "id": .string("bt-\(n)"), "source": "bench", "type": "inquiry.completed",
                           "data": ["inquiry": ["id": .string("inq_\(n)"), "ip_address": .string(ip), "birthdate": "1990-04-12"]]]
        let result = try DryRun.execute(workflow, event: event, input: nil, lists: lists)
        batch.append(RunCheckpoint(run: result.run, steps: result.steps))
        if batch.count == 100 || n == count - 1 {
            try await store.createRuns(batch)
            batch = []
        }
    }
    let source = try String(contentsOf: root.appendingPathComponent("workflows/decline-blocked-ip.yaml"), encoding: .utf8)
        .replacingOccurrences(of: "inList('blocked-ips', data.inquiry.ip_address)",
                              with: "inList('blocked-ips', data.inquiry.ip_address) && !data.inquiry.ip_address.startsWith('198.51.100.1')")
    guard case let .success(candidate) = configuration.workflow(source: source, file: "candidate.yaml") else { fatalError("candidate") }
    print("backtest of decline-blocked-ip over \(count) recorded runs (a fifth declined), SQLite, median of 5")
    var reads: [Double] = [], replays: [Double] = []
    var report: Backtest.Report?
    for _ in 0 ..< 5 {
        let started = Date()
        let runs = try await Backtest.recordedRuns(of: "decline-blocked-ip", since: .distantPast, limit: count, store: store)
        let read = Date()
        report = Backtest.run(candidate, on: runs, lists: lists, connectors: configuration.connectorInstances)
        replays.append(Date().timeIntervalSince(read))
        reads.append(read.timeIntervalSince(started))
    }
    print(String(format: "read %.3f s, replay %.3f s, total %.3f s; %d replayed, %d changed, %d unchanged",
                 median(reads), median(replays), median(reads) + median(replays), report?.replayed ?? 0, report?.changed ?? 0,
                 report?.unchanged ?? 0))
}

func processCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "cel":
    try benchmarkCEL()
case "runs":
    try benchmarkRuns()
case "sign":
    // Standard Webhooks headers for a 1 KiB body, one core.
    let signer = StandardWebhooks(secrets: [try SigningSecret("whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")])
    let body = Array(String(repeating: "x", count: 1024).utf8)
    let rate = medianRate(batch: 100) { _ = signer.headers(id: "dlv_01", timestamp: 1_764_201_600, body: body) }
    print(String(format: "Standard Webhooks signatures of a 1 KiB body: %.0f/s (median of 5 runs of 1 s)", rate))
case "backtest":
    try await benchmarkBacktest(count: arguments.count > 1 ? Int(arguments[1]) ?? 1000 : 1000)
case "store":
    try await benchmarkStore(count: arguments.count > 1 ? Int(arguments[1]) ?? 20000 : 20000)
case "console":
    try await benchmarkConsole(count: arguments.count > 1 ? Int(arguments[1]) ?? 1_000_000 : 1_000_000,
                               database: arguments.count > 2 ? arguments[2] : nil)
case "fuzz":
    fuzz(count: arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000,
         seed: arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 20_261_126)
case "load" where arguments.count >= 4:
    try await load(url: arguments[1], rate: Int(arguments[2]) ?? 1000, seconds: Int(arguments[3]) ?? 10,
                   eventType: arguments.count > 4 ? arguments[4] : "bench.forward")
default:
    print("usage: switchboard-bench cel | runs | sign | store [COUNT] | backtest [COUNT] | console [COUNT] [DATABASE] | fuzz [COUNT] [SEED] | load URL RATE SECONDS [TYPE]")
    exit(2)
}
