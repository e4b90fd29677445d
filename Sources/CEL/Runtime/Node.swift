/// A compiled expression node. The compiler turns the syntax tree into these once; evaluation
/// walks them many times.
class Node: @unchecked Sendable {
    let offset: Int
    init(offset: Int) { self.offset = offset }
    func eval(_ frame: inout Frame) throws(CELError) -> CELValue { fatalError("abstract") }
}

final class ConstantNode: Node, @unchecked Sendable {
    let value: CELValue
    init(_ value: CELValue, offset: Int) {
        self.value = value
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue { value }
}

final class VariableNode: Node, @unchecked Sendable {
    let name: String
    let fallback: CELValue?  // a type name the variable shadows, when the variable is absent
    init(_ name: String, fallback: CELValue?, offset: Int) {
        self.name = name
        self.fallback = fallback
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        if let value = frame.variables[name] { return value }
        if let fallback { return fallback }
        throw CELError(.undeclaredReference, "no value for variable '\(name)'", offset: offset)
    }
}

final class LocalNode: Node, @unchecked Sendable {
    let slot: Int
    init(slot: Int, offset: Int) {
        self.slot = slot
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue { frame.locals[slot] }
}

/// A node that always fails: an unchecked reference to something unknown.
final class ErrorNode: Node, @unchecked Sendable {
    let error: CELError
    init(_ error: CELError) {
        self.error = error
        super.init(offset: error.offset ?? 0)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue { throw error }
}

final class SelectNode: Node, @unchecked Sendable {
    let operand: Node
    let field: String
    let testOnly: Bool
    init(_ operand: Node, field: String, testOnly: Bool, offset: Int) {
        self.operand = operand
        self.field = field
        self.testOnly = testOnly
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        let value = try operand.eval(&frame)
        guard case let .map(map) = value else {
            throw CELError(.noSuchOverload, "type '\(value.celType)' does not support field selection ('.\(field)')",
                           offset: offset)
        }
        if testOnly { return .bool(map[string: field] != nil) }
        guard let result = map[string: field] else {
            throw CELError(.noSuchKey, "no such key: '\(field)'", offset: offset)
        }
        return result
    }
}

final class ListNode: Node, @unchecked Sendable {
    let elements: [Node]
    init(_ elements: [Node], offset: Int) {
        self.elements = elements
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        var values: [CELValue] = []
        values.reserveCapacity(elements.count)
        for element in elements { values.append(try element.eval(&frame)) }
        return .list(values)
    }
}

final class MapNode: Node, @unchecked Sendable {
    let entries: [(key: Node, value: Node)]
    init(_ entries: [(key: Node, value: Node)], offset: Int) {
        self.entries = entries
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        var map = CELMap(minimumCapacity: entries.count)
        for entry in entries {
            let key = try entry.key.eval(&frame)
            let value = try entry.value.eval(&frame)
            guard let normalised = CELMap.Key(key) else {
                throw CELError(.invalidArgument, "unsupported key type '\(key.celType)' in map literal",
                               offset: entry.key.offset)
            }
            guard map.insertNew(key: key, normalised: normalised, value: value) else {
                throw CELError(.invalidArgument, "Failed with repeated key \(Formatting.literal(key)) in map literal",
                               offset: entry.key.offset)
            }
        }
        return .map(map)
    }
}

final class AndNode: Node, @unchecked Sendable {
    let lhs: Node, rhs: Node
    init(_ lhs: Node, _ rhs: Node, offset: Int) {
        self.lhs = lhs
        self.rhs = rhs
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        var firstError: CELError?
        do {
            switch try lhs.eval(&frame) {
            case .bool(false): return .bool(false)
            case .bool(true): break
            case let other: firstError = CELError.noSuchOverload("_&&_", [other]).at(offset)
            }
        } catch { firstError = error }
        let right: CELValue
        do { right = try rhs.eval(&frame) } catch {
            throw firstError ?? error
        }
        switch right {
        case .bool(false): return .bool(false)
        case .bool(true): if let firstError { throw firstError }; return .bool(true)
        default: throw firstError ?? CELError.noSuchOverload("_&&_", [right]).at(offset)
        }
    }
}

final class OrNode: Node, @unchecked Sendable {
    let lhs: Node, rhs: Node
    init(_ lhs: Node, _ rhs: Node, offset: Int) {
        self.lhs = lhs
        self.rhs = rhs
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        var firstError: CELError?
        do {
            switch try lhs.eval(&frame) {
            case .bool(true): return .bool(true)
            case .bool(false): break
            case let other: firstError = CELError.noSuchOverload("_||_", [other]).at(offset)
            }
        } catch { firstError = error }
        let right: CELValue
        do { right = try rhs.eval(&frame) } catch {
            throw firstError ?? error
        }
        switch right {
        case .bool(true): return .bool(true)
        case .bool(false): if let firstError { throw firstError }; return .bool(false)
        default: throw firstError ?? CELError.noSuchOverload("_||_", [right]).at(offset)
        }
    }
}

final class ConditionalNode: Node, @unchecked Sendable {
    let condition: Node, whenTrue: Node, whenFalse: Node
    init(_ condition: Node, _ whenTrue: Node, _ whenFalse: Node, offset: Int) {
        self.condition = condition
        self.whenTrue = whenTrue
        self.whenFalse = whenFalse
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        switch try condition.eval(&frame) {
        case .bool(true): return try whenTrue.eval(&frame)
        case .bool(false): return try whenFalse.eval(&frame)
        case let other: throw CELError.noSuchOverload("_?_:_", [other]).at(offset)
        }
    }
}

final class UnaryNode: Node, @unchecked Sendable {
    let operand: Node
    let op: Operators.Unary
    init(_ op: Operators.Unary, _ operand: Node, offset: Int) {
        self.op = op
        self.operand = operand
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        do { return try Operators.apply(op, try operand.eval(&frame)) } catch { throw error.at(offset) }
    }
}

final class BinaryNode: Node, @unchecked Sendable {
    let lhs: Node, rhs: Node
    let op: Operators.Binary
    init(_ op: Operators.Binary, _ lhs: Node, _ rhs: Node, offset: Int) {
        self.op = op
        self.lhs = lhs
        self.rhs = rhs
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        let a = try lhs.eval(&frame)
        let b = try rhs.eval(&frame)
        do { return try Operators.apply(op, a, b) } catch { throw error.at(offset) }
    }
}

final class CallNode: Node, @unchecked Sendable {
    let function: CELFunction
    let args: [Node]
    init(_ function: CELFunction, args: [Node], offset: Int) {
        self.function = function
        self.args = args
        super.init(offset: offset)
    }
    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        var values: [CELValue] = []
        values.reserveCapacity(args.count)
        for arg in args { values.append(try arg.eval(&frame)) }
        do { return try function.implementation(values, frame.context) } catch { throw error.at(offset) }
    }
}

final class ComprehensionNode: Node, @unchecked Sendable {
    let macro: Expr.Macro
    let range: Node
    let slot: Int
    let first: Node
    let second: Node?
    init(_ macro: Expr.Macro, range: Node, slot: Int, first: Node, second: Node?, offset: Int) {
        self.macro = macro
        self.range = range
        self.slot = slot
        self.first = first
        self.second = second
        super.init(offset: offset)
    }

