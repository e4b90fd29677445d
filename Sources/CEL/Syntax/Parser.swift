/// A recursive-descent parser for CEL's grammar (cel-spec doc/langdef.md), with macro expansion.
struct Parser {
    /// Limits that keep hostile input from exhausting the stack or memory.
    struct Limits: Sendable {
        /// Maximum source length in Unicode scalars.
        var maxLength = 100_000
        /// Maximum nesting of parentheses, lists, maps and calls while parsing.
        var maxNesting = 250
        /// Maximum height of the syntax tree (long operator chains count too).
        var maxDepth = 1_000
    }

    private var tokens: [PositionedToken]
    private var position = 0
    private var nesting = 0
    private let limits: Limits

    static func parse(_ source: SourceText, limits: Limits = Limits()) throws(CELError) -> Expr {
        guard source.scalars.count <= limits.maxLength else {
            throw CELError(.limit, "expression is \(source.scalars.count) characters long; the limit is \(limits.maxLength)", offset: 0)
        }
        var lexer = Lexer(source)
        var parser = Parser(tokens: try lexer.tokenize(), limits: limits)
        let expr = try parser.expression()
        guard case .end = parser.current.token else {
            throw parser.unexpected(expecting: "an operator or the end of the expression")
        }
        return expr
    }

    private init(tokens: [PositionedToken], limits: Limits) {
        self.tokens = tokens
        self.limits = limits
    }

    private var current: PositionedToken { tokens[min(position, tokens.count - 1)] }

    private mutating func advance() -> PositionedToken {
        let token = current
        position += 1
        return token
    }

    private func isPunct(_ p: String) -> Bool {
        if case let .punct(q) = current.token { return p == q }
        return false
    }

    private mutating func accept(_ p: String) -> Bool {
        guard isPunct(p) else { return false }
        _ = advance()
        return true
    }

    private mutating func expect(_ p: String, _ context: String) throws(CELError) {
        guard accept(p) else { throw unexpected(expecting: "'\(p)' \(context)") }
    }

    private func unexpected(expecting: String) -> CELError {
        if case .reserved(let word) = current.token {
            return CELError(.syntax, "'\(word)' is a reserved word and cannot be used as an identifier", offset: current.offset)
        }
        if case .end = current.token {
            return CELError(.syntax, "unexpected end of the expression, expected \(expecting)", offset: current.offset)
        }
        return CELError(.syntax, "unexpected \(current.token.display), expected \(expecting)", offset: current.offset)
    }

    private func node(_ kind: Expr.Kind, at offset: Int, _ children: [Expr]) throws(CELError) -> Expr {
        let expr = Expr(kind, at: offset, children: children)
        guard expr.depth <= limits.maxDepth else {
            throw CELError(.limit, "expression is nested more than \(limits.maxDepth) levels deep", offset: offset)
        }
        return expr
    }

    private mutating func enter() throws(CELError) {
        nesting += 1
        guard nesting <= limits.maxNesting else {
            throw CELError(.limit, "expression is nested more than \(limits.maxNesting) levels deep", offset: current.offset)
        }
    }

    private func call(_ function: String, _ args: [Expr], at offset: Int) throws(CELError) -> Expr {
        try node(.call(function: function, target: nil, args: args), at: offset, args)
    }

    // expr = conditionalOr ["?" conditionalOr ":" expr]
    private mutating func expression() throws(CELError) -> Expr {
        try enter()
        defer { nesting -= 1 }
        let condition = try conditionalOr()
        guard isPunct("?") else { return condition }
        let offset = advance().offset
        let whenTrue = try conditionalOr()
        try expect(":", "in the conditional expression")
        let whenFalse = try expression()
        return try call("_?_:_", [condition, whenTrue, whenFalse], at: offset)
    }

    private mutating func conditionalOr() throws(CELError) -> Expr {
        var lhs = try conditionalAnd()
        while isPunct("||") {
            let offset = advance().offset
            lhs = try call("_||_", [lhs, try conditionalAnd()], at: offset)
        }
        return lhs
    }

