/// Text forms of values: `string(double)` as cel-go prints it, and literals for messages.
enum Formatting {
    /// Formats a double as Go's `strconv.FormatFloat(v, 'g', -1, 64)`: shortest round-trip digits,
    /// exponent form below 1e-4 and from 1e6 on (`1e+06`).
    static func double(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value < 0 ? "-Inf" : "+Inf" }
        if value == 0 { return value.sign == .minus ? "-0" : "0" }
        // Swift's description gives the shortest digits that round-trip.
        let (digits, exponent) = decimalDigits(of: abs(value))
        let sign = value < 0 ? "-" : ""
        let exp = exponent - 1  // exponent of the first digit
        if exp < -4 || exp >= 6 {
            var mantissa = String(digits.first!)
            if digits.count > 1 { mantissa += "." + digits.dropFirst() }
            let e = abs(exp)
            return sign + mantissa + "e" + (exp < 0 ? "-" : "+") + (e < 10 ? "0" : "") + String(e)
        }
        if exponent <= 0 { return sign + "0." + String(repeating: "0", count: -exponent) + digits }
        if exponent >= digits.count { return sign + digits + String(repeating: "0", count: exponent - digits.count) }
        let split = digits.index(digits.startIndex, offsetBy: exponent)
        return sign + digits[..<split] + "." + digits[split...]
    }

    /// The shortest significant digits of a positive double and the position of the decimal point.
    private static func decimalDigits(of value: Double) -> (String, Int) {
        let text = "\(value)"  // e.g. "123.456", "1e-05", "1.2345e+20"
        var mantissa = Substring(text)
        var exponent = 0
        if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
            mantissa = text[..<e]
            exponent = Int(text[text.index(after: e)...]) ?? 0
        }
        var integerPart = mantissa
        var fractionPart: Substring = ""
        if let dot = mantissa.firstIndex(of: ".") {
            integerPart = mantissa[..<dot]
            fractionPart = mantissa[mantissa.index(after: dot)...]
        }
        var digits = String(integerPart) + fractionPart
        var point = integerPart.count + exponent
        while digits.hasPrefix("0") && digits.count > 1 {
            digits.removeFirst()
            point -= 1
        }
        while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
        return (digits, point)
    }

    /// A value as it would be written in an expression, for error messages.
    static func literal(_ value: CELValue) -> String {
        switch value {
        case .null: return "null"
        case let .bool(b): return String(b)
        case let .int(i): return String(i)
        case let .uint(u): return "\(u)u"
        case let .double(d): return double(d)
        case let .string(s): return "'\(s)'"
        case let .bytes(b): return "b'\(b.count) bytes'"
        case let .list(l): return "[" + l.map(literal).joined(separator: ", ") + "]"
        case let .map(m): return "{" + m.map { "\(literal($0.key)): \(literal($0.value))" }.joined(separator: ", ") + "}"
        case let .timestamp(t): return "timestamp('\(t)')"
        case let .duration(d): return "duration('\(d)')"
        case let .type(t): return t.name
        case let .ip(ip): return "ip('\(ip)')"
        case let .cidr(c): return "cidr('\(c)')"
        }
    }
}
