import CEL
import Foundation

/// Refuses outbound requests to private, loopback, link-local, unique-local, CGNAT,
/// documentation, multicast and cloud-metadata addresses, unless allowed.
///
/// The check is made on the addresses the host name resolves to, when the request is sent.
/// (The HTTP client resolves the name again to connect; a name that changes its answer between
/// the two lookups is not caught. Pinning the address would break TLS name checks.)
public struct SSRFGuard: Sendable {
    /// Every address is allowed (`--allow-private-networks`).
    public var allowAll: Bool
    /// Ranges allowed even though they are private (a connector's `allow_networks`).
    public var allowed: [CIDR]

    public init(allowAll: Bool = false, allowed: [CIDR] = []) {
        self.allowAll = allowAll
        self.allowed = allowed
    }

    static let blocked: [CIDR] = [
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
        "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
        "240.0.0.0/4", "::/128", "::1/128", "64:ff9b::/96", "100::/64", "2001:db8::/32", "fc00::/7", "fe80::/10", "ff00::/8",
    ].compactMap { CIDR($0) }

    /// Why an address may not be reached, or nil when it may.
    public func refusal(for address: IPAddress) -> String? {
        if allowAll || allowed.contains(where: { $0.contains(address) }) { return nil }
        if let range = Self.blocked.first(where: { $0.contains(address) }) {
            return "\(address) is in the non-public range \(range.masked)"
        }
        return nil
    }

    /// Resolves the host and checks every address it has; the first refusal, or nil.
    public func check(host: String) async -> String? {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if let literal = IPAddress(bare) { return refusal(for: literal) }
        if allowAll { return nil }
        let addresses = await Self.resolve(bare)
        if addresses.isEmpty { return nil }  // the client reports the lookup failure as a connect error
        for address in addresses { if let reason = refusal(for: address) { return "\(host) resolves to \(reason)" } }
        return nil
    }

    static func resolve(_ host: String) async -> [IPAddress] {
        await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var hints = addrinfo()
                hints.ai_family = AF_UNSPEC
                hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
                var result: UnsafeMutablePointer<addrinfo>?
                guard getaddrinfo(host, nil, &hints, &result) == 0, let first = result else {
                    continuation.resume(returning: [])
                    return
                }
                defer { freeaddrinfo(first) }
                var addresses: [IPAddress] = []
                var current: UnsafeMutablePointer<addrinfo>? = first
                while let info = current {
                    // Read the raw address bytes: text forms such as ::ffff:127.0.0.1 must not slip through.
                    if info.pointee.ai_family == AF_INET {
                        info.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                            addresses.append(IPAddress(ipv4: UInt32(bigEndian: pointer.pointee.sin_addr.s_addr)))
                        }
                    } else if info.pointee.ai_family == AF_INET6 {
                        info.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                            var address = pointer.pointee.sin6_addr
                            let bytes = withUnsafeBytes(of: &address) { Array($0) }
                            var high: UInt64 = 0
                            var low: UInt64 = 0
                            for byte in bytes[0 ..< 8] { high = high << 8 | UInt64(byte) }
                            for byte in bytes[8 ..< 16] { low = low << 8 | UInt64(byte) }
                            addresses.append(IPAddress(ipv6: high, low))
                        }
                    }
                    current = info.pointee.ai_next
                }
                continuation.resume(returning: addresses)
            }
        }
    }
}
