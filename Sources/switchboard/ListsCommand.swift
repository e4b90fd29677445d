import ArgumentParser
import CEL
import Foundation
import Switchboard

struct ListsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lists", abstract: "Manage the lists that inList() reads.",
        subcommands: [Add.self, Remove.self, Show.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add items to a list, creating it if needed.")
        @Argument(help: "The list's name") var name: String
        @Argument(help: "Items to add") var items: [String]
        @Option(help: "ip, email or string (for a new list; default string)") var kind: String?
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            var listKind: ListKind?
            if let kind {
                guard let parsed = ListKind(rawValue: kind) else { throw UserError("--kind must be ip, email or string") }
                listKind = parsed
            }
            let (name, items) = (name, items)
            let effective = try await database.withStore { store in
                let existing = try await store.list(name)
                if let existing, let listKind, existing.kind != listKind {
                    throw UserError("list '\(name)' exists with kind \(existing.kind.rawValue), not \(listKind.rawValue)")
                }
                let effective = existing?.kind ?? listKind ?? .string
                let problems = items.compactMap { ListIndexSnapshot.problem(with: $0, kind: effective) }
                if !problems.isEmpty { throw UserError(problems.joined(separator: "; ")) }
                let audit = AuditEntry.commandLine(existing == nil ? "list.replaced" : "list.items_added", target: "list:\(name)",
                                                   details: ["items": .array(items.map(JSON.string))])
                if existing == nil {
                    try await store.putList(ListRecord(name: name, kind: effective, items: items), audit: audit)
                } else {
                    _ = try await store.addListItems(name, items: items, audit: audit)
                }
                return effective
            }
            print("\(name) (\(effective.rawValue)): added \(items.count) item(s)")
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Remove items from a list.")
        @Argument(help: "The list's name") var name: String
        @Argument(help: "Items to remove") var items: [String]
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let (name, items) = (name, items)
            let missing = try await database.withStore { store in
                var missing: [String] = []
                for item in items {
                    let audit = AuditEntry.commandLine("list.item_removed", target: "list:\(name)", details: ["item": .string(item)])
                    if try await !store.removeListItem(name, item: item, audit: audit) { missing.append(item) }
                }
                return missing
            }
            if !missing.isEmpty { throw UserError("list '\(name)' has no item(s): \(missing.joined(separator: ", "))") }
            print("\(name): removed \(items.count) item(s)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a list's kind and items.")
        @Argument(help: "The list's name") var name: String
        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let name = name
            guard let list = try await database.withStore({ try await $0.list(name) }) else { throw UserError("no list '\(name)'") }
            print("\(list.name) (\(list.kind.rawValue)), \(list.items.count) item(s)")
            for item in list.items { print(item) }
        }
    }
}

struct ConnectorsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "connectors", abstract: "Show configured connectors and check them live.", subcommands: [List.self, Test.self])

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a connector's harmless live call and say what is wrong, if anything.")
        @Argument(help: "The connector id") var id: String
        @OptionGroup var config: ConfigOptions
        @Flag(name: .customLong("allow-private-networks"), help: "Allow private addresses (env SWITCHBOARD_ALLOW_PRIVATE_NETWORKS=1)")
        var allowPrivateNetworks = false

        func run() async throws {
            let configuration = try config.load()
            guard configuration.connectors[id] != nil else { throw UserError("no connector '\(id)'") }
            guard let connector = configuration.connectorInstances[id] else {
                throw UserError("connector '\(id)' is of a kind this build cannot run")
            }
            let allow = allowPrivateNetworks || ProcessInfo.processInfo.environment["SWITCHBOARD_ALLOW_PRIVATE_NETWORKS"] == "1"
            let result = await ConnectorCheck.run(connector, allowPrivateNetworks: allow)
            guard result.ok else { throw UserError("\(id): \(result.status): \(result.detail)") }
            print("\(id): \(result.status): \(result.detail)")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List configured connectors, secrets redacted.")
        @OptionGroup var config: ConfigOptions

        func run() async throws {
            let configuration = try config.load()
            for connector in configuration.connectors.values.sorted(by: { $0.id < $1.id }) {
                print("\(connector.id)\t\(connector.kind)\t\(connector.redactedSettings.text)")
                for operation in configuration.connectorInstances[connector.id]?.operations ?? [] {
                    let inputs = operation.inputs.map { "\($0.name)\($0.required ? "" : "?"): \($0.type.rawValue)" }
                    let outputs = operation.outputs.map(\.name)
                    print("  \(operation.name)(\(inputs.joined(separator: ", ")))" + (outputs.isEmpty ? "" : " -> {\(outputs.joined(separator: ", "))}"))
                }
            }
        }
    }
}
