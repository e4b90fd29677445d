import CEL
import Testing

@Suite("CEL errors carry a position and a message")
struct ErrorTests {
    func compileError(_ source: String, variables: [String] = []) -> CELError? {
        do {
            _ = try CELEnvironment(variables: variables).compile(source)
            return nil
        } catch { return error }
    }

    func evaluationError(_ source: String, _ vars: [String: CELValue] = [:]) -> CELError? {
        do {
            _ = try CELEnvironment(variables: Array(vars.keys)).compile(source).evaluate(vars)
            return nil
        } catch { return error }
    }

    @Test("a parse error points at the offending token")
    func parseErrorPosition() throws {
        let error = try #require(compileError("data.x == \n  1 +* 2", variables: ["data"]))
        #expect(error.kind == .syntax)
        #expect(error.line == 2)
        #expect(error.column == 6)
        #expect(error.message.contains("unexpected '*'"))
    }

    @Test("single = suggests ==")
    func singleEquals() throws {
        let error = try #require(compileError("a = 1", variables: ["a"]))
        #expect(error.column == 3)
        #expect(error.message.contains("'=='"))
    }

    @Test("an unclosed string is reported where it starts")
    func unclosedString() throws {
        let error = try #require(compileError("x == 'abc"))
        #expect(error.column == 6)
        #expect(error.message.contains("not closed"))
    }

    @Test("unknown variable")
    func unknownVariable() throws {
        let error = try #require(compileError("dta.inquiry", variables: ["data"]))
        #expect(error.kind == .undeclaredReference)
        #expect(error.message == "undeclared reference to 'dta'")
        #expect(error.column == 1)
    }

    @Test("unknown function")
    func unknownFunction() throws {
        let error = try #require(compileError("agee(1)"))
        #expect(error.kind == .undeclaredReference)
        #expect(error.message.contains("'agee'"))
    }

    @Test("wrong arity")
    func wrongArity() throws {
        let error = try #require(compileError("size(1, 2)"))
        #expect(error.kind == .arity)
        #expect(error.message.contains("takes 1"))
    }

    @Test("a type mismatch at evaluation names the types")
    func typeMismatch() throws {
        let error = try #require(evaluationError("1 + 'a'"))
        #expect(error.kind == .noSuchOverload)
        #expect(error.message.contains("(int, string)"))
        #expect(error.column == 3)
    }

    @Test("integer overflow")
    func overflow() throws {
        let error = try #require(evaluationError("9223372036854775807 + 1"))
        #expect(error.kind == .overflow)
    }

    @Test("division by zero")
    func divisionByZero() throws {
        let error = try #require(evaluationError("x / 0", ["x": .int(1)]))
        #expect(error.kind == .divisionByZero)
        #expect(error.column == 3)
    }

    @Test("a missing map key names the key")
    func missingKey() throws {
        let error = try #require(evaluationError("data.inquiry.birthdate", ["data": ["inquiry": [:]]]))
        #expect(error.kind == .noSuchKey)
        #expect(error.message.contains("'birthdate'"))
        #expect(error.column == 14)
    }

    @Test("10,000 nested parentheses are a compile error, not a crash")
    func depthLimit() throws {
        let source = String(repeating: "(", count: 10_000) + "1" + String(repeating: ")", count: 10_000)
        let error = try #require(compileError(source))
        #expect(error.kind == .limit)
    }

    @Test("a long operator chain is bounded too")
    func chainLimit() throws {
        let source = Array(repeating: "1", count: 5_000).joined(separator: " + ")
        let error = try #require(compileError(source))
        #expect(error.kind == .limit)
    }

    @Test("comprehensions have an iteration limit")
    func iterationLimit() throws {
        var env = CELEnvironment()
        env.limits.maxIterations = 1_000
        let program = try env.compile("[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, a + b + c > 0)))")
        #expect(throws: CELError.self) { try program.evaluate() }
    }

    @Test("reserved words are not identifiers")
    func reservedWord() throws {
        let error = try #require(compileError("while"))
        #expect(error.message.contains("reserved"))
    }
}
