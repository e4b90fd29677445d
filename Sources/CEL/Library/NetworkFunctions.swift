/// The network extension: `net.IP` and `net.CIDR` values and their functions.
enum NetworkFunctions {
    static let functions: [CELFunction] = [
        CELFunction("ip", style: .both, arities: [1]) { args, _ throws(CELError) in
            switch args[0] {
            case let .string(s): return .ip(try IPAddress.parse(s))
            case let .cidr(c): return .ip(c.address)
            default: throw .noSuchOverload("ip", args)
            }
        },
        CELFunction("cidr", style: .global, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("cidr", args) }
            return .cidr(try CIDR.parse(s))
        },
        CELFunction("isIP", style: .global, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("isIP", args) }
            return .bool(IPAddress(s) != nil)
        },
        CELFunction("isCIDR", style: .global, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("isCIDR", args) }
            return .bool(CIDR(s) != nil)
        },
        CELFunction("ip.isCanonical", style: .global, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("ip.isCanonical", args) }
            return .bool(try IPAddress.parse(s).description == s)
        },
        ipProperty("family") { .int(Int64($0.family)) },
        ipProperty("isUnspecified") { .bool($0.isUnspecified) },
        ipProperty("isLoopback") { .bool($0.isLoopback) },
        ipProperty("isGlobalUnicast") { .bool($0.isGlobalUnicast) },
        ipProperty("isLinkLocalMulticast") { .bool($0.isLinkLocalMulticast) },
        ipProperty("isLinkLocalUnicast") { .bool($0.isLinkLocalUnicast) },
        CELFunction("containsIP", style: .receiver, arities: [2]) { args, _ throws(CELError) in
            guard case let .cidr(c) = args[0] else { throw .noSuchOverload("containsIP", args) }
            switch args[1] {
            case let .ip(ip): return .bool(c.contains(ip))
            case let .string(s): return .bool(c.contains(try IPAddress.parse(s)))
            default: throw .noSuchOverload("containsIP", args)
            }
        },
        CELFunction("containsCIDR", style: .receiver, arities: [2]) { args, _ throws(CELError) in
            guard case let .cidr(c) = args[0] else { throw .noSuchOverload("containsCIDR", args) }
            switch args[1] {
            case let .cidr(other): return .bool(c.contains(other))
            case let .string(s): return .bool(c.contains(try CIDR.parse(s)))
            default: throw .noSuchOverload("containsCIDR", args)
            }
        },
        CELFunction("masked", style: .receiver, arities: [1]) { args, _ throws(CELError) in
            guard case let .cidr(c) = args[0] else { throw .noSuchOverload("masked", args) }
            return .cidr(c.masked)
        },
        CELFunction("prefixLength", style: .receiver, arities: [1]) { args, _ throws(CELError) in
            guard case let .cidr(c) = args[0] else { throw .noSuchOverload("prefixLength", args) }
            return .int(Int64(c.prefixLength))
        },
    ]

    private static func ipProperty(_ name: String, _ read: @escaping @Sendable (IPAddress) -> CELValue) -> CELFunction {
        CELFunction(name, style: .receiver, arities: [1]) { args, _ throws(CELError) in
            guard case let .ip(ip) = args[0] else { throw .noSuchOverload(name, args) }
            return read(ip)
        }
    }
}
