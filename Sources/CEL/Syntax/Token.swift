/// A lexical token of CEL source.
enum Token: Equatable, Sendable {
    case int(UInt64, negativeMin: Bool)  // magnitude; negativeMin marks 9223372036854775808
    case uint(UInt64)
    case double(Double)
    case string(String)
    case bytes([UInt8])
    case identifier(String)
    case quotedIdentifier(String)  // `content-type`
    case reserved(String)
    case trueLiteral, falseLiteral, nullLiteral, inKeyword
    case punct(String)
    case end

    var display: String {
        switch self {
        case let .int(v, _): "'\(v)'"
        case let .uint(v): "'\(v)u'"
        case let .double(v): "'\(v)'"
        case .string: "a string"
        case .bytes: "a bytes literal"
        case let .identifier(name), let .reserved(name): "'\(name)'"
        case let .quotedIdentifier(name): "'`\(name)`'"
        case .trueLiteral: "'true'"
        case .falseLiteral: "'false'"
        case .nullLiteral: "'null'"
        case .inKeyword: "'in'"
        case let .punct(p): "'\(p)'"
        case .end: "the end of the expression"
        }
    }
}

struct PositionedToken: Sendable {
    let token: Token
    let offset: Int
}
