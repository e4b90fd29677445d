import ArgumentParser
import CEL
import Foundation
import Switchboard

struct DeliveriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries", abstract: "Read the delivery log and send failed deliveries again.",
        subcommands: [List.self, Show.self, Retry.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List deliveries, newest first.")
        @Option(help: "Only this run's deliveries") var run: String?
        @Option(help: "Only this connector's deliveries") var connector: String?
        @Option(help: "pending, sending, succeeded, failed or dead") var status: String?
        @Option(help: "At most this many (default 50)") var limit: Int = 50
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            var query = DeliveryQuery(run: run.map(RunID.init), connector: connector, limit: limit)
            if let status {
                guard let parsed = DeliveryStatus(rawValue: status) else {
                    throw UserError("--status must be one of: " + DeliveryStatus.allCases.map(\.rawValue).joined(separator: ", "))
                }
                query.status = parsed
            }
            let filter = query
            for delivery in try await database.withStore({ try await $0.listDeliveries(filter) }) {
                print([delivery.id.rawValue, delivery.status.rawValue, delivery.connector, delivery.operation,
                       "attempts=\(delivery.attemptCount)", delivery.runID.rawValue, delivery.lastError?.message ?? ""]
                    .joined(separator: "\t"))
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a delivery with every attempt, as JSON.")
        @Argument(help: "The delivery id") var id: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = id
            guard let record = try await database.withStore({ try await $0.delivery(DeliveryID(id)) }) else { throw UserError("no delivery '\(id)'") }
            print(DeliveryPresentation.json(record).text)
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send a failed or dead delivery again; a running gateway picks it up and resumes its run.")
        @Argument(help: "The delivery id") var id: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let id = id
            let audit = AuditEntry.commandLine("delivery.retried", target: "delivery:\(id)")
            switch try await database.withStore({ try await $0.retryDelivery(DeliveryID(id), at: Date(), audit: audit) }) {
            case let .reopened(run): print("\(id) will be sent again (run \(run))")
            case .notFound: throw UserError("no delivery '\(id)'")
            case let .notRetryable(status):
                throw UserError("delivery '\(id)' is \(status.rawValue); only failed and dead deliveries can be sent again")
            }
        }
    }
}
