import CEL
import Foundation

/// A field that runs of a workflow can be found by: `search:` in its file lists paths into the
/// event's `data` or the API input (`data.inquiry.id`, `input.business_name`). When a run is
/// created, each field it has as a string, number or boolean becomes a term
/// (`data.inquiry.id=inq_123`) stored with it, which the console's search box looks up by key —
/// one read however many runs there are. Runs started before a field was listed are not found by it.
public struct SearchField: Sendable, Hashable, CustomStringConvertible {
    public let path: [String]

    /// A path such as `data.inquiry.id` or `input.business_name`; nil when it is not one.
    public init?(_ text: String) {
        let path = text.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard path.count >= 2, path.count <= 8, path[0] == "data" || path[0] == "input",
              path.allSatisfy({ WorkflowLoader.isIdentifier($0) }) else { return nil }
        self.path = path
    }

    public var description: String { path.joined(separator: ".") }

    /// The term a run with `value` in this field is stored under; nil for a value that is not a
    /// string, number or boolean, or longer than ``RunSearch/maximumValueLength``.
    public func term(for value: JSON) -> String? {
        let text: String
        switch value {
        case let .string(string): text = string
        case let .bool(bool): text = bool ? "true" : "false"
        case .number: text = value.text
        default: return nil
        }
        guard !text.isEmpty, text.utf8.count <= RunSearch.maximumValueLength else { return nil }
        return RunSearch.term(description, text)
    }
}

public enum RunSearch {
    /// Longer values are not stored as terms.
    public static let maximumValueLength = 200
    /// At most this many `search` fields per workflow.
    public static let maximumFields = 16

    /// `data.inquiry.id=inq_123`: how a field and its value are stored and looked up.
    public static func term(_ field: String, _ value: String) -> String { field + "=" + value }
}

extension Workflow {
    /// The terms a new run of this workflow is stored with: its ``searchFields`` that the run's
    /// event `data` or input holds.
    public func searchTerms(of run: RunRecord) -> [String] {
        guard !searchFields.isEmpty else { return [] }
        return searchFields.compactMap { field in
            var value: JSON? = field.path[0] == "data" ? run.event?["data"] : run.input
            for key in field.path.dropFirst() { value = value?[key] }
            return value.flatMap(field.term(for:))
        }
    }
}
