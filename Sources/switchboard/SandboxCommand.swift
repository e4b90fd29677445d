import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Switchboard

struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox",
        abstract: "Run a KYB vendor and a Slack stand-in on loopback, for the demo and tests.",
        discussion: """
            The shipped connectors (connectors/kyb.yaml, connectors/slack-reviews.yaml) point here by default.
            Open http://127.0.0.1:8091/sandbox/slack to see review alerts and click Approve or Decline.
            Make the vendor fail: curl -X POST http://127.0.0.1:8091/sandbox/kyb/control -d '{"fail_status":500,"fail_count":2}'
            """)

    @Option(help: "Port to listen on (default 8091)") var port: Int = 8091
    @Option(name: .customLong("gateway-url"), help: "Where the Slack stand-in sends clicks (env SWITCHBOARD_PUBLIC_URL; default http://127.0.0.1:8080)")
    var gatewayURL: String?
    @Option(name: .customLong("callback-delay"), help: "How long the KYB vendor takes to call back, e.g. 250ms, 2s (default 1s)")
    var callbackDelay: String = "1s"

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, level: .info) }
        var settings = SandboxSettings()
        settings.port = port
        settings.gatewayURL = gatewayURL ?? environment["SWITCHBOARD_PUBLIC_URL"] ?? settings.gatewayURL
        guard let delay = ConfigDuration.parse(callbackDelay) else {
            throw UserError("--callback-delay '\(callbackDelay)' is not a duration; write it like 250ms or 2s")
        }
        settings.callbackDelay = delay
        let sandbox = Sandbox(settings: settings)
        let chosen = settings
        let app = sandbox.buildApplication { bound in
            print("""
                sandbox listening on http://127.0.0.1:\(bound)/sandbox
                  KYB vendor:    http://127.0.0.1:\(bound)/sandbox/kyb  (API key \(chosen.apiKey))
                  Slack stand-in: http://127.0.0.1:\(bound)/sandbox/slack  (clicks go to \(chosen.gatewayURL))
                """)
        }
        try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
    }
}