    override func eval(_ frame: inout Frame) throws(CELError) -> CELValue {
        let elements: [CELValue]
        switch try range.eval(&frame) {
        case let .list(list): elements = list
        case let .map(map): elements = map.keys
        case let other:
            throw CELError(.noSuchOverload, "cannot iterate over a value of type '\(other.celType)'", offset: offset)
        }
        if frame.locals.count <= slot { frame.locals.append(contentsOf: repeatElement(.null, count: slot + 1 - frame.locals.count)) }
        let saved = frame.locals[slot]
        defer { frame.locals[slot] = saved }
        var pendingError: CELError?
        var count = 0
        var results: [CELValue] = []
        for element in elements {
            frame.iterationsLeft -= 1
            guard frame.iterationsLeft >= 0 else {
                throw CELError(.limit, "comprehension iteration limit exceeded", offset: offset)
            }
            frame.locals[slot] = element
            switch macro {
            case .all, .exists:
                let stop = macro == .exists
                do {
                    switch try first.eval(&frame) {
                    case .bool(stop): return .bool(stop)
                    case .bool: break
                    case let other: pendingError = CELError.noSuchOverload(macro == .all ? "all" : "exists", [other]).at(offset)
                    }
                } catch { pendingError = pendingError ?? error }
            case .existsOne:
                switch try first.eval(&frame) {
                case .bool(true): count += 1
                case .bool(false): break
                case let other: throw CELError.noSuchOverload("exists_one", [other]).at(offset)
                }
            case .map:
                results.append(try first.eval(&frame))
            case .filter:
                switch try first.eval(&frame) {
                case .bool(true): results.append(element)
                case .bool(false): break
                case let other: throw CELError.noSuchOverload("filter", [other]).at(offset)
                }
            case .mapFilter:
                switch try first.eval(&frame) {
                case .bool(true): results.append(try second!.eval(&frame))
                case .bool(false): break
                case let other: throw CELError.noSuchOverload("map", [other]).at(offset)
                }
            }
        }
        switch macro {
        case .all, .exists:
            if let pendingError { throw pendingError }
            return .bool(macro == .all)
        case .existsOne: return .bool(count == 1)
        case .map, .filter, .mapFilter: return .list(results)
        }
    }
}
