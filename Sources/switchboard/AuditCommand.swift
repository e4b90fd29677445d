import ArgumentParser
import CEL
import Foundation
import Switchboard

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "Print the audit log, newest first: keys, reviews, retries, list changes.")
    @Option(help: "How far back, such as 24h or 7d (default 24h)") var since: String = "24h"
    @Option(help: "Only this action, such as review.decided") var action: String?
    @Option(help: "Only this actor's name") var actor: String?
    @Option(help: "At most this many entries (1 to 500)") var limit: Int = 100
    @Flag(help: "One JSON object per line, as GET /v1/audit answers them") var json = false
    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        guard let window = ConfigDuration.parse(since), window > .zero else {
            throw UserError("--since must be a duration such as 24h or 7d, got '\(since)'")
        }
        guard (1 ... 500).contains(limit) else { throw UserError("--limit must be from 1 to 500, got \(limit)") }
        let query = AuditQuery(action: action, actor: actor, since: Date().addingTimeInterval(-Double(window.components.seconds)),
                               limit: limit)
        let entries = try await database.withStore { try await $0.auditLog(query) }
        for entry in entries {
            if json {
                print(entry.json.text)
            } else {
                let from = [entry.requestID.map { "request \($0)" }, entry.sourceIP.map { "from \($0)" }].compactMap { $0 }
                print([entry.at.ISO8601Format(), "\(entry.actorKind.rawValue):\(entry.actorName)", entry.action, entry.target, entry.outcome,
                       from.joined(separator: " ")].filter { !$0.isEmpty }.joined(separator: "\t"))
            }
        }
    }
}
