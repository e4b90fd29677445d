import CEL
import Foundation

/// The input an API trigger accepts: named fields with a type and optional constraints.
public struct InputSchema: Sendable {
    public enum FieldType: String, Sendable, CaseIterable {
        case string, number, integer, boolean, object, array
    }

    public struct Field: Sendable {
        public var name: String
        public var type: FieldType
        public var required: Bool
        public var pattern: String?
        public var allowed: [JSON]?
        public var description: String?
    }

    /// Fields in the order the YAML lists them.
    public var fields: [Field]

    /// A problem with one field of an input.
    public struct Violation: Sendable, Equatable {
        public var path: String
        public var message: String
    }

    /// Every problem with an input, or none.
    public func validate(_ input: JSON) -> [Violation] {
        guard case let .object(object) = input else {
            return [Violation(path: "", message: "the input must be a JSON object")]
        }
        var violations: [Violation] = []
        for field in fields {
            guard let value = object[field.name], value != .null else {
                if field.required { violations.append(Violation(path: field.name, message: "is required")) }
                continue
            }
            if let problem = Self.typeProblem(value, field.type) {
                violations.append(Violation(path: field.name, message: problem))
                continue
            }
            if let pattern = field.pattern, case let .string(text) = value {
                let matches = (try? NSRegularExpression(pattern: pattern)).map {
                    $0.firstMatch(in: text, range: NSRange(text.startIndex ..< text.endIndex, in: text)) != nil
                } ?? false
                if !matches { violations.append(Violation(path: field.name, message: "does not match the pattern \(pattern)")) }
            }
            if let allowed = field.allowed, !allowed.contains(value) {
                let list = allowed.map(\.text).joined(separator: ", ")
                violations.append(Violation(path: field.name, message: "must be one of \(list)"))
            }
        }
        let known = Set(fields.map(\.name))
        for key in object.keys.sorted() where !known.contains(key) {
            violations.append(Violation(path: key, message: "is not a field of this workflow's input"))
        }
        return violations
    }

    private static func typeProblem(_ value: JSON, _ type: FieldType) -> String? {
        let ok: Bool = switch (type, value) {
        case (.string, .string), (.number, .number), (.boolean, .bool), (.object, .object), (.array, .array): true
        case let (.integer, .number(d)): d.rounded() == d && abs(d) < 9.007e15
        default: false
        }
        return ok ? nil : "must be \(type == .integer ? "an" : "a") \(type.rawValue)"
    }
}
