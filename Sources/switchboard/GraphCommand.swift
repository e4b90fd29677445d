import ArgumentParser
import Foundation
import Switchboard

struct GraphCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graph",
        abstract: "Print a workflow drawn as SVG (the drawing of GET /v1/workflows/{id}/graph.svg and the console).",
        discussion: "switchboard graph review-minors > review-minors.svg")

    @Argument(help: "The workflow id") var workflow: String
    @OptionGroup var config: ConfigOptions

    func run() throws {
        let configuration = try config.load()
        guard let definition = configuration.workflow(workflow) else {
            throw UserError("no workflow '\(workflow)'; loaded: \(configuration.workflows.map(\.id).joined(separator: ", "))")
        }
        print(WorkflowGraph(workflow: definition).svg, terminator: "")
    }
}
