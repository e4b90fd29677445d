import CEL

/// A small deterministic generator (SplitMix64), so every run sees the same inputs.
public struct SeededGenerator: RandomNumberGenerator {
    public var state: UInt64
    public init(state: UInt64) { self.state = state }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Random expressions, well-formed and malformed, for robustness tests and the fuzz benchmark.
public enum ExpressionFuzzer {
    static let atoms = ["0", "1", "-1", "2u", "0x7fffffffffffffff", "9223372036854775807", "1.5", "-0.0", "1e308",
                        "'a'", "'ümlaut'", "b'\\xff'", "true", "false", "null", "x", "m", "l", "m.a", "m.`b-c`",
                        "[]", "{}", "[1, 'a']", "{'a': 1}", "timestamp('2020-01-01T00:00:00Z')", "duration('1h')",
                        "ip('10.0.0.1')", "cidr('10.0.0.0/8')"]
    static let binary = ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "in"]
    static let calls = ["size(%@)", "int(%@)", "uint(%@)", "double(%@)", "string(%@)", "bytes(%@)", "type(%@)",
                        "dyn(%@)", "%@.size()", "%@.startsWith('a')", "%@.matches('a+')", "has(%@.a)",
                        "%@.all(v, v == 1)", "%@.exists(v, v > 0)", "%@.map(v, v + 1)", "%@.filter(v, v)",
                        "%@.exists_one(v, true)", "%@[0]", "%@['a']", "!%@", "-%@", "(%@)", "[%@]", "{%@: %@}",
                        "%@ ? %@ : %@", "timestamp(%@)", "duration(%@)", "%@.getHours()", "ip(%@)",
                        "%@.split(',')", "%@.join('-')", "%@.lowerAscii()"]

    public static func expression<G: RandomNumberGenerator>(depth: Int, using rng: inout G) -> String {
        if depth <= 0 || Int.random(in: 0 ..< 4, using: &rng) == 0 { return atoms.randomElement(using: &rng)! }
        if Bool.random(using: &rng) {
            let a = expression(depth: depth - 1, using: &rng)
            let b = expression(depth: depth - 1, using: &rng)
            return "\(a) \(binary.randomElement(using: &rng)!) \(b)"
        }
        var template = calls.randomElement(using: &rng)!
        while let range = template.range(of: "%@") {
            template.replaceSubrange(range, with: expression(depth: depth - 1, using: &rng))
        }
        return template
    }

    public static func malformed<G: RandomNumberGenerator>(using rng: inout G) -> String {
        var scalars = Array(expression(depth: 4, using: &rng).unicodeScalars)
        let noise: [Unicode.Scalar] = ["(", ")", "[", "]", "{", "}", "'", "\"", "\\", ".", ",", "`", "?", ":", "\u{0}", "é", "=", "&", "|"]
        for _ in 0 ..< Int.random(in: 1 ... 4, using: &rng) {
            let position = Int.random(in: 0 ... scalars.count, using: &rng)
            switch Int.random(in: 0 ..< 3, using: &rng) {
            case 0: scalars.insert(noise.randomElement(using: &rng)!, at: position)
            case 1: if position < scalars.count { scalars.remove(at: position) }
            default: scalars.insert(contentsOf: Array(repeating: "(", count: Int.random(in: 1 ... 300, using: &rng)), at: position)
            }
        }
        return String(String.UnicodeScalarView(scalars))
    }

    static let variables: [String: CELValue] = [
        "x": .int(3), "m": ["a": .int(1), "b-c": "z"], "l": [.int(1), .int(2), .int(3)],
    ]

    /// Compiles and evaluates one input; returns whether it compiled. Never crashes.
    @discardableResult
    public static func run(_ source: String) -> Bool {
        var env = CELEnvironment(variables: Array(variables.keys))
        env.limits.maxIterations = 10_000
        guard let program = try? env.compile(source) else { return false }
        _ = try? program.evaluate(variables)
        return true
    }
}

