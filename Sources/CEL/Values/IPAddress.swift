/// An IPv4 or IPv6 address, as the CEL network extension's `net.IP`.
///
/// IPv4-mapped IPv6 addresses written in hexadecimal (`::ffff:c0a8:1`) are unmapped to IPv4, so
/// they equal the IPv4 address; zones and dotted IPv4 inside IPv6 text are refused.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The upper and lower 64 bits of the 128-bit address; IPv4 uses the low 32 bits of `low`.
    public let high: UInt64
    public let low: UInt64
    public let isIPv4: Bool

    public init(ipv4 value: UInt32) {
        high = 0
        low = UInt64(value)
        isIPv4 = true
    }

    public init(ipv6 high: UInt64, _ low: UInt64) {
        if high == 0 && low >> 32 == 0xFFFF {
            self.init(ipv4: UInt32(truncatingIfNeeded: low))
        } else {
            self.init(rawHigh: high, low: low)
        }
    }

    /// 4 or 6.
    public var family: Int { isIPv4 ? 4 : 6 }
    /// Number of bits in an address of this family.
    public var bitWidth: Int { isIPv4 ? 32 : 128 }

    /// Parses dotted-quad IPv4 or RFC 4291 IPv6 text.
    public static func parse(_ text: String) throws(CELError) -> IPAddress {
        // One pass over the bytes: String.contains(String) goes through Foundation here, which
        // cost more than the whole parse.
        let bytes = Array(text.utf8)
        var colon = false
        var dot = false
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "%"): throw .invalidArgument("IP Address with zone value is not allowed: '\(text)'")
            case UInt8(ascii: ":"): colon = true
            case UInt8(ascii: "."): dot = true
            default: break
            }
        }
        if colon {
            if dot { throw .invalidArgument("IPv4-mapped IPv6 address is not allowed: '\(text)'") }
            guard let (high, low) = parseIPv6(bytes) else {
                throw .invalidArgument("IP Address '\(text)' parse error during conversion from string")
            }
            return IPAddress(ipv6: high, low)
        }
        guard let value = parseIPv4(bytes[...]) else {
            throw .invalidArgument("IP Address '\(text)' parse error during conversion from string")
        }
        return IPAddress(ipv4: value)
    }

    /// Parses text, returning nil instead of an error.
    public init?(_ text: String) {
        guard let address = try? Self.parse(text) else { return nil }
        self = address
    }

    static func parseIPv4(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var current = -1
        var digits = 0
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                guard current >= 0, parts < 3 else { return nil }
                value = value << 8 | UInt32(current)
                parts += 1
                current = -1
                digits = 0
            } else if byte >= 48 && byte <= 57 {
                if digits > 0 && current == 0 { return nil }  // leading zero
                current = (current < 0 ? 0 : current) * 10 + Int(byte - 48)
                digits += 1
                guard current <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard current >= 0, parts == 3 else { return nil }
        return value << 8 | UInt32(current)
    }

    static func parseIPv6(_ bytes: [UInt8]) -> (UInt64, UInt64)? {
        var groups: [UInt16] = []
        var gap: Int? = nil
        var index = 0
        if bytes.starts(with: [58, 58]) {
            gap = 0
            index = 2
            if bytes.count == 2 { return (0, 0) }
        } else if bytes.first == 58 {
            return nil
        }
        while index < bytes.count {
            var value: UInt32 = 0
            var digits = 0
            while index < bytes.count, let nibble = hexValue(bytes[index]) {
                value = value << 4 | UInt32(nibble)
                digits += 1
                index += 1
                guard digits <= 4 else { return nil }
            }
            guard digits > 0 else { return nil }
            groups.append(UInt16(value))
            if index == bytes.count { break }
            guard bytes[index] == 58 else { return nil }
            index += 1
            if index < bytes.count, bytes[index] == 58 {
                guard gap == nil else { return nil }
                gap = groups.count
                index += 1
                if index == bytes.count { break }
            } else if index == bytes.count {
                return nil
            }
        }
        if let gap {
            guard groups.count < 8 else { return nil }
            groups.insert(contentsOf: repeatElement(0, count: 8 - groups.count), at: gap)
        }
        guard groups.count == 8 else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for group in groups[0 ..< 4] { high = high << 16 | UInt64(group) }
        for group in groups[4 ..< 8] { low = low << 16 | UInt64(group) }
        return (high, low)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 48 ... 57: byte - 48
        case 97 ... 102: byte - 87
        case 65 ... 70: byte - 55
        default: nil
        }
    }

    /// The canonical text: dotted quad, or RFC 5952 IPv6 (lowercase, longest zero run compressed).
    public var description: String {
        if isIPv4 {
            let v = UInt32(truncatingIfNeeded: low)
            return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF)"
        }
        var groups: [UInt16] = []
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: high >> UInt64(shift))) }
        for shift in stride(from: 48, through: 0, by: -16) { groups.append(UInt16(truncatingIfNeeded: low >> UInt64(shift))) }
        var bestStart = -1, bestLength = 0, start = -1
        for i in 0 ... 8 {
            if i < 8 && groups[i] == 0 {
                if start < 0 { start = i }
            } else if start >= 0 {
                if i - start > bestLength { bestStart = start; bestLength = i - start }
                start = -1
            }
        }
        if bestLength < 2 { bestStart = -1 }
        var text = ""
        var i = 0
        while i < 8 {
            if i == bestStart {
                text += "::"
                i += bestLength
                continue
            }
            if !text.isEmpty && !text.hasSuffix(":") { text += ":" }
            text += String(groups[i], radix: 16)
            i += 1
        }
        return text
    }

    /// The address with all bits after `prefixLength` cleared.
    public func masked(to prefixLength: Int) -> IPAddress {
        if isIPv4 {
            let mask: UInt64 = prefixLength == 0 ? 0 : (0xFFFF_FFFF << UInt64(32 - prefixLength)) & 0xFFFF_FFFF
            return IPAddress(ipv4: UInt32(low & mask))
        }
        let highMask: UInt64 = prefixLength >= 64 ? .max : (prefixLength == 0 ? 0 : .max << UInt64(64 - prefixLength))
        let lowMask: UInt64 = prefixLength <= 64 ? 0 : (prefixLength >= 128 ? .max : .max << UInt64(128 - prefixLength))
        return IPAddress(rawHigh: high & highMask, low: low & lowMask)
    }

    private init(rawHigh: UInt64, low: UInt64) {
        high = rawHigh
        self.low = low
        isIPv4 = false
    }

    public var isUnspecified: Bool { high == 0 && low == 0 }
    public var isLoopback: Bool { isIPv4 ? low >> 24 == 127 : high == 0 && low == 1 }
    public var isMulticast: Bool { isIPv4 ? low >> 28 == 0xE : high >> 56 == 0xFF }
    public var isLinkLocalUnicast: Bool { isIPv4 ? low >> 16 == 0xA9FE : high >> 54 == 0x3FA }
    public var isLinkLocalMulticast: Bool { isIPv4 ? low >> 8 == 0xE0_0000 : high >> 48 == 0xFF02 }
    public var isGlobalUnicast: Bool {
        if isIPv4 && low == 0xFFFF_FFFF { return false }
        return !isUnspecified && !isLoopback && !isMulticast && !isLinkLocalUnicast
    }
}

