import ArgumentParser
import Logging
import Foundation
import Switchboard

/// `switchboard`: the gateway's command line.
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "An integration gateway: events in, workflows with CEL conditions, connector actions out.",
        subcommands: [ServeCommand.self, SandboxCommand.self, ValidateCommand.self, RunCommand.self, EvalCommand.self, KeysCommand.self, AuditCommand.self,
                      ListsCommand.self, DeliveriesCommand.self, ConnectorsCommand.self, MigrateCommand.self, ReloadCommand.self, BacktestCommand.self, GraphCommand.self])

    /// Exit status 0 on success, 1 on a user error (message on stderr), 2 on a usage error.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as UserError {
            FileHandle.standardError.write(Data("error: \(error.message)\n".utf8))
            Foundation.exit(1)
        } catch {
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(2)
            }
            if error is CleanExit || error is ExitCode { exit(withError: error) }
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }
}

/// A mistake of the user's: printed on stderr, exit status 1.
struct UserError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

/// `--database`, shared by every command that touches the store.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .long, help: "sqlite:PATH or postgres://... (env SWITCHBOARD_DATABASE; default sqlite:.switchboard/switchboard.sqlite)")
    var database: String?

    func url() throws -> DatabaseURL {
        let text = database ?? ProcessInfo.processInfo.environment["SWITCHBOARD_DATABASE"]
        guard let text, !text.isEmpty else { return .defaultValue }
        do { return try DatabaseURL(text) } catch { throw UserError("\(error)") }
    }

    /// Opens the store (creating and migrating it when needed) and runs `body` with it.
    func withStore<Result: Sendable>(_ body: (any Store) async throws -> Result) async throws -> Result {
        let url = try url()
        var logger = Logger(label: "switchboard")
        logger.logLevel = .error
        do {
            return try await url.withStore(logger: logger, body)
        } catch let error as UserError {
            throw error
        } catch let error as StoreError {
            throw UserError("\(error)")
        } catch {
            throw UserError("the database at \(url) failed: \(String(reflecting: error))")
        }
    }
}

/// `--config DIR`, shared by every command that reads the configuration.
struct ConfigOptions: ParsableArguments {
    @Option(name: .long, help: "Directory with connectors/ and workflows/ (env SWITCHBOARD_CONFIG; default .)")
    var config: String?

    var directory: String { config ?? ProcessInfo.processInfo.environment["SWITCHBOARD_CONFIG"] ?? "." }

    /// Loads the configuration or fails with every error found.
    func load(context: ConnectorBuildContext = ConnectorBuildContext()) throws -> Configuration {
        let (configuration, problems) = Configuration.load(directory: directory, context: context)
        for warning in problems where warning.severity == .warning {
            FileHandle.standardError.write(Data("\(warning)\n".utf8))
        }
        if problems.contains(where: { $0.severity == .error }) {
            throw UserError(ConfigurationError(problems: problems).description)
        }
        return configuration
    }
}
