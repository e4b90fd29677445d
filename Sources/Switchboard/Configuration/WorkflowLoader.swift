import CEL
import Foundation
import Mustache

/// Reads a workflow file into a ``Workflow``, reporting every problem it finds.
struct WorkflowLoader {
    let connectors: [String: ConnectorConfig]
    let instances: [String: any Connector]
    var collector = ProblemCollector()
    private var stepIDs: [String: YAMLNode] = [:]
    /// `steps.<id>` references, checked once every step id is known.
    var stepReferences: [(id: String, at: YAMLNode)] = []
    /// The workflows `start_workflow` steps name, checked once every workflow is known.
    private(set) var startedWorkflows: [(id: String, at: YAMLNode)] = []

    static let stepKinds = ["if", "switch", "action", "connector", "parallel", "wait", "output", "start_workflow"]
    static let stepKeys = ["id", "description", "if", "then", "else", "switch", "action", "with", "connector", "operation", "output",
                           "start_workflow", "input", "after", "at",
                           "parallel", "wait", "correlation", "timeout", "retry", "on_error"]

    init(connectors: [String: ConnectorConfig], instances: [String: any Connector] = [:]) {
        self.connectors = connectors
        self.instances = instances
    }

    mutating func load(_ node: YAMLNode) -> Workflow? {
        collector.checkKeys(node, allowed: ["id", "description", "trigger", "search", "steps"], required: ["id", "trigger", "steps"],
                            context: "workflow")
        guard node.mapping != nil else { return nil }
        let id = node["id"]?.scalar ?? ""
        if let idNode = node["id"], !Self.isIdentifier(id) {
            collector.error(idNode, "workflow id '\(id)' must be letters, digits, '-' and '_'")
        }
        let trigger = node["trigger"].flatMap { loadTrigger($0) }
        let triggerFilter = node["trigger"]?["if"].flatMap { loadTriggerFilter($0, trigger: trigger) }
        let steps = node["steps"].map { loadSteps($0, context: "steps") } ?? []
        if let stepsNode = node["steps"], steps.isEmpty, stepsNode.sequence?.isEmpty == true {
            collector.error(stepsNode, "a workflow needs at least one step")
        }
        var reported = Set<String>()
        for reference in stepReferences where stepIDs[reference.id] == nil
            && reported.insert("\(reference.id)@\(reference.at.line):\(reference.at.column)").inserted
        {
            collector.error(reference.at, "reference to unknown step 'steps.\(reference.id)'; known steps: "
                + (stepIDs.keys.sorted().joined(separator: ", ")))
        }
        let searchFields = node["search"].map { loadSearchFields($0) } ?? []
        guard let trigger, !id.isEmpty else { return nil }
        var workflow = Workflow(id: id, description: node["description"]?.scalar, trigger: trigger, triggerFilter: triggerFilter,
                                steps: steps, file: node.file)
        workflow.searchFields = searchFields
        return workflow
    }

    static func isIdentifier(_ text: String) -> Bool {
        !text.isEmpty && text.unicodeScalars.allSatisfy {
            ("a" ... "z").contains($0) || ("A" ... "Z").contains($0) || ("0" ... "9").contains($0) || $0 == "-" || $0 == "_"
        }
    }

    // MARK: Steps

    private mutating func loadSteps(_ node: YAMLNode, context: String) -> [Step] {
        guard let items = node.sequence else {
            collector.error(node, "\(context) must be a list of steps, got \(node.kindName)")
            return []
        }
        return items.compactMap { loadStep($0) }
    }

