/// Limits that keep any expression from crashing or hanging the process.
public struct CELLimits: Sendable {
    /// Maximum source length, in characters.
    public var maxLength = 100_000
    /// Maximum nesting of parentheses, lists, maps, calls and unary operators.
    public var maxNesting = 250
    /// Maximum height of the syntax tree, which long operator chains also grow.
    public var maxDepth = 1_000
    /// Maximum comprehension iterations in one evaluation, across all macros.
    public var maxIterations = 1_000_000

    public init() {}
}

/// The declarations expressions compile against: variables, functions and limits.
///
/// Compile once, evaluate many times:
///
/// ```swift
/// var env = CELEnvironment(variables: ["data"])
/// let program = try env.compile("data.inquiry.score > 0.8")
/// let result = try program.evaluate(["data": ["inquiry": ["score": 0.9]]])  // .bool(true)
/// ```
public struct CELEnvironment: Sendable {
    public private(set) var variables: Set<String>
    private(set) var functions: [String: CELFunction] = [:]
    public var limits = CELLimits()
    /// When false, unknown variables and functions are evaluation errors instead of compile
    /// errors (CEL's "unchecked" mode, used by conformance tests that disable the checker).
    public var checksReferences = true

    /// Creates an environment with CEL's standard library and the given variables.
    public init(variables: [String] = []) {
        self.variables = Set(variables)
        for function in StandardLibrary.functions { functions[function.name] = function }
    }

    /// Declares a variable that expressions may reference.
    public mutating func declare(_ variable: String) { variables.insert(variable) }

    /// Registers a function, replacing any built-in of the same name.
    public mutating func register(_ function: CELFunction) { functions[function.name] = function }

    /// Whether a function of that name is registered.
    public func hasFunction(_ name: String) -> Bool { functions[name] != nil }

    /// Parses and checks an expression.
    /// - Throws: ``CELError`` with line and column for syntax errors, unknown names and wrong arity.
    public func compile(_ source: String) throws(CELError) -> CELProgram {
        let text = SourceText(source)
        do {
            let expr = try Parser.parse(text, limits: Parser.Limits(maxLength: limits.maxLength,
                                                                     maxNesting: limits.maxNesting,
                                                                     maxDepth: limits.maxDepth))
            var compiler = Compiler(environment: self)
            let root = try compiler.compile(expr)
            return CELProgram(source: source, text: text, root: root, localCount: compiler.maxLocals,
                              maxIterations: limits.maxIterations, referencedPaths: compiler.paths)
        } catch {
            throw error.located(in: text)
        }
    }
}

/// A compiled expression, safe to evaluate concurrently from many tasks.
public struct CELProgram: Sendable {
    public let source: String
    let text: SourceText
    let root: Node
    let localCount: Int
    let maxIterations: Int
    /// Every selection chain rooted at a declared variable, such as `["steps", "review", "output"]`.
    public let referencedPaths: [[String]]

    /// Evaluates the expression against variables.
    /// - Throws: ``CELError`` with the position of the failing sub-expression.
    public func evaluate(_ variables: [String: CELValue] = [:], context: CELContext = CELContext()) throws(CELError) -> CELValue {
        var frame = Frame(variables: variables, locals: [], context: context, iterationsLeft: maxIterations)
        if localCount > 0 { frame.locals = Array(repeating: .null, count: localCount) }
        do { return try root.eval(&frame) } catch { throw error.located(in: text) }
    }
}

/// Turns a syntax tree into evaluation nodes, resolving names and checking arities.
struct Compiler {
    let environment: CELEnvironment
    private var scopes: [String] = []
    private(set) var maxLocals = 0
    private(set) var paths: [[String]] = []

    init(environment: CELEnvironment) { self.environment = environment }

    private func isBound(_ name: String) -> Bool { scopes.contains(name) || environment.variables.contains(name) }

