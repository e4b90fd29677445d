/// Splits CEL source into tokens. Positions are offsets in Unicode scalars.
struct Lexer {
    private let s: [Unicode.Scalar]
    private var i = 0

    static let reservedWords: Set<String> = [
        "as", "break", "const", "continue", "else", "for", "function", "if", "import", "let", "loop", "package",
        "namespace", "return", "var", "void", "while",
    ]

    init(_ source: SourceText) { s = source.scalars }

    mutating func tokenize() throws(CELError) -> [PositionedToken] {
        var tokens: [PositionedToken] = []
        while true {
            let token = try next()
            tokens.append(token)
            if token.token == .end { return tokens }
        }
    }

    private func peek(_ ahead: Int = 0) -> Unicode.Scalar? { i + ahead < s.count ? s[i + ahead] : nil }

    private func error(_ message: String, at offset: Int) -> CELError { CELError(.syntax, message, offset: offset) }

    private mutating func skipTrivia() {
        while let c = peek() {
            if c == " " || c == "\t" || c == "\n" || c == "\r" || c == "\u{0C}" {
                i += 1
            } else if c == "/", peek(1) == "/" {
                while let c = peek(), c != "\n" { i += 1 }
            } else {
                return
            }
        }
    }

    private mutating func next() throws(CELError) -> PositionedToken {
        skipTrivia()
        let start = i
        guard let c = peek() else { return PositionedToken(token: .end, offset: i) }

        if isDigit(c) || (c == "." && peek(1).map(isDigit) == true) {
            return PositionedToken(token: try number(), offset: start)
        }
        if c == "\"" || c == "'" {
            return PositionedToken(token: .string(try stringLiteral(raw: false)), offset: start)
        }
        if isIdentifierStart(c) {
            // String and bytes prefixes: r, b, rb, br (any case) directly before a quote.
            var prefix = ""
            var j = i
            while j < s.count, j - i < 2, "rRbB".unicodeScalars.contains(s[j]) { prefix.unicodeScalars.append(s[j]); j += 1 }
            if !prefix.isEmpty, j < s.count, s[j] == "\"" || s[j] == "'" {
                let lower = prefix.lowercased()
                if lower == "r" || lower == "b" || lower == "rb" || lower == "br" {
                    i = j
                    let raw = lower.contains("r")
                    if lower.contains("b") {
                        return PositionedToken(token: .bytes(try bytesLiteral(raw: raw)), offset: start)
                    }
                    return PositionedToken(token: .string(try stringLiteral(raw: raw)), offset: start)
                }
            }
            var name = ""
            while let c = peek(), isIdentifierStart(c) || isDigit(c) { name.unicodeScalars.append(c); i += 1 }
            let token: Token
            switch name {
            case "true": token = .trueLiteral
            case "false": token = .falseLiteral
            case "null": token = .nullLiteral
            case "in": token = .inKeyword
            default: token = Self.reservedWords.contains(name) ? .reserved(name) : .identifier(name)
            }
            return PositionedToken(token: token, offset: start)
        }
        if c == "`" {
            i += 1
            var name = ""
            while let c = peek(), c != "`" {
                guard isIdentifierStart(c) || isDigit(c) || c == "." || c == "-" || c == "/" || c == " " else {
                    throw error("character '\(c)' is not allowed in a quoted field name", at: i)
                }
                name.unicodeScalars.append(c)
                i += 1
            }
            guard peek() == "`" else { throw error("quoted field name is not closed with '`'", at: start) }
            i += 1
            guard !name.isEmpty else { throw error("quoted field name is empty", at: start) }
            return PositionedToken(token: .quotedIdentifier(name), offset: start)
        }
        let two = peek(1).map { String(c) + String($0) } ?? ""
        if ["==", "!=", "<=", ">=", "&&", "||"].contains(two) {
            i += 2
            return PositionedToken(token: .punct(two), offset: start)
        }
        if "()[]{}.,:?!-+*/%<>".unicodeScalars.contains(c) {
            i += 1
            return PositionedToken(token: .punct(String(c)), offset: start)
        }
        if c == "=" { throw error("unexpected '=': use '==' to compare", at: start) }
        if c == "&" { throw error("unexpected '&': use '&&' for logical and", at: start) }
        if c == "|" { throw error("unexpected '|': use '||' for logical or", at: start) }
        throw error("unexpected character '\(c.escaped(asASCII: true))'", at: start)
    }

    private func isDigit(_ c: Unicode.Scalar) -> Bool { c.value >= 48 && c.value <= 57 }
    private func isHex(_ c: Unicode.Scalar) -> Bool { isDigit(c) || ("a" ... "f").contains(c) || ("A" ... "F").contains(c) }
    private func isIdentifierStart(_ c: Unicode.Scalar) -> Bool {
        ("a" ... "z").contains(c) || ("A" ... "Z").contains(c) || c == "_"
    }

