/// The strings extension: lowerAscii, upperAscii, trim, split and join.
enum StringFunctions {
    static let functions: [CELFunction] = [
        CELFunction("lowerAscii", style: .receiver, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("lowerAscii", args) }
            return .string(mapASCII(s) { $0 >= 65 && $0 <= 90 ? $0 + 32 : $0 })
        },
        CELFunction("upperAscii", style: .receiver, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("upperAscii", args) }
            return .string(mapASCII(s) { $0 >= 97 && $0 <= 122 ? $0 - 32 : $0 })
        },
        CELFunction("trim", style: .receiver, arities: [1]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0] else { throw .noSuchOverload("trim", args) }
            let scalars = s.unicodeScalars
            guard let start = scalars.firstIndex(where: { !isWhitespace($0) }) else { return .string("") }
            let end = scalars.lastIndex(where: { !isWhitespace($0) })!
            return .string(String(scalars[start ... end]))
        },
        CELFunction("split", style: .receiver, arities: [2, 3]) { args, _ throws(CELError) in
            guard case let .string(s) = args[0], case let .string(separator) = args[1] else {
                throw .noSuchOverload("split", args)
            }
            var limit = -1
            if args.count == 3 {
                guard case let .int(l) = args[2] else { throw .noSuchOverload("split", args) }
                limit = Int(clamping: l)
            }
            return .list(split(s, separator: separator, limit: limit).map(CELValue.string))
        },
        CELFunction("join", style: .receiver, arities: [1, 2]) { args, _ throws(CELError) in
            guard case let .list(list) = args[0] else { throw .noSuchOverload("join", args) }
            var separator = ""
            if args.count == 2 {
                guard case let .string(s) = args[1] else { throw .noSuchOverload("join", args) }
                separator = s
            }
            var parts: [String] = []
            for element in list {
                guard case let .string(part) = element else {
                    throw .invalidArgument("join: list element \(Formatting.literal(element)) is not a string")
                }
                parts.append(part)
            }
            return .string(parts.joined(separator: separator))
        },
    ]

    private static func mapASCII(_ s: String, _ transform: (UInt8) -> UInt8) -> String {
        String(decoding: s.utf8.map(transform), as: UTF8.self)
    }

    /// Unicode White_Space, as Go's unicode.IsSpace (which trim follows).
    private static func isWhitespace(_ c: Unicode.Scalar) -> Bool {
        switch c.value {
        case 0x09 ... 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000 ... 0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    /// Go's strings.SplitN: limit 0 gives no parts, a negative limit all of them.
    static func split(_ s: String, separator: String, limit: Int) -> [String] {
        if limit == 0 { return [] }
        if limit == 1 { return [s] }
        let scalars = Array(s.unicodeScalars)
        if separator.isEmpty {
            var parts = scalars.map { String($0) }
            if limit > 0 && parts.count > limit {
                let rest = String(String.UnicodeScalarView(scalars[(limit - 1)...]))
                parts = Array(parts[..<(limit - 1)]) + [rest]
            }
            return parts
        }
        let sep = Array(separator.unicodeScalars)
        var parts: [String] = []
        var start = 0
        var i = 0
        while i + sep.count <= scalars.count {
            if limit > 0 && parts.count == limit - 1 { break }
            if Array(scalars[i ..< i + sep.count]) == sep {
                parts.append(String(String.UnicodeScalarView(scalars[start ..< i])))
                i += sep.count
                start = i
            } else {
                i += 1
            }
        }
        parts.append(String(String.UnicodeScalarView(scalars[start...])))
        return parts
    }
}
