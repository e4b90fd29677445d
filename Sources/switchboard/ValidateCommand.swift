import ArgumentParser
import CEL
import Foundation
import Switchboard

struct ValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check connectors/*.yaml and workflows/*.yaml; print every problem with file and line.")

    @OptionGroup var config: ConfigOptions
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let (configuration, problems) = Configuration.load(directory: config.directory)
        var all = problems
        all += await listWarnings(configuration)
        for problem in all { print(problem) }
        let errors = all.filter { $0.severity == .error }.count
        if errors > 0 {
            throw UserError("\(errors) error\(errors == 1 ? "" : "s") in the configuration")
        }
        print("configuration is valid: \(configuration.workflows.count) workflow(s), \(configuration.connectors.count) connector(s)")
    }

    /// Lists are data, so a missing one is a warning, given when the store can be read.
    private func listWarnings(_ configuration: Configuration) async -> [ConfigurationProblem] {
        let url = try? database.url()
        if case let .sqlite(path)? = url, !FileManager.default.fileExists(atPath: path) { return [] }
        guard let lists = try? await database.withStore({ try await $0.lists() }) else { return [] }
        let known = Set(lists.map(\.name))
        var warnings: [ConfigurationProblem] = []
        for workflow in configuration.workflows {
            for (name, location) in ListReferences.find(in: workflow) where !known.contains(name) {
                warnings.append(ConfigurationProblem(.warning, file: location.file, line: location.line, column: location.column,
                    "list '\(name)' does not exist yet; inList() is false until it is created (PUT /v1/lists/\(name) or switchboard lists add)"))
            }
        }
        return warnings
    }
}
