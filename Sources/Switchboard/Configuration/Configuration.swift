import CEL
import Foundation
import Yams

/// The loaded configuration: connector instances and workflows, from `connectors/*.yaml` and
/// `workflows/*.yaml` under one directory.
public struct Configuration: Sendable {
    public var directory: String
    public var connectors: [String: ConnectorConfig]
    /// The connector instances, for the kinds this build has.
    public var connectorInstances: [String: any Connector] = [:]
    /// Workflows in file-name order.
    public var workflows: [Workflow]
    /// The gateway's own key, which signs the values it hands out (Slack buttons).
    public var secretKey: GatewayKey = .ephemeral()
    /// The `${NAME}` values the files were read with; a stored version of a workflow is read with
    /// them too (``workflow(source:file:)``).
    var environment = EnvironmentInterpolator()

    public init(directory: String = ".", connectors: [String: ConnectorConfig] = [:], workflows: [Workflow] = []) {
        self.directory = directory
        self.connectors = connectors
        self.workflows = workflows
    }

    public func workflow(_ id: String) -> Workflow? { workflows.first { $0.id == id } }

    /// A workflow from its file's text (a stored version), checked against this configuration's
    /// connectors; the problems when it is no longer valid (a connector it calls was removed).
    public func workflow(source: String, file: String) -> Result<Workflow, ConfigurationError> {
        var problems: [ConfigurationProblem] = []
        guard let node = Self.parse(text: source, file: file, environment: environment, problems: &problems) else {
            return .failure(ConfigurationError(problems: problems))
        }
        var loader = WorkflowLoader(connectors: connectors, instances: connectorInstances)
        let workflow = loader.load(node)
        problems += loader.collector.problems
        guard var workflow, !problems.contains(where: { $0.severity == .error }) else {
            return .failure(ConfigurationError(problems: problems))
        }
        workflow.source = source
        return .success(workflow)
    }

    /// Workflows that an event of this type starts.
    public func workflows(forEvent type: String) -> [Workflow] {
        workflows.filter { if case let .event(t) = $0.trigger { t == type } else { false } }
    }

