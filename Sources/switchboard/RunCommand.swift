import ArgumentParser
import Logging
import CEL
import Foundation
import Switchboard

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Dry-run a workflow in memory against an event or an input; print the step trace and the decision.",
        discussion: "Nothing is sent anywhere: a connector step prints the request it would send. Waits for a duration are skipped over; a wait for a review or a callback ends the dry run.")

    @Argument(help: "The workflow id") var workflow: String
    @Option(help: "A CloudEvent JSON file (for event-triggered workflows)") var event: String?
    @Option(help: "An input JSON file (for API-triggered workflows)") var input: String?
    @OptionGroup var config: ConfigOptions
    @Option(help: "Read lists from this database for inList() (sqlite:PATH); without it, lists are empty")
    var database: String?
    @Option(help: "A JSON file {step id: output} with the outputs connector steps are assumed to return") var outputs: String?
    @Flag(help: "Print the run as JSON instead of a trace") var json = false

    func validate() throws {
        if event != nil && input != nil { throw ValidationError("give one of --event FILE or --input FILE, not both") }
    }

    func run() async throws {
        let configuration = try config.load()
        guard let definition = configuration.workflow(workflow) else {
            throw UserError("no workflow '\(workflow)'; loaded: \(configuration.workflows.map(\.id).joined(separator: ", "))")
        }
        var payload: JSON = .null
        if let file = event ?? input {
            guard let data = FileManager.default.contents(atPath: file) else { throw UserError("cannot read \(file)") }
            do { payload = try JSON.parse(data) } catch { throw UserError("\(file) is not valid JSON: \(error)") }
        }
        var lists = ListIndexSnapshot()
        if let database {
            var logger = Logger(label: "switchboard")
            logger.logLevel = .error
            lists = ListIndexSnapshot(lists: try await DatabaseURL(database).withStore(logger: logger) { try await $0.lists() })
        }
        var assumed: [String: JSON] = [:]
        if let outputs {
            guard let data = FileManager.default.contents(atPath: outputs) else { throw UserError("cannot read \(outputs)") }
            guard case let .object(object)? = try? JSON.parse(data) else {
                throw UserError("\(outputs) must be a JSON object of step ids to outputs")
            }
            assumed = object
        }
        let result: DryRun.Result
        do {
            result = try DryRun.execute(definition, event: event != nil ? payload : nil, input: input != nil ? payload : nil,
                                        lists: lists, connectors: configuration.connectorInstances, outputs: assumed)
        } catch let error as DryRun.InvalidTrigger {
            throw UserError(error.message)
        }
        if json {
            print(result.json.text)
        } else {
            print(result.trace)
        }
    }
}