    private mutating func number() throws(CELError) -> Token {
        let start = i
        if peek() == "0", let x = peek(1), x == "x" || x == "X" {
            i += 2
            var digits = ""
            while let c = peek(), isHex(c) { digits.unicodeScalars.append(c); i += 1 }
            guard !digits.isEmpty else { throw error("hexadecimal literal has no digits", at: start) }
            guard let value = UInt64(digits, radix: 16) else { throw error("integer literal is out of range", at: start) }
            return try integerSuffix(value, start: start)
        }
        var text = ""
        var isDouble = false
        while let c = peek(), isDigit(c) { text.unicodeScalars.append(c); i += 1 }
        if peek() == ".", let d = peek(1), isDigit(d) {
            isDouble = true
            text += "."
            i += 1
            while let c = peek(), isDigit(c) { text.unicodeScalars.append(c); i += 1 }
        }
        if let e = peek(), e == "e" || e == "E" {
            var j = i + 1
            if j < s.count, s[j] == "+" || s[j] == "-" { j += 1 }
            if j < s.count, isDigit(s[j]) {
                isDouble = true
                text += String(s[i ..< j].map(Character.init))
                i = j
                while let c = peek(), isDigit(c) { text.unicodeScalars.append(c); i += 1 }
            }
        }
        if isDouble {
            guard let value = Double(text.hasPrefix(".") ? "0" + text : text) else {
                throw error("malformed floating-point literal '\(text)'", at: start)
            }
            return .double(value)
        }
        guard let value = UInt64(text) else { throw error("integer literal '\(text)' is out of range", at: start) }
        return try integerSuffix(value, start: start)
    }

    private mutating func integerSuffix(_ value: UInt64, start: Int) throws(CELError) -> Token {
        if let u = peek(), u == "u" || u == "U" {
            i += 1
            return .uint(value)
        }
        if value == UInt64(Int64.max) + 1 { return .int(value, negativeMin: true) }
        guard value <= UInt64(Int64.max) else { throw error("integer literal is out of range for int", at: start) }
        return .int(value, negativeMin: false)
    }

    /// Reads a quoted literal's content as a sequence of code points (or bytes via escapes).
    private enum Piece { case scalar(Unicode.Scalar), byte(UInt8) }

    private mutating func quoted(raw: Bool, bytes: Bool) throws(CELError) -> [Piece] {
        let start = i
        let quote = s[i]
        let triple = peek(1) == quote && peek(2) == quote
        i += triple ? 3 : 1
        var pieces: [Piece] = []
        while true {
            guard let c = peek() else { throw error("string literal is not closed", at: start) }
            if c == quote && (!triple || (peek(1) == quote && peek(2) == quote)) {
                i += triple ? 3 : 1
                return pieces
            }
            if !triple && (c == "\n" || c == "\r") {
                throw error("string literal is not closed before the end of the line", at: start)
            }
            if c == "\\" && !raw {
                pieces.append(try escape(bytes: bytes))
                continue
            }
            if c == "\\" && raw, let n = peek(1), n == quote {
                // In raw strings a backslash still keeps the quote from closing the literal.
                pieces.append(.scalar(c))
                pieces.append(.scalar(n))
                i += 2
                continue
            }
            pieces.append(.scalar(c))
            i += 1
        }
    }

    private mutating func escape(bytes: Bool) throws(CELError) -> Piece {
        let start = i
        i += 1
        guard let c = peek() else { throw error("escape sequence at the end of the expression", at: start) }
        i += 1
        switch c {
        case "\\": return .scalar("\\")
        case "?": return .scalar("?")
        case "\"": return .scalar("\"")
        case "'": return .scalar("'")
        case "`": return .scalar("`")
        case "a": return .scalar("\u{07}")
        case "b": return .scalar("\u{08}")
        case "f": return .scalar("\u{0C}")
        case "n": return .scalar("\n")
        case "r": return .scalar("\r")
        case "t": return .scalar("\t")
        case "v": return .scalar("\u{0B}")
        case "x", "X":
            let value = try hexDigits(2, start: start)
            return bytes ? .byte(UInt8(value)) : .scalar(Unicode.Scalar(value)!)
        case "u", "U":
            guard !bytes else { throw error("\\\(c) escapes are not allowed in bytes literals", at: start) }
            let value = try hexDigits(c == "u" ? 4 : 8, start: start)
            guard let scalar = Unicode.Scalar(value) else {
                throw error("escape \\\(c) names an invalid code point", at: start)
            }
            return .scalar(scalar)
        case "0" ... "3":
            guard let d1 = peek(), let d2 = peek(1), ("0" ... "7").contains(d1), ("0" ... "7").contains(d2) else {
                throw error("octal escape needs three digits", at: start)
            }
            i += 2
            let value = (c.value - 48) * 64 + (d1.value - 48) * 8 + (d2.value - 48)
            return bytes ? .byte(UInt8(value)) : .scalar(Unicode.Scalar(value)!)
        default:
            throw error("unknown escape sequence '\\\(c)'", at: start)
        }
    }

    private mutating func hexDigits(_ count: Int, start: Int) throws(CELError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0 ..< count {
            guard let c = peek(), isHex(c) else { throw error("escape needs \(count) hexadecimal digits", at: start) }
            value = value << 4 | UInt32(Int(String(c), radix: 16)!)
            i += 1
        }
        return value
    }

    private mutating func stringLiteral(raw: Bool) throws(CELError) -> String {
        var text = ""
        for piece in try quoted(raw: raw, bytes: false) {
            if case let .scalar(scalar) = piece { text.unicodeScalars.append(scalar) }
        }
        return text
    }

    private mutating func bytesLiteral(raw: Bool) throws(CELError) -> [UInt8] {
        var result: [UInt8] = []
        for piece in try quoted(raw: raw, bytes: true) {
            switch piece {
            case let .byte(b): result.append(b)
            case let .scalar(scalar): result.append(contentsOf: String(scalar).utf8)
            }
        }
        return result
    }
}
