/// An error from compiling or evaluating a CEL expression.
///
/// Compile errors carry the position in the source (``line`` and ``column``, both 1-based);
/// evaluation errors carry the position of the sub-expression that failed when it is known.
public struct CELError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure this is. New kinds may be added.
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        public static let syntax = Kind(name: "syntax")
        public static let limit = Kind(name: "limit")
        public static let undeclaredReference = Kind(name: "undeclared_reference")
        public static let arity = Kind(name: "arity")
        public static let noSuchOverload = Kind(name: "no_such_overload")
        public static let overflow = Kind(name: "overflow")
        public static let divisionByZero = Kind(name: "division_by_zero")
        public static let noSuchKey = Kind(name: "no_such_key")
        public static let indexOutOfRange = Kind(name: "index_out_of_range")
        public static let invalidArgument = Kind(name: "invalid_argument")
        public static let range = Kind(name: "range")
        public static let host = Kind(name: "host")
    }

    public var kind: Kind
    public var message: String
    /// 1-based line of the failing (sub-)expression, when known.
    public var line: Int?
    /// 1-based column (in characters) of the failing (sub-)expression, when known.
    public var column: Int?
    /// Offset in characters from the start of the source, used to compute line and column.
    var offset: Int?

    public init(_ kind: Kind, _ message: String, offset: Int? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    public var description: String {
        if let line, let column { return "\(line):\(column): \(message)" }
        return message
    }

    /// Fills in line and column from the source the offset points into.
    func located(in source: SourceText) -> CELError {
        guard line == nil, let offset else { return self }
        var copy = self
        (copy.line, copy.column) = source.lineAndColumn(of: offset)
        return copy
    }

    func at(_ offset: Int) -> CELError {
        guard self.offset == nil else { return self }
        var copy = self
        copy.offset = offset
        return copy
    }

    static func noSuchOverload(_ function: String, _ args: [CELValue]) -> CELError {
        let types = args.map { $0.celType.name }.joined(separator: ", ")
        return CELError(.noSuchOverload, "found no matching overload for '\(function)' applied to '(\(types))'")
    }
    static func invalidArgument(_ message: String) -> CELError { CELError(.invalidArgument, message) }
    static func range(_ message: String) -> CELError { CELError(.range, message) }
    static func overflow(_ operation: String) -> CELError { CELError(.overflow, "\(operation): integer overflow") }
}

/// The source of an expression, indexed by character for positions.
struct SourceText: Sendable {
    let scalars: [Unicode.Scalar]

    init(_ text: String) { scalars = Array(text.unicodeScalars) }

    func lineAndColumn(of offset: Int) -> (Int, Int) {
        var line = 1
        var column = 1
        for scalar in scalars.prefix(offset) {
            if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
        }
        return (line, column)
    }
}
