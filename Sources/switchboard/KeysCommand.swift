import ArgumentParser
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
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            var scopeList = APIKeys.allScopes
            if let scopes {
                scopeList = scopes.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                for scope in scopeList where !APIKeys.allScopes.contains(scope) && scope != "*" {
                    throw UserError("unknown scope '\(scope)'; scopes are: \(APIKeys.allScopes.joined(separator: ", "))")
                }
            }
            let key = APIKeys.generate()
            try await database.withStore { store in
                try await store.createAPIKey(APIKeyRecord(name: name, hash: APIKeys.hash(key), scopes: scopeList, createdAt: Date()))
            }
            print(key)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List keys (names, scopes, state; never the keys).")
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            for key in try await database.withStore({ try await $0.apiKeys() }) {
                let state = key.revokedAt == nil ? "active" : "revoked"
                print("\(key.name)\t\(state)\t\(key.scopes.joined(separator: ","))")
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key by name.")
        @Argument(help: "The key's name") var name: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            guard try await database.withStore({ try await $0.revokeAPIKey(named: name) }) else { throw UserError("no active key named '\(name)'") }
            print("revoked \(name)")
        }
    }
}