    private mutating func loadStep(_ node: YAMLNode) -> Step? {
        guard node.mapping != nil else {
            collector.error(node, "a step must be a mapping with an 'id' and one of: \(Self.stepKinds.joined(separator: ", "))")
            return nil
        }
        collector.checkKeys(node, allowed: Self.stepKeys, context: "step")
        guard let idNode = node["id"], let id = idNode.scalar, !id.isEmpty else {
            collector.error(node, "missing key 'id' in step")
            return nil
        }
        if !Self.isIdentifier(id) || id.contains("-") {
            collector.error(idNode, "step id '\(id)' must be letters, digits and '_' (it is used as steps.\(id) in expressions)")
        }
        if let previous = stepIDs[id] {
            collector.error(idNode, "duplicate step id '\(id)' (first used at line \(previous.line)); step ids are unique within a workflow")
        } else {
            stepIDs[id] = idNode
        }
        // `wait:` is also a key of start_workflow (wait for the child) and goes with a callback's connector.
        let kinds = Self.stepKinds.filter { node[$0] != nil && !($0 == "connector" && node["wait"] != nil)
            && !($0 == "wait" && node["start_workflow"] != nil) }
        guard kinds.count == 1 else {
            if kinds.isEmpty {
                collector.error(node, "step '\(id)' has no kind; expected one of: \(Self.stepKinds.joined(separator: ", "))")
            } else {
                collector.error(node, "step '\(id)' has several kinds (\(kinds.joined(separator: ", "))); a step has exactly one")
            }
            return nil
        }
        let kind: Step.Kind?
        switch kinds[0] {
        case "if": kind = loadCondition(node, id: id)
        case "switch": kind = loadSwitch(node["switch"]!, id: id)
        case "action": kind = loadAction(node, id: id)
        case "connector": kind = loadConnectorStep(node, id: id)
        case "parallel": kind = .parallel(loadSteps(node["parallel"]!, context: "parallel"))
        case "output": kind = loadOutput(node["output"]!)
        case "start_workflow": kind = loadStartWorkflow(node)
        default: kind = loadWait(node, id: id)
        }
        let misplaced: [(String, String)] = [("then", "if"), ("else", "if"), ("with", "action or connector"),
                                             ("operation", "connector"), ("correlation", "wait: callback")]
        for (key, owner) in misplaced where node[key] != nil {
            let fits = switch key {
            case "then", "else": kinds[0] == "if"
            case "with": kinds[0] == "action" || kinds[0] == "connector"
            case "operation": kinds[0] == "connector"
            default: kinds[0] == "wait"
            }
            if !fits { collector.error(node[key]!, "'\(key)' belongs to a step of kind \(owner), not \(kinds[0])") }
        }
        var timeout: Duration?
        if let timeoutNode = node["timeout"] {
            timeout = ConfigDuration.parse(timeoutNode.scalar ?? "")
            if timeout == nil {
                collector.error(timeoutNode, "timeout '\(timeoutNode.scalar ?? "")' is not a duration; write it like 250ms, 5s, 10m or 72h")
            }
        }
        let retry = node["retry"].map { loadRetry($0) }
        var onError = OnError.fail
        if let handler = node["on_error"] {
            switch handler.scalar {
            case "fail": onError = .fail
            case "continue": onError = .continue
            case let other?:
                collector.error(handler, "on_error '\(other)' must be fail, continue, or a list of steps")
            case nil: onError = .steps(loadSteps(handler, context: "on_error"))
            }
        }
        guard let kind else { return nil }
        return Step(id: id, kind: kind, timeout: timeout, retry: retry, onError: onError, location: idNode.location)
    }

    private mutating func loadCondition(_ node: YAMLNode, id: String) -> Step.Kind? {
        let expression = compile(node["if"]!, context: "if")
        if node["then"] == nil { collector.error(node, "step '\(id)' has 'if' but no 'then'") }
        let then = node["then"].map { loadSteps($0, context: "then") } ?? []
        let otherwise = node["else"].map { loadSteps($0, context: "else") } ?? []
        return expression.map { .condition($0, then: then, else: otherwise) }
    }

    private mutating func loadSwitch(_ node: YAMLNode, id: String) -> Step.Kind? {
        guard let routes = node.sequence else {
            collector.error(node, "switch must be a list of routes: - if: EXPR then: [steps], and a last - else: [steps]")
            return nil
        }
        var result: [SwitchRoute] = []
        for (index, route) in routes.enumerated() {
            collector.checkKeys(route, allowed: ["if", "then", "else"], context: "switch route")
            if let steps = route["else"] {
                if route["if"] != nil || route["then"] != nil {
                    collector.error(route, "a switch route has either 'if' and 'then', or 'else'")
                }
                if index != routes.count - 1 { collector.error(route, "the 'else' route must be the last route of the switch") }
                result.append(SwitchRoute(condition: nil, steps: loadSteps(steps, context: "else")))
            } else if let condition = route["if"] {
                guard route["then"] != nil else {
                    collector.error(route, "switch route has 'if' but no 'then'")
                    continue
                }
                let expression = compile(condition, context: "switch route")
                let steps = loadSteps(route["then"]!, context: "then")
                if let expression { result.append(SwitchRoute(condition: expression, steps: steps)) }
            } else if route.mapping != nil {
                collector.error(route, "a switch route needs 'if' and 'then', or 'else'")
            }
        }
        return .switch(result)
    }

