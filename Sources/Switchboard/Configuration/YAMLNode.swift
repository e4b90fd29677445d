import CEL
import Foundation
import Yams

/// A YAML node with its file and position, and helpers that report problems instead of throwing,
/// so that validation finds every problem in one pass.
struct YAMLNode {
    let node: Node
    let file: String

    var line: Int { node.mark?.line ?? 1 }
    var column: Int { node.mark?.column ?? 1 }
    var location: SourceLocation { SourceLocation(file: file, line: line, column: column) }

    var mapping: [(key: String, value: YAMLNode, keyNode: YAMLNode)]? {
        guard case let .mapping(mapping) = node else { return nil }
        return mapping.map { ($0.key.string ?? "", YAMLNode(node: $0.value, file: file), YAMLNode(node: $0.key, file: file)) }
    }

    var sequence: [YAMLNode]? {
        guard case let .sequence(sequence) = node else { return nil }
        return sequence.map { YAMLNode(node: $0, file: file) }
    }

    var scalar: String? {
        guard case let .scalar(scalar) = node else { return nil }
        return scalar.string
    }

    subscript(key: String) -> YAMLNode? {
        mapping?.first { $0.key == key }?.value
    }

    var kindName: String {
        switch node {
        case .scalar: "a value"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// Converts to JSON data; scalars keep their YAML type (numbers, booleans, null).
    var json: JSON {
        switch node {
        case let .scalar(scalar):
            if scalar.style == .plain {
                if let b = Bool.construct(from: scalar) { return .bool(b) }
                if let i = Int.construct(from: scalar) { return .number(Double(i)) }
                if let d = Double.construct(from: scalar) { return .number(d) }
                if NSNull.construct(from: scalar) != nil { return .null }
            }
            return .string(scalar.string)
        case let .mapping(mapping):
            var object: [String: JSON] = [:]
            for (key, value) in mapping { object[key.string ?? ""] = YAMLNode(node: value, file: file).json }
            return .object(object)
        case let .sequence(sequence):
            return .array(sequence.map { YAMLNode(node: $0, file: file).json })
        case .alias:
            return .null
        }
    }
}

/// Collects problems while a file is read.
struct ProblemCollector {
    var problems: [ConfigurationProblem] = []

    mutating func error(_ at: YAMLNode, _ message: String) {
        problems.append(ConfigurationProblem(.error, file: at.file, line: at.line, column: at.column, message))
    }

    mutating func warning(_ at: YAMLNode, _ message: String) {
        problems.append(ConfigurationProblem(.warning, file: at.file, line: at.line, column: at.column, message))
    }

    /// Reports keys that are not allowed and required keys that are missing.
    mutating func checkKeys(_ node: YAMLNode, allowed: [String], required: [String] = [], context: String) {
        guard let mapping = node.mapping else {
            error(node, "\(context) must be a mapping, got \(node.kindName)")
            return
        }
        for entry in mapping where !allowed.contains(entry.key) {
            error(entry.keyNode, "unknown key '\(entry.key)' in \(context); expected one of: \(allowed.joined(separator: ", "))")
        }
        for key in required where node[key] == nil {
            error(node, "missing key '\(key)' in \(context)")
        }
    }
}

/// Reads environment variables into configuration text: `${NAME}` and `${NAME:-default}`.
public struct EnvironmentInterpolator: Sendable {
    public let environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
    }

    /// Replaces every reference; the names of variables that have no value and no default are returned.
    public func interpolate(_ text: String) -> (String, missing: [String]) {
        guard text.contains("${") else { return (text, []) }
        var result = ""
        var missing: [String] = []
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                result += rest[start.lowerBound...]
                rest = ""
                break
            }
            let body = rest[start.upperBound ..< end]
            let name: Substring
            var fallback: Substring?
            if let separator = body.range(of: ":-") {
                name = body[..<separator.lowerBound]
                fallback = body[separator.upperBound...]
            } else {
                name = body
            }
            if let value = environment[String(name)], !value.isEmpty {
                result += value
            } else if let fallback {
                result += fallback
            } else {
                missing.append(String(name))
            }
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return (result, missing)
    }
}
