import CEL
import Foundation
import Synchronization

/// An immutable, indexed copy of every list, for `inList` lookups that are not linear in a list's size:
/// exact items are hashed; CIDR ranges are hashed by network per prefix length, so a lookup costs
/// one hash probe per distinct prefix length in the list.
public struct ListIndexSnapshot: Sendable {
    struct IPSet: Sendable {
        var exact: Set<IPAddress> = []
        /// Networks by prefix length, each a set of masked addresses.
        var networks: [Int: Set<IPAddress>] = [:]
        var v4Prefixes: [Int] = []
        var v6Prefixes: [Int] = []

        func contains(_ ip: IPAddress) -> Bool {
            if exact.contains(ip) { return true }
            for prefix in ip.isIPv4 ? v4Prefixes : v6Prefixes {
                if networks[prefix + (ip.isIPv4 ? 0 : 1000)]?.contains(ip.masked(to: prefix)) == true { return true }
            }
            return false
        }
    }

    enum Entry: Sendable {
        case ip(IPSet)
        case email(addresses: Set<String>, domains: Set<String>)
        case strings(Set<String>)
    }

    let entries: [String: Entry]
    public let revision: Int64

    public init(lists: [ListRecord] = [], revision: Int64 = 0) {
        var entries: [String: Entry] = [:]
        for list in lists { entries[list.name] = Self.index(list) }
        self.entries = entries
        self.revision = revision
    }

    static func index(_ list: ListRecord) -> Entry {
        switch list.kind {
        case .string:
            return .strings(Set(list.items))
        case .email:
            var addresses: Set<String> = []
            var domains: Set<String> = []
            for item in list.items {
                let lower = item.lowercased()
                if lower.hasPrefix("@") { domains.insert(String(lower.dropFirst())) }
                else if lower.contains("@") { addresses.insert(lower) }
                else { domains.insert(lower) }
            }
            return .email(addresses: addresses, domains: domains)
        case .ip:
            var set = IPSet()
            for item in list.items {
                if item.contains("/"), let cidr = CIDR(item) {
                    let key = cidr.prefixLength + (cidr.address.isIPv4 ? 0 : 1000)
                    set.networks[key, default: []].insert(cidr.masked.address)
                } else if let ip = IPAddress(item) {
                    set.exact.insert(ip)
                }
            }
            set.v4Prefixes = set.networks.keys.filter { $0 < 1000 }.sorted(by: >)
            set.v6Prefixes = set.networks.keys.filter { $0 >= 1000 }.map { $0 - 1000 }.sorted(by: >)
            return .ip(set)
        }
    }

    /// Whether an item that a list of this kind accepts is well formed; nil when it is, else why not.
    public static func problem(with item: String, kind: ListKind) -> String? {
        switch kind {
        case .string: return item.isEmpty ? "an empty string" : nil
        case .email:
            let parts = item.split(separator: "@", omittingEmptySubsequences: false)
            if item.isEmpty || parts.count > 2 || item.contains(" ") { return "'\(item)' is not an email address or domain" }
            return nil
        case .ip:
            if item.contains("/") { return CIDR(item) == nil ? "'\(item)' is not a CIDR range" : nil }
            return IPAddress(item) == nil ? "'\(item)' is not an IP address" : nil
        }
    }

    public func hasList(_ name: String) -> Bool { entries[name] != nil }

    /// The kind of a list, nil when there is no such list.
    public func kind(of name: String) -> ListKind? {
        switch entries[name] {
        case nil: nil
        case .strings: .string
        case .email: .email
        case .ip: .ip
        }
    }

    public func contains(list name: String, _ value: String) -> Bool {
        switch entries[name] {
        case nil: return false
        case let .strings(set): return set.contains(value)
        case let .email(addresses, domains):
            let lower = value.lowercased()
            if addresses.contains(lower) { return true }
            guard let at = lower.lastIndex(of: "@") else { return domains.contains(lower) }
            return domains.contains(String(lower[lower.index(after: at)...]))
        case let .ip(set):
            guard let ip = IPAddress(value) else { return false }
            return set.contains(ip)
        }
    }

    public func contains(list name: String, ip: IPAddress) -> Bool {
        switch entries[name] {
        case let .ip(set): return set.contains(ip)
        case .strings, .email: return contains(list: name, ip.description)
        case nil: return false
        }
    }
}

/// The current ``ListIndexSnapshot``, swapped whole when lists change.
public final class ListIndex: Sendable {
    private let current = Mutex(ListIndexSnapshot())

    public init() {}

    public var snapshot: ListIndexSnapshot { current.withLock { $0 } }

    /// Rebuilds the index from the store when its lists changed since the last load.
    public func refresh(from store: any Store, force: Bool = false) async throws {
        let revision = try await store.listsRevision()
        if !force, revision == snapshot.revision { return }
        let lists = try await store.lists()
        let next = ListIndexSnapshot(lists: lists, revision: revision)
        current.withLock { $0 = next }
    }
}