    private mutating func loadAction(_ node: YAMLNode, id: String) -> Step.Kind? {
        let name = node["action"]?.scalar ?? ""
        switch name {
        case "approve": return .action(.approve)
        case "decline": return .action(.decline)
        case "mark_for_review": return .action(.markForReview)
        case "tag":
            guard let with = node["with"], let tag = with["tag"] else {
                collector.error(node, "action 'tag' needs with: { tag: NAME }")
                return nil
            }
            collector.checkKeys(with, allowed: ["tag"], context: "with (action tag)")
            return loadTemplate(tag).map { .action(.tag($0)) }
        case "add_to_list", "remove_from_list":
            guard let with = node["with"], let list = with["list"], let items = with["items"] else {
                collector.error(node, "action '\(name)' needs with: { list: NAME, items: [...] }")
                return nil
            }
            collector.checkKeys(with, allowed: ["list", "items"], context: "with (action \(name))")
            guard let listName = list.scalar, !listName.isEmpty else {
                collector.error(list, "with.list must be the name of a list")
                return nil
            }
            let operation: ListChange.Operation = name == "add_to_list" ? .add : .remove
            return loadTemplate(items).map { .action(.changeList(operation, list: listName, items: $0)) }
        default:
            collector.error(node["action"]!, "unknown action '\(name)'; expected one of: \(Self.actions.joined(separator: ", "))")
            return nil
        }
    }

    static let actions = ["approve", "decline", "mark_for_review", "tag", "add_to_list", "remove_from_list"]

    /// `output: {key: value, ...}`: values as in `with:` (`= expr` evaluated, inside arrays and objects too).
    private mutating func loadOutput(_ node: YAMLNode) -> Step.Kind? {
        guard let entries = node.mapping else {
            collector.error(node, "output must map keys to values, such as output: { decision_reason: \"= steps.check.output\" }")
            return nil
        }
        var fields: [String: ValueTemplate] = [:]
        for entry in entries {
            guard let template = loadTemplate(entry.value) else { continue }
            fields[entry.key] = template
        }
        return .output(fields)
    }

    private mutating func loadConnectorStep(_ node: YAMLNode, id: String) -> Step.Kind? {
        let connectorNode = node["connector"]!
        let connector = connectorNode.scalar ?? ""
        if connectors[connector] == nil {
            let known = connectors.keys.sorted()
            collector.error(connectorNode, "reference to unknown connector '\(connector)'; "
                + (known.isEmpty ? "no connectors are configured" : "configured connectors: \(known.joined(separator: ", "))"))
        }
        guard let operation = node["operation"]?.scalar, !operation.isEmpty else {
            collector.error(node, "connector step '\(id)' needs an 'operation'")
            return nil
        }
        let described = instances[connector].map { instance in (instance, instance.operation(operation)) }
        if let (instance, found) = described, found == nil {
            collector.error(node["operation"]!, "connector '\(connector)' has no operation '\(operation)'; its operations: "
                + instance.operations.map(\.name).joined(separator: ", "))
        }
        var with: [String: ValueTemplate] = [:]
        var given: [String: JSON?] = [:]
        if let withNode = node["with"] {
            guard let entries = withNode.mapping else {
                collector.error(withNode, "'with' must be a mapping of input names to values")
                return nil
            }
            for entry in entries {
                guard let template = loadTemplate(entry.value) else { continue }
                with[entry.key] = template
                if case let .literal(value) = template { given[entry.key] = .some(value) } else { given[entry.key] = .some(nil) }
            }
        }
        if let spec = described?.1 {
            for problem in spec.problems(with: given) { collector.error(node["with"] ?? node, "step '\(id)': \(problem)") }
        }
        return .connector(connector: connector, operation: operation, with: with)
    }

    /// `start_workflow: ID` with `input:`, `after:` or `at:`, and `wait:`. Whether the workflow
    /// exists is checked once every file is read (``Configuration/load``).
    private mutating func loadStartWorkflow(_ node: YAMLNode) -> Step.Kind? {
        guard let target = node["start_workflow"]?.scalar, Self.isIdentifier(target) else {
            collector.error(node["start_workflow"]!, "start_workflow must name a workflow id")
            return nil
        }
        var spec = StartWorkflow(workflow: target, wait: false)
        if let input = node["input"] { spec.input = loadTemplate(input) }
        if let after = node["after"] {
            guard let duration = ConfigDuration.parse(after.scalar ?? ""), duration > .zero else {
                collector.error(after, "after '\(after.scalar ?? "")' is not a duration; write it like 10m, 72h or 365d")
                return nil
            }
            spec.after = duration
        }
        if let at = node["at"] {
            if node["after"] != nil { collector.error(at, "give after: or at:, not both") }
            spec.at = compile(at, context: "at")
        }
        if let wait = node["wait"] {
            switch wait.json {
            case .bool(let flag): spec.wait = flag
            default: collector.error(wait, "wait on a start_workflow step is true or false")
            }
        }
        startedWorkflows.append((target, node["start_workflow"]!))
        return .startWorkflow(spec)
    }