    mutating func compile(_ expr: Expr) throws(CELError) -> Node {
        switch expr.kind {
        case let .literal(value):
            return ConstantNode(value, offset: expr.offset)
        case let .identifier(name):
            if let slot = scopes.lastIndex(of: name) { return LocalNode(slot: slot, offset: expr.offset) }
            let type = CELType.named[name].map(CELValue.type)
            if environment.variables.contains(name) {
                paths.append([name])
                return VariableNode(name, fallback: type, offset: expr.offset)
            }
            if let type { return ConstantNode(type, offset: expr.offset) }
            let error = CELError(.undeclaredReference, "undeclared reference to '\(name)'", offset: expr.offset)
            if environment.checksReferences { throw error }
            return VariableNode(name, fallback: nil, offset: expr.offset)
        case let .select(operand, field, testOnly):
            if !testOnly, let name = expr.qualifiedName, let type = CELType.named[name],
               let root = name.split(separator: ".").first, !isBound(String(root))
            {
                return ConstantNode(.type(type), offset: expr.offset)
            }
            if !testOnly, let path = selectPath(expr), isBound(path[0]), !scopes.contains(path[0]) {
                paths.append(path)
            }
            return SelectNode(try compile(operand), field: field, testOnly: testOnly, offset: expr.offset)
        case let .list(elements):
            var nodes: [Node] = []
            for element in elements { nodes.append(try compile(element)) }
            return ListNode(nodes, offset: expr.offset)
        case let .map(entries):
            var nodes: [(key: Node, value: Node)] = []
            for entry in entries { nodes.append((try compile(entry.key), try compile(entry.value))) }
            return MapNode(nodes, offset: expr.offset)
        case let .comprehension(macro, range, variable, args):
            let rangeNode = try compile(range)
            scopes.append(variable)
            maxLocals = max(maxLocals, scopes.count)
            let slot = scopes.count - 1
            defer { scopes.removeLast() }
            let first = try compile(args[0])
            let second = args.count > 1 ? try compile(args[1]) : nil
            return ComprehensionNode(macro, range: rangeNode, slot: slot, first: first, second: second, offset: expr.offset)
        case let .call(function, target, args):
            return try compileCall(function, target: target, args: args, at: expr.offset)
        }
    }

    private func selectPath(_ expr: Expr) -> [String]? {
        switch expr.kind {
        case let .identifier(name): return [name]
        case let .select(operand, field, _): return selectPath(operand).map { $0 + [field] }
        default: return nil
        }
    }

    private mutating func compileCall(_ name: String, target: Expr?, args: [Expr], at offset: Int) throws(CELError) -> Node {
        if target == nil {
            switch name {
            case "_&&_": return AndNode(try compile(args[0]), try compile(args[1]), offset: offset)
            case "_||_": return OrNode(try compile(args[0]), try compile(args[1]), offset: offset)
            case "_?_:_":
                return ConditionalNode(try compile(args[0]), try compile(args[1]), try compile(args[2]), offset: offset)
            case "!_": return UnaryNode(.not, try compile(args[0]), offset: offset)
            case "-_": return UnaryNode(.negate, try compile(args[0]), offset: offset)
            default:
                if let op = Operators.binaryByFunction[name] {
                    return BinaryNode(op, try compile(args[0]), try compile(args[1]), offset: offset)
                }
            }
        }
        // `ip.isCanonical(x)`: a namespaced global function, unless `ip` is a variable.
        if let target, let qualifier = target.qualifiedName, let root = qualifier.split(separator: ".").first,
           !isBound(String(root)), let function = environment.functions["\(qualifier).\(name)"],
           function.style.contains(.global)
        {
            return try call(function, args: args, at: offset)
        }
        let style: CELFunction.Style = target == nil ? .global : .receiver
        let allArgs = target.map { [$0] + args } ?? args
        guard let function = environment.functions[name], function.style.contains(style) else {
            let kind = target == nil ? "function" : "method"
            let error = CELError(.undeclaredReference, "undeclared reference to \(kind) '\(name)'", offset: offset)
            if environment.checksReferences { throw error }
            return ErrorNode(error)
        }
        return try call(function, args: allArgs, at: offset)
    }

    private mutating func call(_ function: CELFunction, args: [Expr], at offset: Int) throws(CELError) -> Node {
        guard function.arities.contains(args.count) else {
            let expected = function.arities.sorted().map(String.init).joined(separator: " or ")
            let error = CELError(.arity, "'\(function.name)' takes \(expected) argument(s), got \(args.count)", offset: offset)
            if environment.checksReferences { throw error }
            return ErrorNode(error)
        }
        var nodes: [Node] = []
        for arg in args { nodes.append(try compile(arg)) }
        return CallNode(function, args: nodes, offset: offset)
    }
}
