import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Switchboard
import UnixSignals

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the gateway: the HTTP API and the workflow scheduler.")

    @OptionGroup var config: ConfigOptions
    @OptionGroup var database: DatabaseOptions
    @Option(help: "Address to listen on (env SWITCHBOARD_HOST; default 127.0.0.1)") var host: String?
    @Option(help: "Port to listen on (env SWITCHBOARD_PORT; default 8080)") var port: Int?
    @Option(name: .customLong("public-url"), help: "Address vendors and Slack call back (env SWITCHBOARD_PUBLIC_URL)")
    var publicURL: String?
    @Flag(name: .customLong("allow-private-networks"), help: "Allow outbound calls to private addresses (env SWITCHBOARD_ALLOW_PRIVATE_NETWORKS=1)")
    var allowPrivateNetworks = false
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error (env SWITCHBOARD_LOG_LEVEL; default info)")
    var logLevel: String?
    @Option(name: .customLong("event-loops"), help: "Network I/O threads (env SWITCHBOARD_EVENT_LOOPS; default one per core)")
    var eventLoops: String?
    @Option(name: .customLong("instance-id"),
            help: "This instance's id, the owner of its leases (env SWITCHBOARD_INSTANCE_ID; default the host name with SQLite)")
    var instanceID: String?
    @Option(name: .customLong("rate-limit"),
            help: "Requests per API key and per client address, N/s, N/m or N/h, or off (env SWITCHBOARD_RATE_LIMIT; default 200/s)")
    var rateLimit: String?
    @Option(name: .customLong("tls-cert"), help: "Serve HTTPS with this PEM certificate chain (env SWITCHBOARD_TLS_CERT; with --tls-key)")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert (env SWITCHBOARD_TLS_KEY)")
    var tlsKey: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        // First of all: NIO's thread group must not have been made yet.
        let loopsText = eventLoops ?? environment["SWITCHBOARD_EVENT_LOOPS"]
        if let loopsText {
            guard let loops = Int(loopsText), (1 ... 256).contains(loops) else {
                throw UserError("--event-loops (or SWITCHBOARD_EVENT_LOOPS) must be a whole number from 1 to 256, got '\(loopsText)'")
            }
            EventLoops.configure(count: loops)
        }
        let level = Logger.Level(rawValue: logLevel ?? environment["SWITCHBOARD_LOG_LEVEL"] ?? "info") ?? .info
        LoggingSystem.bootstrap { label in GatewayLogHandler(label: label, level: level) }
        var logger = Logger(label: "switchboard")
        logger.logLevel = level

        let host = host ?? environment["SWITCHBOARD_HOST"] ?? "127.0.0.1"
        let portText = environment["SWITCHBOARD_PORT"]
        guard let port = port ?? (portText.map { Int($0) } ?? 8080) else {
            throw UserError("SWITCHBOARD_PORT must be a port number, got '\(portText ?? "")'")
        }
        let certificate = tlsCert ?? environment["SWITCHBOARD_TLS_CERT"], key = tlsKey ?? environment["SWITCHBOARD_TLS_KEY"]
        var tls: TLSFiles?
        switch (certificate, key) {
        case let (certificate?, key?):
            tls = TLSFiles(certificate: certificate, key: key)
            do { _ = try tls?.configuration() } catch { throw UserError("\(error)") }
        case (nil, nil): tls = nil
        default: throw UserError("--tls-cert and --tls-key (or SWITCHBOARD_TLS_CERT and SWITCHBOARD_TLS_KEY) go together")
        }
        let scheme = tls == nil ? "http" : "https"
        let publicURL = publicURL ?? environment["SWITCHBOARD_PUBLIC_URL"] ?? "\(scheme)://\(host):\(port)"
        let databaseURL = try database.url()
        let keyFolder: String? = if case let .sqlite(path) = databaseURL { (path as NSString).deletingLastPathComponent } else { nil }
        let rateText = rateLimit ?? environment["SWITCHBOARD_RATE_LIMIT"] ?? "200/s"
        let requestRate: RateLimitSpec?
        if rateText == "off" {
            requestRate = nil
        } else {
            guard let parsed = RateLimitSpec(rateText) else {
                throw UserError("--rate-limit (or SWITCHBOARD_RATE_LIMIT) must be N/s, N/m, N/h or off, got '\(rateText)'")
            }
            requestRate = parsed
        }
        let allowPrivate = allowPrivateNetworks || environment["SWITCHBOARD_ALLOW_PRIVATE_NETWORKS"] == "1"
        let instanceText = instanceID ?? environment["SWITCHBOARD_INSTANCE_ID"]
        if let instanceText, instanceText.isEmpty || instanceText.count > 200 {
            throw UserError("--instance-id (or SWITCHBOARD_INSTANCE_ID) must be 1 to 200 characters, got \(instanceText.count)")
        }
        // With SQLite there is one instance: the same id across restarts takes back its leases at once. On a
        // shared database each process is an instance of its own.
        let shared = if case .postgres = databaseURL { true } else { false }
        let instance = instanceText.map { InstanceID($0) } ?? .local(withProcess: shared)
        try await database.withStore { store in
            let secretKey: GatewayKey
            do {
                if environment["SWITCHBOARD_SECRET_KEY"] == nil, let limits = store.sharedLimits {
                    secretKey = try await GatewayKey.shared(in: limits)
                } else {
                    secretKey = try GatewayKey.load(environment: environment, folder: keyFolder.map { $0.isEmpty ? "." : $0 })
                }
            } catch {
                throw UserError("cannot keep the gateway's secret key beside the database: \(error)")
            }
            let context = ConnectorBuildContext(publicURL: publicURL, secretKey: secretKey)
            let configuration = try config.load(context: context)
            let gateway = Gateway(store: store, configuration: configuration, allowPrivateNetworks: allowPrivate, instance: instance,
                                  loader: ConfigurationLoader(directory: config.directory, context: context), logger: logger)
            try await gateway.recordWorkflowVersions()
            let workflows = configuration.workflows
            var server = ServerSettings(host: host, port: port)
            server.rateLimit = requestRate
            server.tls = tls
            let app = try buildApplication(gateway: gateway, settings: server, logger: logger) { bound in
                ServeCommand.announce(scheme: scheme, host: host, port: bound, workflows: workflows)
            }
            logger.info("switchboard starting", metadata: [
                "address": "\(host):\(port)", "public_url": "\(publicURL)",
                "workflows": "\(configuration.workflows.map(\.id).joined(separator: ","))",
                "connectors": "\(configuration.connectors.keys.sorted().joined(separator: ","))",
                "database": "\(databaseURL)",
                "allow_private_networks": "\(allowPrivate)",
                "instance": "\(instance)",
            ])
            // SIGHUP reads the configuration again (POST /v1/admin/reload does the same).
            let hangupLogger = logger
            let hangups = Task { [gateway] in
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    do {
                        if case let .invalid(problems) = try await gateway.reload() {
                            for problem in problems { FileHandle.standardError.write(Data("reload refused: \(problem)\n".utf8)) }
                        }
                    } catch {
                        hangupLogger.error("reload failed", metadata: ["error": "\(error)"])
                    }
                }
            }
            defer { hangups.cancel() }
            try await app.runService(gracefulShutdownSignals: [.sigterm, .sigint])
        }
    }
}

extension ServeCommand {
    /// Tells a person on the terminal where the gateway is and how to send it the example events.
    static func announce(scheme: String, host: String, port: Int, workflows: [Workflow]) {
        let url = "\(scheme)://\(host):\(port)"
        var lines = ["switchboard listening on \(url)"]
        lines.append("workflows: \(workflows.map(\.id).joined(separator: ", "))")
        lines.append("""
            send an example event (with a key from `switchboard keys create --name me`):
              curl -s -X POST \(url)/v1/events -H "Authorization: Bearer $SWITCHBOARD_API_KEY" \\
                -H 'Content-Type: application/json' --data @fixtures/events/inquiry-minor.json
              curl -s \(url)/v1/runs -H "Authorization: Bearer $SWITCHBOARD_API_KEY"
            """)
        FileHandle.standardOutput.write(Data((lines.joined(separator: "\n") + "\n").utf8))
    }
}

struct MigrateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate", abstract: "Create the database if needed and apply every migration.")
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        try await database.withStore { _ in }
        print("database is up to date: \(try database.url())")
    }
}
