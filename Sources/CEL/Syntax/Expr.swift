/// A parsed CEL expression: the abstract syntax tree the compiler works from.
struct Expr: Sendable {
    /// The macros of CEL, expanded by the parser into comprehensions.
    enum Macro: Sendable {
        case all, exists, existsOne, map, mapFilter, filter
    }

    indirect enum Kind: Sendable {
        case literal(CELValue)
        case identifier(String)
        /// `operand.field`; `testOnly` is the `has(operand.field)` macro.
        case select(Expr, field: String, testOnly: Bool)
        /// A global call (`size(x)`) when `target` is nil, otherwise a receiver call (`x.size()`).
        case call(function: String, target: Expr?, args: [Expr])
        case list([Expr])
        case map([(key: Expr, value: Expr)])
        /// `range.macro(variable, args...)`.
        case comprehension(Macro, range: Expr, variable: String, args: [Expr])
    }

    var kind: Kind
    /// Offset of the expression's first character in the source, in Unicode scalars.
    var offset: Int
    /// Height of the tree below this node; bounded so evaluation cannot overflow the stack.
    var depth: Int

    init(_ kind: Kind, at offset: Int, children: [Expr] = []) {
        self.kind = kind
        self.offset = offset
        self.depth = 1 + (children.map(\.depth).max() ?? 0)
    }

    /// The dotted name this expression spells (`google.protobuf.Timestamp`), if it is one.
    var qualifiedName: String? {
        switch kind {
        case let .identifier(name): return name
        case let .select(operand, field, false): return operand.qualifiedName.map { "\($0).\(field)" }
        default: return nil
        }
    }
}
