import CEL
import Foundation
import Hummingbird

/// The console's pages about the configuration and the store: workflows, lists, connectors and
/// the audit log.
extension Console {
    func workflowsPage(_ user: User) -> Response {
        let workflows = gateway.configuration.workflows.map { workflow -> [String: Any] in
            let trigger: String = switch workflow.trigger {
            case let .event(type): "event \(type)" + (workflow.triggerFilter.map { " if \($0.source)" } ?? "")
            case .api: "API"
            case let .schedule(schedule): schedule.description
            }
            return ["id": workflow.id, "trigger": trigger, "version": workflow.version.map { "v\($0)" } ?? "—",
                    "steps": workflow.stepsByID.count, "description": workflow.description ?? ""]
        }
        return page("Workflows", "workflows", ["workflows": workflows, "nav_workflows": true], user: user)
    }

    func workflowPage(_ id: String, _ user: User) async throws -> Response {
        guard let workflow = gateway.configuration.workflow(id) else {
            return notFound("There is no workflow \(id).", user: user)
        }
        let versions = try await gateway.store.workflowVersions(id)
        // Decisions of the runs started in the last 24 hours that have finished.
        let since = gateway.clock.now().addingTimeInterval(-86_400)
        var counts: [String: Int] = [:]
        for (decision, count) in try await gateway.store.finishedRunCounts(workflow: id, since: since) {
            counts[decision?.rawValue ?? "none", default: 0] += count
        }
        let object: [String: Any] = [
            "id": workflow.id, "version": workflow.version.map { "v\($0)" } ?? "—", "description": workflow.description as Any,
            "graph": WorkflowGraph(workflow: workflow).svg, "source": workflow.source, "file": workflow.file,
            "decisions": counts.keys.sorted().map { ["name": $0, "count": counts[$0]!] },
            "versions": versions.reversed().map { record -> [String: Any] in
                ["version": record.label, "created": record.createdAt.rfc3339, "sha": String(record.sha256.prefix(16)),
                 "current": record.version == workflow.version]
            },
            "nav_workflows": true,
        ]
        return page(workflow.id, "workflow", object, user: user)
    }

    func listsPage(_ user: User) async throws -> Response {
        let lists = try await gateway.store.lists().map { ["name": $0.name, "kind": $0.kind.rawValue, "count": $0.items.count] as [String: Any] }
        return page("Lists", "lists", ["lists": lists, "nav_lists": true], user: user)
    }

    func listPage(_ name: String, _ user: User, error: String?) async throws -> Response {
        guard let list = try await gateway.store.list(name) else {
            return notFound("There is no list \(name).", user: user)
        }
        let placeholder = switch list.kind {
        case .ip: "203.0.113.7 or 198.51.100.0/24"
        case .email: "name@example.com or example.com"
        case .string: "a value"
        }
        var response = page(name, "list", ["name": list.name, "kind": list.kind.rawValue, "items": list.items.map { ["item": $0] },
                                           "canWrite": user.can("lists:write"), "placeholder": placeholder, "error": error as Any,
                                           "nav_lists": true], user: user)
        if error != nil { response.status = .unprocessableContent }
        return response
    }

    /// "Add" and "Remove" on a list's page.
    func changeList(_ name: String, add: Bool, _ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        guard let (user, fields) = try await formUser(request) else { return Self.redirect("/console/login") }
        guard user.can("lists:write") else { throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope lists:write") }
        guard let list = try await gateway.store.list(name) else { throw Problem.notFound("no list '\(name)'") }
        let item = (fields["item"] ?? "").trimmingCharacters(in: .whitespaces)
        if add {
            if let problem = item.isEmpty ? "an empty item" : ListIndexSnapshot.problem(with: item, kind: list.kind) {
                return try await listPage(name, user, error: "Not added: \(problem).")
            }
            var audit = consoleAudit("list.items_added", "list:\(name)", user, context)
            audit.details = ["items": [.string(item)]]
            _ = try await gateway.store.addListItems(name, items: [item], audit: audit)
        } else {
            var audit = consoleAudit("list.item_removed", "list:\(name)", user, context)
            audit.details = ["item": .string(item)]
            _ = try await gateway.store.removeListItem(name, item: item, audit: audit)
        }
        try await gateway.lists.refresh(from: gateway.store)
        return Self.redirect("/console/lists/\(Self.pathEscape(name))")
    }

    func connectorsPage(_ user: User, result: [String: Any]?) -> Response {
        let configuration = gateway.configuration
        let connectors = configuration.connectors.values.sorted { $0.id < $1.id }.map { connector -> [String: Any] in
            let instance = configuration.connectorInstances[connector.id]
            let circuit = gateway.deliveryWorker.circuitState(connector.id)?["state"]?.stringValue ?? "—"
            let limits = instance.map { instance in
                "concurrency \(instance.delivery.concurrency)"
                    + (instance.delivery.rateLimit.map { ", \($0.count)/\(ConfigDuration.format($0.per))" } ?? "")
            } ?? "not available in this build"
            return ["id": connector.id, "kind": connector.kind, "circuit": circuit, "limits": limits,
                    "canTest": user.can("connectors:write") && instance != nil]
        }
        return page("Connectors", "connectors", ["connectors": connectors, "result": result as Any, "nav_connectors": true], user: user)
    }

    func auditPage(_ request: Request, _ user: User) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = AuditQuery(limit: 100)
        query.action = parameters["action"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        query.actor = parameters["actor"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        if let cursor = parameters["cursor"] { query.before = AuditID(String(cursor)) }
        let entries = try await gateway.store.auditLog(query)
        var next: String?
        if entries.count == query.limit, let last = entries.last {
            next = "/console/audit?" + FormEncoding.encode([("action", query.action ?? ""), ("actor", query.actor ?? ""),
                                                            ("cursor", last.id.rawValue)].filter { !$0.1.isEmpty })
        }
        let rows = entries.map { entry -> [String: Any] in
            ["at": entry.at.rfc3339, "actor": "\(entry.actorKind.rawValue):\(entry.actorName)", "action": entry.action,
             "target": entry.target, "outcome": entry.outcome, "from": entry.sourceIP ?? ""]
        }
        return page("Audit", "audit", ["entries": rows, "action": query.action ?? "", "actor": query.actor ?? "", "next": next as Any,
                                        "nav_audit": true], user: user)
    }
}
