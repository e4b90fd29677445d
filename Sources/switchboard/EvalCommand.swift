import ArgumentParser
import CEL
import Foundation
import Switchboard

struct EvalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a CEL expression and print the result as JSON.",
        discussion: """
        With --jsonl, read JSON Lines cases {"expr": ..., "vars": {...}} on standard input, with vars in the \
        typed encoding of the CEL conformance data, and write one line per case: {"value": TYPED} or {"error": "message"}.
        """)

    @Argument(help: "The expression") var expression: String?
    @Option(help: "A JSON file whose top-level keys become variables") var vars: String?
    @Flag(help: "Print the typed encoding ({\"int\": \"1\"}) instead of plain JSON") var typed = false
    @Flag(help: "Read cases as JSON Lines on standard input") var jsonl = false

    func validate() throws {
        if jsonl == (expression != nil) { throw ValidationError("give an expression, or --jsonl to read cases from standard input") }
    }

    func run() async throws {
        if jsonl {
            EvalJSONLines.run()
            return
        }
        var variables: [String: CELValue] = [:]
        if let vars {
            guard let data = FileManager.default.contents(atPath: vars) else { throw UserError("cannot read \(vars)") }
            guard case let .object(object) = try? JSON.parse(data) else { throw UserError("\(vars) must hold a JSON object") }
            for (key, value) in object { variables[key] = CELValue(json: value) }
        }
        let result = Result { () throws(CELError) in
            try EvalJSONLines.evaluate(expression!, variables: variables, unchecked: false)
        }
        switch result {
        case let .success(value): print((typed ? TypedJSON.encode(value) : value.json).text)
        case let .failure(error): throw UserError(error.description)
        }
    }
}

/// The JSON Lines interface through which conformance tools test the CEL module.
enum EvalJSONLines {
    static func evaluate(_ source: String, variables: [String: CELValue], unchecked: Bool) throws(CELError) -> CELValue {
        var env = ExpressionEnvironment.shared
        for name in variables.keys { env.declare(name) }
        env.checksReferences = !unchecked
        let now = CELTimestamp(Date()) ?? CELTimestamp(secondsSinceEpoch: 0)!
        return try env.compile(source).evaluate(variables, context: CELContext(now: now))
    }

    /// Reads cases until end of input; one bad case gives one error line, never a crash.
    static func run() {
        while let line = readLine(strippingNewline: true) {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { continue }
            let answer: JSON
            do {
                answer = try answerCase(line)
            } catch let error as CELError {
                answer = ["error": .string(error.description)]
            } catch {
                answer = ["error": .string("\(error)")]
            }
            FileHandle.standardOutput.write(answer.encoded() + Data("\n".utf8))
        }
    }

    private static func answerCase(_ line: String) throws -> JSON {
        guard case let .object(object)? = try? JSON.parse(Data(line.utf8)) else {
            return ["error": "the line is not a JSON object"]
        }
        guard case let .string(expr)? = object["expr"] else { return ["error": "the case has no string 'expr'"] }
        var variables: [String: CELValue] = [:]
        if case let .object(vars)? = object["vars"] {
            for (name, typed) in vars { variables[name] = try TypedJSON.decode(typed) }
        }
        let value = try evaluate(expr, variables: variables, unchecked: object["disable_check"] == .bool(true))
        return ["value": TypedJSON.encode(value)]
    }
}
