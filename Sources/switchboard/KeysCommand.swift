import ArgumentParser
import CEL
import Foundation
import Switchboard

struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Create, list and revoke API keys.",
        subcommands: [Create.self, List.self, Revoke.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a key and print it alone on stdout (it is not shown again).")
        @Option(help: "A name for the key") var name: String
        @Option(help: "Comma-separated scopes (default: every scope)") var scopes: String?
        @Option(help: "How long the key works, such as 30d or 12h (default: until revoked)") var expires: String?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            var scopeList = APIKeys.allScopes
            if let scopes {
                scopeList = scopes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                for scope in scopeList where !APIKeys.allScopes.contains(scope) && scope != "*" {
                    throw UserError("unknown scope '\(scope)'; scopes are: \(APIKeys.allScopes.joined(separator: ", "))")
                }
            }
            var expiresAt: Date?
            if let expires {
                guard let lifetime = ConfigDuration.parse(expires), lifetime > .zero else {
                    throw UserError("--expires must be a duration such as 30d, 12h or 90m, got '\(expires)'")
                }
                expiresAt = Date().addingTimeInterval(Double(lifetime.components.seconds))
            }
            let key = APIKeys.generate()
            try await database.withStore { store in
                try await store.createAPIKey(APIKeyRecord(name: name, hash: APIKeys.hash(key), scopes: scopeList, createdAt: Date(),
                                                          expiresAt: expiresAt),
                                             audit: .commandLine("key.created", target: "key:\(name)",
                                                                 details: ["scopes": .array(scopeList.map(JSON.string)),
                                                                           "expires_at": expiresAt.map { .string($0.ISO8601Format()) } ?? .null]))
            }
            print(key)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (names, scopes, state; never the keys).")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            for key in try await database.withStore({ try await $0.apiKeys() }) {
                let state = if key.revokedAt != nil {
                    "revoked"
                } else if let expiresAt = key.expiresAt {
                    key.isValid(at: Date()) ? "active until \(expiresAt.ISO8601Format())" : "expired \(expiresAt.ISO8601Format())"
                } else {
                    "active"
                }
                print("\(key.name)\t\(state)\t\(key.scopes.joined(separator: ","))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by name.")
        @Argument(help: "The key's name") var name: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let audit = AuditEntry.commandLine("key.revoked", target: "key:\(name)")
            guard try await database.withStore({ try await $0.revokeAPIKey(named: name, audit: audit) }) else {
                throw UserError("no active key named '\(name)'")
            }
            print("revoked \(name)")
        }
    }
}