    private mutating func loadWait(_ node: YAMLNode, id: String) -> Step.Kind? {
        let waitNode = node["wait"]!
        let what = waitNode.scalar ?? ""
        switch what {
        case "review":
            return .wait(.review)
        case "callback":
            guard let connector = node["connector"]?.scalar else {
                collector.error(node, "wait: callback needs 'connector:' naming the connector whose callback it waits for")
                return nil
            }
            if connectors[connector] == nil {
                collector.error(node["connector"]!, "reference to unknown connector '\(connector)'")
            }
            guard let correlationNode = node["correlation"] else {
                collector.error(node, "wait: callback needs 'correlation:', a CEL value the callback must carry")
                return nil
            }
            return compile(correlationNode, context: "correlation").map { .wait(.callback(connector: connector, correlation: $0)) }
        default:
            if let duration = ConfigDuration.parse(what) { return .wait(.duration(duration)) }
            collector.error(waitNode, "wait '\(what)' must be review, callback, or a duration such as 30s or 72h")
            return nil
        }
    }

    private mutating func loadRetry(_ node: YAMLNode) -> RetrySettings {
        collector.checkKeys(node, allowed: ["max_attempts", "initial_interval", "backoff", "max_interval", "max_age"],
                            context: "retry")
        func duration(_ key: String) -> Duration? {
            guard let value = node[key] else { return nil }
            guard let parsed = ConfigDuration.parse(value.scalar ?? "") else {
                collector.error(value, "\(key) '\(value.scalar ?? "")' is not a duration; write it like 250ms, 5s, 10m or 72h")
                return nil
            }
            return parsed
        }
        var maxAttempts: Int?
        if let value = node["max_attempts"] {
            maxAttempts = Int(value.scalar ?? "")
            if maxAttempts == nil || maxAttempts! < 1 { collector.error(value, "max_attempts must be a whole number of at least 1") }
        }
        var backoff: Double?
        if let value = node["backoff"] {
            backoff = Double(value.scalar ?? "")
            if backoff == nil || backoff! < 1 { collector.error(value, "backoff must be a number of at least 1.0") }
        }
        return RetrySettings(maxAttempts: maxAttempts, initialInterval: duration("initial_interval"), backoff: backoff,
                             maxInterval: duration("max_interval"), maxAge: duration("max_age"))
    }

    // MARK: Values

    /// Compiles a CEL expression, reporting a compile error at its position in the file.
    mutating func compile(_ node: YAMLNode, context: String) -> Expression? {
        guard let source = node.scalar, !source.trimmingCharacters(in: .whitespaces).isEmpty else {
            collector.error(node, "\(context) must be a CEL expression, got \(node.kindName)")
            return nil
        }
        do {
            let program = try ExpressionEnvironment.shared.compile(source)
            for path in program.referencedPaths where path.first == "steps" && path.count >= 2 {
                stepReferences.append((path[1], node))
            }
            return Expression(source: source, program: program, location: node.location)
        } catch {
            let quoted: Int = if case let .scalar(s) = node.node, s.style == .singleQuoted || s.style == .doubleQuoted { 1 } else { 0 }
            let line = node.line + (error.line ?? 1) - 1
            let column = (error.line ?? 1) == 1 ? node.column + quoted + (error.column ?? 1) - 1 : (error.column ?? 1)
            collector.problems.append(ConfigurationProblem(
                file: node.file, line: line, column: column, "in \(context) expression '\(source)': \(error.message)"))
            return nil
        }
    }

    /// A `with:` value: `= expr` is CEL, a string with `{{` is a Mustache template, anything else is literal data.
    mutating func loadTemplate(_ node: YAMLNode) -> ValueTemplate? {
        if let entries = node.mapping {
            var object: [String: ValueTemplate] = [:]
            for entry in entries { object[entry.key] = loadTemplate(entry.value) }
            return .object(object)
        }
        if let items = node.sequence { return .array(items.compactMap { loadTemplate($0) }) }
        let json = node.json
        guard case let .string(text) = json else { return .literal(json) }
        switch ValueTemplate.form(of: text) {
        case let .expression(source):
            let exprNode = YAMLNode(node: .scalar(.init(source, .implicit, .plain, node.node.mark)), file: node.file)
            return compile(exprNode, context: "value").map { .expression($0) }
        case .template:
            do {
                return .template(source: text, try ValueTemplate.mustache(text))
            } catch {
                collector.error(node, "template '\(text)' is not valid Mustache: \(error)")
                return nil
            }
        case .literal:
            return .literal(json)
        }
    }
}
