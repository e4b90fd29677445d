import ArgumentParser
import CEL
import Foundation
import Switchboard

struct BacktestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Replay a workflow's recorded runs through a changed definition and show which decisions change.",
        discussion: """
            FILE is the candidate workflow file; its id names the workflow whose finished runs are replayed, in \
            memory, with the connector results, reviews and callbacks each original run received. Nothing is \
            sent and nothing is written: it may run beside a live gateway. Lists are read as they are now.
            """)

    @Argument(help: "The candidate workflow file (YAML)") var file: String
    @OptionGroup var config: ConfigOptions
    @Option(help: "How far back runs are replayed, such as 7d or 24h (default 30d)") var since: String = "30d"
    @Option(help: "At most this many runs (default 10000)") var limit: Int = 10_000
    @OptionGroup var database: DatabaseOptions
    @Flag(help: "Print the report as JSON (as POST /v1/workflows/{id}/backtest answers)") var json = false

    func run() async throws {
        guard let window = ConfigDuration.parse(since), window > .zero else {
            throw UserError("--since must be a duration such as 7d or 24h, got '\(since)'")
        }
        guard limit > 0 else { throw UserError("--limit must be at least 1") }
        guard let data = FileManager.default.contents(atPath: file) else { throw UserError("cannot read \(file)") }
        let configuration = try config.load()
        let started = Date()
        let outcome = try await database.withStore { store in
            try await Backtest.run(source: String(decoding: data, as: UTF8.self), file: file, configuration: configuration, store: store,
                                   since: Date().addingTimeInterval(-Double(window.components.seconds)), limit: limit)
        }
        let report: Backtest.Report
        switch outcome {
        case let .success(made): report = made
        case let .failure(error): throw UserError(error.description)
        }
        if json {
            print(report.json.text)
            return
        }
        let seconds = Date().timeIntervalSince(started)
        print("\(report.workflow): \(report.replayed) run(s) replayed in \(String(format: "%.2f", seconds)) s: "
            + "\(report.changed) changed, \(report.unchanged) unchanged, \(report.failed.count) would fail, "
            + "\(report.unknown.count) unknown, \(report.notStarted.count) would not start")
        for cell in report.matrix {
            print("  \(cell.from?.rawValue ?? "none") → \(cell.to?.rawValue ?? "none"): \(cell.count)   e.g. "
                + cell.runs.map(\.rawValue).joined(separator: ", "))
        }
        for failure in report.failed.prefix(20) { print("  would fail: \(failure.run.rawValue): [\(failure.error.errorClass)] \(failure.error.message)") }
        for unknown in report.unknown.prefix(20) { print("  unknown: \(unknown.run.rawValue) reaches '\(unknown.step)', which its run never finished") }
    }
}