    private mutating func conditionalAnd() throws(CELError) -> Expr {
        var lhs = try relation()
        while isPunct("&&") {
            let offset = advance().offset
            lhs = try call("_&&_", [lhs, try relation()], at: offset)
        }
        return lhs
    }

    private static let relations: [String: String] = [
        "<": "_<_", "<=": "_<=_", ">": "_>_", ">=": "_>=_", "==": "_==_", "!=": "_!=_",
    ]

    private mutating func relation() throws(CELError) -> Expr {
        var lhs = try addition()
        while true {
            let function: String
            if case .inKeyword = current.token {
                function = "@in"
            } else if case let .punct(p) = current.token, let name = Self.relations[p] {
                function = name
            } else {
                return lhs
            }
            let offset = advance().offset
            lhs = try call(function, [lhs, try addition()], at: offset)
        }
    }

    private mutating func addition() throws(CELError) -> Expr {
        var lhs = try multiplication()
        while isPunct("+") || isPunct("-") {
            let op = advance()
            let function = op.token == .punct("+") ? "_+_" : "_-_"
            lhs = try call(function, [lhs, try multiplication()], at: op.offset)
        }
        return lhs
    }

    private mutating func multiplication() throws(CELError) -> Expr {
        var lhs = try unary()
        while isPunct("*") || isPunct("/") || isPunct("%") {
            let op = advance()
            let function = switch op.token {
            case .punct("*"): "_*_"
            case .punct("/"): "_/_"
            default: "_%_"
            }
            lhs = try call(function, [lhs, try unary()], at: op.offset)
        }
        return lhs
    }

    private mutating func unary() throws(CELError) -> Expr {
        if isPunct("!") {
            let offset = advance().offset
            try enter()
            defer { nesting -= 1 }
            return try call("!_", [try unary()], at: offset)
        }
        if isPunct("-") {
            let offset = advance().offset
            try enter()
            defer { nesting -= 1 }
            // A minus directly before a number literal makes a negative literal, so that
            // -9223372036854775808 is an int.
            switch current.token {
            case let .int(magnitude, _):
                _ = advance()
                let literal = try node(.literal(.int(magnitude == UInt64(Int64.max) + 1 ? .min : -Int64(magnitude))),
                                       at: offset, [])
                return try member(literal)
            case let .double(value):
                _ = advance()
                return try member(try node(.literal(.double(-value)), at: offset, []))
            default:
                return try call("-_", [try unary()], at: offset)
            }
        }
        return try member(try primary())
    }

    private mutating func member(_ start: Expr) throws(CELError) -> Expr {
        var expr = start
        while true {
            if isPunct(".") {
                _ = advance()
                let nameToken = advance()
                let name: String
                switch nameToken.token {
                case let .identifier(n), let .reserved(n), let .quotedIdentifier(n): name = n
                case .inKeyword: name = "in"
                case .trueLiteral: name = "true"
                case .falseLiteral: name = "false"
                case .nullLiteral: name = "null"
                default:
                    position -= 1
                    throw unexpected(expecting: "a field or method name after '.'")
                }
                if isPunct("("), case .quotedIdentifier = nameToken.token {
                    throw CELError(.syntax, "a quoted name cannot be called as a method", offset: nameToken.offset)
                }
                if isPunct("(") {
                    _ = advance()
                    let args = try arguments(closing: ")")
                    expr = try receiverCall(name, target: expr, args: args, at: nameToken.offset)
                } else {
                    expr = try node(.select(expr, field: name, testOnly: false), at: nameToken.offset, [expr])
                }
            } else if isPunct("[") {
                let offset = advance().offset
                try enter()
                let index = try expression()
                nesting -= 1
                try expect("]", "to close the index")
                expr = try call("_[_]", [expr, index], at: offset)
            } else {
                return expr
            }
        }
    }

    private mutating func arguments(closing: String) throws(CELError) -> [Expr] {
        try enter()
        defer { nesting -= 1 }
        var args: [Expr] = []
        if accept(closing) { return args }
        while true {
            args.append(try expression())
            if accept(closing) { return args }
            try expect(",", "or '\(closing)' in the argument list")
        }
    }