/// An IP network, as the CEL network extension's `net.CIDR`: an address and a prefix length.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    public init(address: IPAddress, prefixLength: Int) {
        self.address = address
        self.prefixLength = prefixLength
    }

    /// Parses `192.168.0.0/24` or `2001:db8::/32`.
    public static func parse(_ text: String) throws(CELError) -> CIDR {
        if text.contains("%") { throw .invalidArgument("CIDR with zone value is not allowed: '\(text)'") }
        guard let slash = text.lastIndex(of: "/") else {
            throw .invalidArgument("network address parse error during conversion from string: '\(text)'")
        }
        let addressText = String(text[..<slash])
        let prefixText = text[text.index(after: slash)...]
        let address = try IPAddress.parse(addressText)
        guard !prefixText.isEmpty, prefixText.allSatisfy(\.isASCII), prefixText.count <= 3,
              let prefix = Int(prefixText), prefix >= 0, prefix <= address.bitWidth,
              prefixText == "0" || !prefixText.hasPrefix("0")
        else { throw .invalidArgument("network address parse error during conversion from string: '\(text)'") }
        return CIDR(address: address, prefixLength: prefix)
    }

    /// Parses text, returning nil instead of an error.
    public init?(_ text: String) {
        guard let cidr = try? Self.parse(text) else { return nil }
        self = cidr
    }

    public var description: String { "\(address)/\(prefixLength)" }

    /// The network with its host bits cleared.
    public var masked: CIDR { CIDR(address: address.masked(to: prefixLength), prefixLength: prefixLength) }

    public func contains(_ ip: IPAddress) -> Bool {
        ip.isIPv4 == address.isIPv4 && ip.masked(to: prefixLength) == address.masked(to: prefixLength)
    }

    public func contains(_ other: CIDR) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }
}
