// Benchmarks of Switchboard, run with a release build (see README, "Benchmarks"):
//
//   swift run -c release --scratch-path .build-release switchboard-bench cel
//   swift run -c release --scratch-path .build-release switchboard-bench fuzz [COUNT] [SEED]
//
// `cel` measures evaluations per second on one core and allocations per evaluation for the
// four expressions of the CEL issue; each figure is the median of five one-second runs.
import CEL
import CELFuzzing
import Foundation
import MallocCounter
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
        var rates: [Double] = []
        for _ in 0 ..< 5 {
            var count = 0
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed: UInt64 = 0
            while elapsed < 1_000_000_000 {
                for _ in 0 ..< 1000 { _ = try program.evaluate(benchmark.variables, context: benchmark.context) }
                count += 1000
                elapsed = DispatchTime.now().uptimeNanoseconds - start
            }
            rates.append(Double(count) / (Double(elapsed) / 1e9))
        }
        let before = malloc_counter_allocations()
        for _ in 0 ..< 10_000 { _ = try program.evaluate(benchmark.variables, context: benchmark.context) }
        let allocations = Double(malloc_counter_allocations() - before) / 10_000
        print(benchmark.name.padding(toLength: 30, withPad: " ", startingAt: 0)
            + String(format: "%-13.0f%-18.1f", median(rates), allocations) + TypedJSON.encode(result).text)
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

let arguments = Array(CommandLine.arguments.dropFirst())
switch arguments.first {
case "cel":
    try benchmarkCEL()
case "fuzz":
    fuzz(count: arguments.count > 1 ? Int(arguments[1]) ?? 100_000 : 100_000,
         seed: arguments.count > 2 ? UInt64(arguments[2]) ?? 1 : 20_261_126)
default:
    print("usage: switchboard-bench cel | fuzz [COUNT] [SEED]")
    exit(2)
}
