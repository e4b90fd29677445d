import CEL
import Foundation
import Hummingbird

/// The console's runs: the list with its filters and search, a run with its graph and steps, the
/// review queue, and a review decided from the console.
extension Console {
    func runsPage(_ request: Request, _ user: User) async throws -> Response {
        let parameters = request.uri.queryParameters
        var query = RunQuery(limit: 100)
        let workflow = parameters["workflow"].map(String.init).flatMap { $0.isEmpty ? nil : $0 }
        let status = parameters["status"].map(String.init).flatMap(RunStatus.init(rawValue:))
        query.workflow = workflow
        query.status = status
        if let cursor = parameters["cursor"] { query.before = RunID(String(cursor)) }
        let decision = parameters["decision"].map(String.init).flatMap(Decision.init(rawValue:))
        query.decision = decision
        var notice: String?
        let q = parameters["q"].map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
        if !q.isEmpty {
            if q.hasPrefix("run_") {
                if try await gateway.store.loadRun(RunID(q)) != nil { return Self.redirect("/console/runs/\(Self.pathEscape(q))") }
                notice = "No run \(q)."
            } else if q.hasPrefix("evt_") {
                query.eventID = EventID(q)
            } else if let equals = q.firstIndex(of: "="), equals != q.startIndex {
                // A field of the event: data.inquiry.id=inq_123
                let path = q[..<equals].split(separator: ".").map(String.init)
                query.eventField = (path, String(q[q.index(after: equals)...]))
            } else {
                notice = "Search takes a run id (run_...), an event id (evt_...) or a field of the event (data.inquiry.id=inq_123)."
            }
        }
        let runs = try await gateway.store.listRuns(query)
        var next: String?
        if runs.count == query.limit, let last = runs.last {
            var items = [("cursor", last.id.rawValue)]
            if let workflow { items.append(("workflow", workflow)) }
            if let status { items.append(("status", status.rawValue)) }
            if let decision { items.append(("decision", decision.rawValue)) }
            if !q.isEmpty { items.append(("q", q)) }
            next = "/console/runs?" + FormEncoding.encode(items)
        }
        let object: [String: Any] = [
            "q": parameters["q"].map(String.init) ?? "",
            "notice": notice as Any,
            "workflows": gateway.configuration.workflows.map { ["id": $0.id, "selected": $0.id == workflow] },
            "statuses": RunStatus.allCases.map { ["name": $0.rawValue, "selected": $0 == status] },
            "decisions": Decision.allCases.map { ["name": $0.rawValue, "selected": $0 == decision] },
            "runs": runs.map { run -> [String: Any] in
                ["id": run.id.rawValue, "workflow": run.workflow, "status": run.status.rawValue,
                 "decision": run.decision?.rawValue ?? "", "tags": run.tags.joined(separator: ", "), "created": run.createdAt.rfc3339]
            },
            "next": next as Any,
            "nav_runs": true,
        ]
        return page("Runs", "runs", object, user: user)
    }