    /// Loads and validates everything; returns the configuration with every problem found.
    /// Problems of severity `.error` mean the configuration must not be used.
    public static func load(
        directory: String, environment: EnvironmentInterpolator = EnvironmentInterpolator(),
        registry: ConnectorRegistry = .shared, context: ConnectorBuildContext = ConnectorBuildContext()
    ) -> (Configuration, [ConfigurationProblem]) {
        var problems: [ConfigurationProblem] = []
        var configuration = Configuration(directory: directory)
        configuration.secretKey = context.secretKey

        let root = URL(fileURLWithPath: directory)
        let connectorFiles = yamlFiles(in: root.appendingPathComponent("connectors"))
        let workflowFiles = yamlFiles(in: root.appendingPathComponent("workflows"))
        if connectorFiles.isEmpty && workflowFiles.isEmpty {
            problems.append(ConfigurationProblem(
                file: directory, line: 1, column: 1,
                "no configuration found: expected connectors/*.yaml or workflows/*.yaml under \(directory)"))
        }

        for file in connectorFiles {
            guard let node = parse(file, environment: environment, problems: &problems) else { continue }
            var collector = ProblemCollector()
            if let connector = ConnectorConfig.load(node, &collector, registry: registry) {
                if let existing = configuration.connectors[connector.id] {
                    collector.error(node, "duplicate connector id '\(connector.id)' (also in \(existing.file))")
                } else {
                    configuration.connectors[connector.id] = connector
                }
            }
            problems += collector.problems
        }

        for connector in configuration.connectors.values.sorted(by: { $0.id < $1.id }) {
            do {
                if let instance = try registry.make(connector, context: context) {
                    configuration.connectorInstances[connector.id] = instance
                }
            } catch {
                let line = connector.keyLines[error.key.split(separator: ".").first.map(String.init) ?? ""] ?? 1
                problems.append(ConfigurationProblem(file: connector.file, line: line, column: 1,
                                                     "connector '\(connector.id)': \(error.key): \(error.message)"))
            }
        }

        configuration.environment = environment
        var seenWorkflows: [String: String] = [:]
        var started: [(id: String, at: YAMLNode)] = []
        for file in workflowFiles {
            guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
                problems.append(ConfigurationProblem(file: relativePath(file), line: 1, column: 1, "cannot read the file"))
                continue
            }
            guard let node = parse(text: text, file: relativePath(file), environment: environment, problems: &problems) else { continue }
            var loader = WorkflowLoader(connectors: configuration.connectors, instances: configuration.connectorInstances)
            if var workflow = loader.load(node) {
                workflow.source = text
                if let other = seenWorkflows[workflow.id] {
                    loader.collector.error(node, "duplicate workflow id '\(workflow.id)' (also in \(other))")
                } else {
                    seenWorkflows[workflow.id] = file
                    configuration.workflows.append(workflow)
                }
            }
            started += loader.startedWorkflows
            problems += loader.collector.problems
        }
        var collector = ProblemCollector()
        for (id, node) in started where seenWorkflows[id] == nil {
            collector.error(node, "start_workflow names no workflow '\(id)'; loaded: \(seenWorkflows.keys.sorted().joined(separator: ", "))")
        }
        problems += collector.problems
        return (configuration, problems)
    }

    /// Loads the configuration, or throws every error found.
    public static func loadValid(
        directory: String, environment: EnvironmentInterpolator = EnvironmentInterpolator(),
        context: ConnectorBuildContext = ConnectorBuildContext()
    ) throws -> (Configuration, warnings: [ConfigurationProblem]) {
        let (configuration, problems) = load(directory: directory, environment: environment, context: context)
        if problems.contains(where: { $0.severity == .error }) { throw ConfigurationError(problems: problems) }
        return (configuration, problems)
    }

    static func yamlFiles(in folder: URL) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") || $0.hasSuffix(".yml") }.sorted()
            .map { folder.appendingPathComponent($0).path }
    }

    /// Parses a file and substitutes `${NAME}` references in its values.
    static func parse(_ file: String, environment: EnvironmentInterpolator, problems: inout [ConfigurationProblem]) -> YAMLNode? {
        let display = relativePath(file)
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            problems.append(ConfigurationProblem(file: display, line: 1, column: 1, "cannot read the file"))
            return nil
        }
        return parse(text: text, file: display, environment: environment, problems: &problems)
    }

    /// Parses YAML text and substitutes `${NAME}` references in its values; `file` names it in problems.
    static func parse(text: String, file display: String, environment: EnvironmentInterpolator,
                      problems: inout [ConfigurationProblem]) -> YAMLNode? {
        do {
            guard let node = try Yams.compose(yaml: text) else {
                problems.append(ConfigurationProblem(file: display, line: 1, column: 1, "the file is empty"))
                return nil
            }
            return YAMLNode(node: interpolate(node, environment, file: display, problems: &problems), file: display)
        } catch let error as YamlError {
            let (line, column, message) = describe(error)
            problems.append(ConfigurationProblem(file: display, line: line, column: column, "invalid YAML: \(message)"))
            return nil
        } catch {
            problems.append(ConfigurationProblem(file: display, line: 1, column: 1, "invalid YAML: \(error)"))
            return nil
        }
    }

    static func describe(_ error: YamlError) -> (Int, Int, String) {
        switch error {
        case let .scanner(context, problem, mark, _):
            return (mark.line, mark.column, [context?.text, problem].compactMap { $0 }.joined(separator: " "))
        case let .parser(context, problem, mark, _):
            return (mark.line, mark.column, [context?.text, problem].compactMap { $0 }.joined(separator: " "))
        case let .composer(context, problem, mark, _):
            return (mark.line, mark.column, [context?.text, problem].compactMap { $0 }.joined(separator: " "))
        default:
            return (1, 1, "\(error)")
        }
    }

    private static func interpolate(_ node: Node, _ environment: EnvironmentInterpolator, file: String,
                                    problems: inout [ConfigurationProblem]) -> Node
    {
        switch node {
        case var .scalar(scalar):
            let (text, missing) = environment.interpolate(scalar.string)
            for name in missing {
                problems.append(ConfigurationProblem(
                    file: file, line: scalar.mark?.line ?? 1, column: scalar.mark?.column ?? 1,
                    "environment variable \(name) is not set and has no default (write ${\(name):-default} to give one)"))
            }
            scalar.string = text
            return .scalar(scalar)
        case let .mapping(mapping):
            var pairs: [(Node, Node)] = []
            for (key, value) in mapping { pairs.append((key, interpolate(value, environment, file: file, problems: &problems))) }
            var result = Node.Mapping(pairs, mapping.tag, mapping.style)
            result.mark = mapping.mark
            return .mapping(result)
        case let .sequence(sequence):
            var result = Node.Sequence(sequence.map { interpolate($0, environment, file: file, problems: &problems) },
                                       sequence.tag, sequence.style)
            result.mark = sequence.mark
            return .sequence(result)
        case .alias:
            return node
        }
    }

    static func relativePath(_ path: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath + "/"
        return path.hasPrefix(cwd) ? String(path.dropFirst(cwd.count)) : path
    }
}
