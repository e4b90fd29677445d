/// A CEL type, itself a value: `type(1) == int`.
public struct CELType: Hashable, Sendable, CustomStringConvertible {
    /// The type's name as CEL spells it (`int`, `google.protobuf.Timestamp`, `net.IP`).
    public let name: String

    public init(_ name: String) { self.name = name }

    public var description: String { name }

    public static let null = CELType("null_type")
    public static let bool = CELType("bool")
    public static let int = CELType("int")
    public static let uint = CELType("uint")
    public static let double = CELType("double")
    public static let string = CELType("string")
    public static let bytes = CELType("bytes")
    public static let list = CELType("list")
    public static let map = CELType("map")
    public static let timestamp = CELType("google.protobuf.Timestamp")
    public static let duration = CELType("google.protobuf.Duration")
    public static let type = CELType("type")
    public static let ip = CELType("net.IP")
    public static let cidr = CELType("net.CIDR")

    /// Types that an identifier in an expression can name.
    static let named: [String: CELType] = {
        var names: [String: CELType] = [:]
        for type in [CELType.null, .bool, .int, .uint, .double, .string, .bytes, .list, .map, .timestamp, .duration,
                     .type, .ip, .cidr]
        {
            names[type.name] = type
        }
        return names
    }()
}
