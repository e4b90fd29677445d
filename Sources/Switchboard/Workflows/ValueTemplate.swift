import CEL
import Foundation
import Mustache

/// A value in a step's `with:`: literal data, a Mustache string template, or a CEL value (`= expr`).
public indirect enum ValueTemplate: Sendable {
    case literal(JSON)
    case template(source: String, MustacheTemplate)
    case expression(Expression)
    case object([String: ValueTemplate])
    case array([ValueTemplate])

    /// Produces the value against a run's context.
    func evaluate(in context: RunContext) throws(StepError) -> JSON {
        switch self {
        case let .literal(json): return json
        case let .template(_, template): return .string(template.render(context.mustacheObject))
        case let .expression(expression):
            // `= event` and the like pass the value on as it is, without a round trip through CEL.
            if let value = context.rootValue(expression.source) { return value }
            return try context.evaluate(expression).json
        case let .object(fields):
            var object: [String: JSON] = [:]
            for (key, value) in fields { object[key] = try value.evaluate(in: context) }
            return .object(object)
        case let .array(items):
            var array: [JSON] = []
            for item in items { array.append(try item.evaluate(in: context)) }
            return .array(array)
        }
    }
}

extension ValueTemplate {
    /// The JSON text of the value this template makes, exactly as it was received, when the
    /// template passes a received document on whole (`= event`) and its text is known; nil
    /// otherwise. Sending it instead of encoding the value again keeps the sender's bytes.
    func receivedText(in context: RunContext) -> String? {
        guard case let .expression(expression) = self else { return nil }
        return context.rootText(expression.source)
    }

    /// How a string value is read, the same in workflows and connector files: `= expr` is CEL,
    /// a string with `{{` is a Mustache template, anything else is the string itself.
    enum StringForm {
        case literal
        case expression(source: String)
        case template
    }

    static func form(of text: String) -> StringForm {
        if text.hasPrefix("= ") { return .expression(source: String(text.dropFirst(2))) }
        return text.contains("{{") ? .template : .literal
    }

    /// A Mustache template that renders text (no HTML escaping).
    static func mustache(_ text: String) throws -> MustacheTemplate {
        try MustacheTemplate(string: "{{% CONTENT_TYPE: TEXT}}" + text)
    }
}

extension JSON {
    /// The value as Foundation objects, for Mustache.
    var foundationObject: Any {
        switch self {
        case .null: return NSNull()
        case let .bool(b): return b
        case let .number(d): return d.rounded() == d && abs(d) < 1e15 ? Int(d) as Any : d
        case let .string(s): return s
        case let .array(a): return a.map(\.foundationObject)
        case let .object(o): return o.mapValues(\.foundationObject)
        }
    }
}