    private mutating func primary() throws(CELError) -> Expr {
        let token = advance()
        let offset = token.offset
        switch token.token {
        case let .int(magnitude, negativeMin):
            if negativeMin {
                throw CELError(.syntax, "integer literal \(magnitude) is out of range for int", offset: offset)
            }
            return try node(.literal(.int(Int64(magnitude))), at: offset, [])
        case let .uint(v): return try node(.literal(.uint(v)), at: offset, [])
        case let .double(v): return try node(.literal(.double(v)), at: offset, [])
        case let .string(v): return try node(.literal(.string(v)), at: offset, [])
        case let .bytes(v): return try node(.literal(.bytes(v)), at: offset, [])
        case .trueLiteral: return try node(.literal(.bool(true)), at: offset, [])
        case .falseLiteral: return try node(.literal(.bool(false)), at: offset, [])
        case .nullLiteral: return try node(.literal(.null), at: offset, [])
        case let .identifier(name):
            if isPunct("(") {
                _ = advance()
                let args = try arguments(closing: ")")
                return try globalCall(name, args: args, at: offset)
            }
            return try node(.identifier(name), at: offset, [])
        case .punct("."):
            // A leading dot names the root scope: `.name` is `name`.
            let next = advance()
            guard case let .identifier(name) = next.token else {
                position -= 1
                throw unexpected(expecting: "an identifier after the leading '.'")
            }
            if isPunct("(") {
                _ = advance()
                return try globalCall(name, args: try arguments(closing: ")"), at: offset)
            }
            return try node(.identifier(name), at: offset, [])
        case .punct("("):
            try enter()
            defer { nesting -= 1 }
            let inner = try expression()
            try expect(")", "to close the parenthesis opened at column \(offset + 1)")
            return inner
        case .punct("["):
            let elements = try arguments(closing: "]")
            return try node(.list(elements), at: offset, elements)
        case .punct("{"):
            return try mapLiteral(at: offset)
        default:
            position -= 1
            throw unexpected(expecting: "a value, an identifier or '('")
        }
    }

    private mutating func mapLiteral(at offset: Int) throws(CELError) -> Expr {
        try enter()
        defer { nesting -= 1 }
        var entries: [(key: Expr, value: Expr)] = []
        var children: [Expr] = []
        if !accept("}") {
            while true {
                let key = try expression()
                try expect(":", "between a map key and its value")
                let value = try expression()
                entries.append((key, value))
                children += [key, value]
                if accept("}") { break }
                try expect(",", "or '}' in the map literal")
                if accept("}") { break }
            }
        }
        return try node(.map(entries), at: offset, children)
    }

    private func globalCall(_ name: String, args: [Expr], at offset: Int) throws(CELError) -> Expr {
        if name == "has" {
            guard args.count == 1, case let .select(operand, field, _) = args[0].kind else {
                throw CELError(.syntax, "has() takes one field selection, like has(data.inquiry.birthdate)", offset: offset)
            }
            return try node(.select(operand, field: field, testOnly: true), at: offset, [operand])
        }
        return try node(.call(function: name, target: nil, args: args), at: offset, args)
    }

    private func receiverCall(_ name: String, target: Expr, args: [Expr], at offset: Int) throws(CELError) -> Expr {
        let macro: Expr.Macro?
        switch (name, args.count) {
        case ("all", 2): macro = .all
        case ("exists", 2): macro = .exists
        case ("exists_one", 2), ("existsOne", 2): macro = .existsOne
        case ("map", 2): macro = .map
        case ("map", 3): macro = .mapFilter
        case ("filter", 2): macro = .filter
        default: macro = nil
        }
        if let macro {
            guard case let .identifier(variable) = args[0].kind else {
                throw CELError(.syntax, "the first argument of \(name)() must be a variable name", offset: args[0].offset)
            }
            let rest = Array(args.dropFirst())
            return try node(.comprehension(macro, range: target, variable: variable, args: rest), at: offset,
                            [target] + rest)
        }
        return try node(.call(function: name, target: target, args: args), at: offset, [target] + args)
    }
}