    func runPage(_ id: RunID, _ user: User) async throws -> Response {
        guard let snapshot = try await gateway.store.loadRun(id) else {
            return notFound("There is no run \(id.rawValue).", user: user)
        }
        let run = snapshot.run
        try await gateway.live.prepare(for: run, store: gateway.store)
        let workflow = try? gateway.live.workflow(for: run).get()
        let statuses = Dictionary(snapshot.steps.map { ($0.id, $0.status) }, uniquingKeysWith: { $1 })
        let depth = Dictionary(snapshot.steps.map { ($0.id, $0.parent) }, uniquingKeysWith: { $1 })
        func indent(_ step: String) -> Int {
            var level = 0
            var parent = depth[step] ?? nil
            while let current = parent, level < 20 { level += 1; parent = depth[current] ?? nil }
            return level
        }
        let waitingReview = workflow.map { Self.waitsForReview(snapshot, $0) } ?? false
        let deliveries = user.can("deliveries:read") ? try await gateway.store.listDeliveries(DeliveryQuery(run: id, limit: 100)) : []
        var trigger = run.json()["trigger"]?.text ?? "{}"
        if trigger == "{}" { trigger = "none" }
        let object: [String: Any] = [
            "id": run.id.rawValue, "workflow": run.workflow, "status": run.status.rawValue,
            "decision": run.decision?.rawValue as Any, "version": run.workflowVersion.map { "v\($0)" } ?? "—",
            "created": run.createdAt.rfc3339, "updated": run.updatedAt.rfc3339, "trigger": trigger,
            "tags": (run.tags.isEmpty ? nil : run.tags.joined(separator: ", ")) as Any,
            "error": run.error.map { "[\($0.errorClass)] \($0.message)" } as Any,
            "review": waitingReview && user.can("reviews:write"),
            "reviewNotAllowed": waitingReview && !user.can("reviews:write"),
            "graph": workflow.map { WorkflowGraph(workflow: $0, statuses: statuses).svg } ?? "<p class=\"hint\">The workflow is not loaded.</p>",
            "steps": snapshot.steps.map { step -> [String: Any] in
                [
                    "id": step.id, "kind": workflow?.stepsByID[step.id]?.kindName ?? "", "status": step.status.rawValue,
                    "indent": indent(step.id), "started": step.startedAt.rfc3339, "ended": step.endedAt?.rfc3339 as Any,
                    "duration": step.endedAt.map { Self.duration($0.timeIntervalSince(step.startedAt)) } ?? "",
                    "output": step.output.map(Self.pretty) as Any,
                    "error": step.error.map { "[\($0.errorClass)] \($0.message)" } as Any,
                ]
            },
            "input": Self.pretty(run.input ?? .object([:])),
            "output": Self.pretty(run.output ?? .object([:])),
            "deliveries": deliveries.map { delivery -> [String: Any] in
                ["id": delivery.id.rawValue, "step": delivery.stepID, "connector": delivery.connector, "operation": delivery.operation,
                 "status": delivery.status.rawValue, "attempts": delivery.attemptCount]
            },
            "nav_runs": true,
        ]
        return page(run.workflow, "run", object, user: user)
    }

    func reviewsPage(_ user: User) async throws -> Response {
        var waiting: [[String: Any]] = []
        for run in try await gateway.store.listRuns(RunQuery(status: .waiting, limit: 500)).reversed() {
            guard let snapshot = try await gateway.store.loadRun(run.id) else { continue }
            try await gateway.live.prepare(for: run, store: gateway.store)
            guard let workflow = try? gateway.live.workflow(for: run).get(), Self.waitsForReview(snapshot, workflow) else { continue }
            let review = snapshot.steps.last { step in
                if case .wait(.review)? = workflow.stepsByID[step.id]?.kind { return step.status == .waiting }
                return false
            }
            // What the run started with: the event's data, or the API input.
            let facts = snapshot.run.event?["data"] ?? snapshot.run.input ?? .object([:])
            waiting.append(["id": run.id.rawValue, "workflow": run.workflow, "since": (review?.startedAt ?? run.createdAt).rfc3339,
                            "facts": Self.pretty(facts), "canReview": user.can("reviews:write")])
        }
        return page("Reviews", "reviews", ["reviews": waiting, "nav_reviews": true], user: user)
    }

    func review(_ id: RunID, _ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        guard let (user, fields) = try await formUser(request) else { return Self.redirect("/console/login") }
        guard user.can("reviews:write") else {
            throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope reviews:write")
        }
        guard let decision = fields["decision"], decision == "approve" || decision == "decline" else {
            throw Problem(.unprocessableContent, "decision must be approve or decline")
        }
        let audit = AuditEntry(at: gateway.clock.now(), actor: .console, name: user.key.name, action: "review.decided",
                               target: "run:\(id.rawValue)", requestID: context.requestID, sourceIP: context.sourceIP,
                               details: ["decision": .string(decision)])
        do {
            _ = try await gateway.review(run: id, decision: decision, reviewer: user.key.name, audit: audit)
        } catch Gateway.ReviewError.runNotFound {
            throw Problem.notFound("no run '\(id)'")
        } catch Gateway.ReviewError.noReviewWaiting {
            throw Problem(.conflict, "run '\(id)' is not waiting for a review (already decided?)")
        }
        return Self.redirect("/console/runs/\(Self.pathEscape(id.rawValue))")
    }

    static func waitsForReview(_ snapshot: RunSnapshot, _ workflow: Workflow) -> Bool {
        snapshot.run.status == .waiting && snapshot.steps.contains { step in
            guard step.status == .waiting, step.output == nil, case .wait(.review)? = workflow.stepsByID[step.id]?.kind else { return false }
            return true
        }
    }
}
