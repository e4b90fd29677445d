import CEL
import Foundation

/// A named operation of a connector, with its typed inputs and the outputs it produces.
///
/// `switchboard validate` checks a step's `with:` against ``inputs``: an unknown key, a missing
/// required one, or a literal of the wrong type is a configuration error with its line.
public struct ConnectorOperation: Sendable, Equatable {
    /// The type of an input or output field.
    public enum FieldType: String, Sendable, Equatable {
        case string, number, integer, boolean, object, array, any

        /// Whether a literal value fits this type (values computed at run time are checked then).
        func accepts(_ value: JSON) -> Bool {
            switch (self, value) {
            case (.any, _), (_, .null): true
            case (.string, .string), (.boolean, .bool), (.object, .object), (.array, .array), (.number, .number): true
            case let (.integer, .number(n)): n.rounded() == n
            default: false
            }
        }
    }

    /// One field of an operation's input or output.
    public struct Field: Sendable, Equatable {
        public var name: String
        public var type: FieldType
        public var required: Bool

        public init(_ name: String, _ type: FieldType, required: Bool = false) {
            self.name = name
            self.type = type
            self.required = required
        }
    }

    public var name: String
    public var inputs: [Field]
    /// The top-level keys of the step's output.
    public var outputs: [Field]

    public init(_ name: String, inputs: [Field], outputs: [Field] = []) {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
    }

    /// Problems with a step's inputs, given as literal values or as nil for values computed at run time.
    public func problems(with given: [String: JSON?]) -> [String] {
        var problems: [String] = []
        let expected = inputs.map(\.name)
        for key in given.keys.sorted() where !expected.contains(key) {
            problems.append("unknown input '\(key)' for operation '\(name)'; expected \(expected.joined(separator: ", "))")
        }
        for field in inputs {
            guard let value = given[field.name] else {
                if field.required { problems.append("operation '\(name)' needs the input '\(field.name)' (\(field.type.rawValue))") }
                continue
            }
            if let literal = value, !field.type.accepts(literal) {
                problems.append("input '\(field.name)' of '\(name)' must be \(field.type.rawValue), got \(literal.text)")
            }
        }
        return problems
    }

    /// Checks inputs evaluated at run time; the step fails with `invalid_input` when they do not fit.
    public func check(_ input: JSON, connector: String) throws(StepError) {
        guard case let .object(fields) = input else {
            throw StepError(errorClass: "invalid_input", message: "\(connector).\(name): inputs must be an object")
        }
        if let problem = problems(with: fields.mapValues { $0 }).first {
            throw StepError(errorClass: "invalid_input", message: "\(connector).\(name): \(problem)")
        }
    }

    /// The operation as GET /v1/connectors shows it.
    var json: JSON {
        func fields(_ list: [Field]) -> JSON {
            .array(list.map { ["name": .string($0.name), "type": .string($0.type.rawValue), "required": .bool($0.required)] })
        }
        return ["name": .string(name), "inputs": fields(inputs), "outputs": fields(outputs)]
    }
}

extension JSON {
    /// Decodes a step's inputs into a `Decodable` type; a mismatch fails the step with `invalid_input`.
    public func decode<T: Decodable>(_ type: T.Type, for operation: String) throws(StepError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(text.utf8))
        } catch let DecodingError.keyNotFound(key, _) {
            throw StepError(errorClass: "invalid_input", message: "\(operation): missing input '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(expected, context) {
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            throw StepError(errorClass: "invalid_input", message: "\(operation): input '\(path)' must be \(expected)")
        } catch {
            throw StepError(errorClass: "invalid_input", message: "\(operation): \(error)")
        }
    }
}
