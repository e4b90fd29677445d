import CEL
import Foundation
import Logging
import Testing
@testable import Switchboard

/// The connector guide (docs/writing-a-connector.md), as a test: a third-party kind registered like the built-in
/// ones, validated, run through the delivery engine against a loopback receiver, and checked live.
@Suite("Writing a connector: the ticketing example", .timeLimit(.minutes(3)))
struct TicketingConnectorTests {
    static func configure(_ directory: TemporaryDirectory, receiver: String, with: String) throws {
        try directory.write("connectors/tickets.yaml", """
            id: tickets
            kind: ticketing
            base_url: \(receiver)
            api_token: t0ken
            project: RISK
            allow_networks: [127.0.0.1/32]
            retry: { max_attempts: 3, initial_interval: 10ms }
            """)
        try directory.write("workflows/escalate.yaml", """
            id: escalate
            trigger: { api: { input: { case: { type: string, required: true } } } }
            steps:
              - id: ticket
                connector: tickets
                operation: create_ticket
                with: \(with)
            """)
    }

    static func registry() -> ConnectorRegistry {
        let registry = ConnectorRegistry()
        registry.register(HTTPConnector.self)
        registry.register(TicketingConnector.self)
        return registry
    }

    @Test("validate checks a step's with: against the operation's inputs")
    func validation() throws {
        let directory = try TemporaryDirectory()
        try Self.configure(directory, receiver: "http://127.0.0.1:9", with: "{ summary: x, priority: 3 }")
        let (_, problems) = Configuration.load(directory: directory.path, registry: Self.registry())
        let messages = problems.map(\.message)
        #expect(messages.contains { $0.contains("unknown input 'summary' for operation 'create_ticket'; expected title, description, priority") })
        #expect(messages.contains { $0.contains("operation 'create_ticket' needs the input 'title' (string)") })
        #expect(messages.contains { $0.contains("input 'priority' of 'create_ticket' must be string, got 3") })
        #expect(problems.allSatisfy { $0.file.hasSuffix("escalate.yaml") && $0.line == 7 })

        let (_, unknownKind) = Configuration.load(directory: directory.path)  // the shared registry has no ticketing
        #expect(unknownKind.contains { $0.message.contains("unknown connector kind 'ticketing'; expected one of: http, kyb, slack") })
    }

    @Test("a run creates a ticket through the delivery engine; the output is the ticket")
    func run() async throws {
        let receiver = TestReceiver(script: [.init(status: 503), .init(status: 201, body: #"{"key": "RISK-42", "url": "https://t.example/RISK-42"}"#)])
        try await receiver.serve {
            let directory = try TemporaryDirectory()
            try Self.configure(directory, receiver: receiver.url, with: #"{ title: "Case {{input.case}}", priority: high }"#)
            let (configuration, problems) = Configuration.load(directory: directory.path, registry: Self.registry())
            #expect(problems.isEmpty, "\(problems)")
            let store = try SQLiteStore(path: directory.file("db.sqlite"))
            try await store.migrate()
            var logger = Logger(label: "test")
            logger.logLevel = .warning
            let gateway = Gateway(store: store, configuration: configuration, pollInterval: .milliseconds(20), logger: logger)
            let workflow = try #require(configuration.workflow("escalate"))
            try await withThrowingDiscardingTaskGroup { group in
                for service in gateway.services { group.addTask { try await service.run() } }
                let run = try await gateway.startRun(workflow, input: ["case": "c-7"])
                _ = await gateway.engine.watcher.wait(for: run.id, timeout: .seconds(10), until: { $0.status.isFinished }) {
                    try await store.loadRun(run.id)?.run
                }
                let finished = try await store.loadRun(run.id)
                #expect(finished?.run.status == .completed)
                #expect(finished?.steps.first?.output == ["ticket_id": "RISK-42", "url": "https://t.example/RISK-42"])
                let sent = receiver.received
                #expect(sent.count == 2)
                #expect(sent.last?.path == "/projects/RISK/tickets")
                #expect(sent.last?.headers.first { $0.key.lowercased() == "authorization" }?.value == "Token t0ken")
                let body = try JSON.parse(Data((sent.last?.body ?? "").utf8))
                #expect(body["title"] == "Case c-7")
                #expect(body["external_ref"] == .string(run.id.rawValue))
                let check = await ConnectorCheck.run(configuration.connectorInstances["tickets"]!, allowPrivateNetworks: false)
                #expect(check.ok)
                group.cancelAll()
            }
        }
    }
}
