import CEL
import Foundation
import Hummingbird

/// The console's runs: the list with its filters and search, a run with its graph and steps, the
/// review queue, and a review decided from the console.
extension Console {
    func runsPage(_ request: Request, _ user: User) async throws -> Response {
        let parameters = request.uri.queryParameters
        func text(_ name: String) -> String {
            parameters[Substring(name)].map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
        }
        var query = RunQuery(limit: 100)
        var notices: [String] = []
        query.workflow = text("workflow").isEmpty ? nil : text("workflow")
        query.status = RunStatus(rawValue: text("status"))
        query.decision = Decision(rawValue: text("decision"))
        for (name, keyPath) in [("since", \RunQuery.since), ("until", \RunQuery.until)] where !text(name).isEmpty {
            if let date = Self.time(text(name)) {
                query[keyPath: keyPath] = date
            } else {
                notices.append(Self.unreadableTime(name))
            }
        }
        if !text("cursor").isEmpty { query.before = RunID(text("cursor")) }
        let q = text("q")
        var searchable = true  // false when the search box holds nothing that can be looked up
        if !q.isEmpty {
            if q.hasPrefix("run_") {
                if try await gateway.store.loadRun(RunID(q)) != nil { return Self.redirect("/console/runs/\(Self.pathEscape(q))") }
                notices.append("No run \(q).")
            } else if q.hasPrefix("evt_") {
                query.eventID = EventID(q)
            } else if let equals = q.firstIndex(of: "="), equals != q.startIndex {
                // A field a workflow lists under `search`: data.inquiry.id=inq_123
                let name = q[..<equals].trimmingCharacters(in: .whitespaces)
                let value = q[q.index(after: equals)...].trimmingCharacters(in: .whitespaces)
                let fields = Set(gateway.configuration.workflows.flatMap(\.searchFields).map(\.description))
                if fields.contains(name) {
                    query.searchTerm = RunSearch.term(name, value)
                } else {
                    searchable = false
                    notices.append("Runs are not found by \(name): a workflow lists the fields its runs are found by under search: "
                        + (fields.isEmpty ? "(none does)." : "(" + fields.sorted().joined(separator: ", ") + ")."))
                }
            } else {
                searchable = false
                notices.append("Search takes a run id (run_...), an event id (evt_...) or a search field (data.inquiry.id=inq_123).")
            }
        }
        let runs = searchable ? try await gateway.store.listRuns(query) : []
        var next: String?
        if runs.count == query.limit, let last = runs.last {
            let items = ["q", "workflow", "status", "decision", "since", "until"].map { ($0, text($0)) }.filter { !$0.1.isEmpty }
            next = "/console/runs?" + FormEncoding.encode(items + [("cursor", last.id.rawValue)])
        }
        let object: [String: Any] = [
            "q": q, "since": text("since"), "until": text("until"),
            "notice": notices.isEmpty ? nil as String? : notices.joined(separator: " ") as Any,
            "workflows": gateway.configuration.workflows.map { ["id": $0.id, "selected": $0.id == query.workflow] },
            "statuses": RunStatus.allCases.map { ["name": $0.rawValue, "selected": $0 == query.status] },
            "decisions": Decision.allCases.map { ["name": $0.rawValue, "selected": $0 == query.decision] },
            "runs": runs.map { run -> [String: Any] in
                ["id": run.id.rawValue, "workflow": run.workflow, "status": run.status.rawValue,
                 "decision": run.decision?.rawValue ?? "", "tags": run.tags.joined(separator: ", "), "created": run.createdAt.rfc3339]
            },
            "next": next as Any,
            "nav_runs": true,
        ]
        return page("Runs", "runs", object, user: user)
    }

    /// A time from a filter: RFC 3339, or `2026-11-26T10:00` (a browser's datetime-local field) or
    /// `2026-11-26`, both read as UTC.
    static func time(_ text: String) -> Date? {
        if let date = Date(rfc3339: text) { return date }
        if let date = Date(rfc3339: text + ":00Z") { return date }
        return Date(rfc3339: text + "T00:00:00Z")
    }

    static func unreadableTime(_ name: String) -> String {
        "\(name) must be a time such as 2026-11-26T10:00:00Z, 2026-11-26T10:00 or 2026-11-26 (UTC); not applied."
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

    /// Waiting runs oldest first, 100 a page; those that wait for a review are shown (others wait
    /// for a timer or a callback).
    func reviewsPage(_ request: Request, _ user: User) async throws -> Response {
        var query = RunQuery(status: .waiting, limit: 100)
        query.oldestFirst = true
        if let cursor = request.uri.queryParameters["cursor"], !cursor.isEmpty { query.after = RunID(String(cursor)) }
        let runs = try await gateway.store.listRuns(query)
        var waiting: [[String: Any]] = []
        for snapshot in try await gateway.store.loadRuns(runs.map(\.id)) {
            let run = snapshot.run
            try await gateway.live.prepare(for: run, store: gateway.store)
            guard let workflow = try? gateway.live.workflow(for: run).get(), Self.waitsForReview(snapshot, workflow) else { continue }
            let review = snapshot.steps.last { step in
                if case .wait(.review)? = workflow.stepsByID[step.id]?.kind { return step.status == .waiting }
                return false
            }
            let facts = Self.reviewFacts(snapshot, workflow)
            let fields = Self.fields(facts)
            waiting.append(["id": run.id.rawValue, "workflow": run.workflow, "since": (review?.startedAt ?? run.createdAt).rfc3339,
                            "facts": Self.pretty(facts), "fields": fields ?? [], "listed": fields != nil,
                            "canReview": user.can("reviews:write")])
        }
        let next = runs.count == query.limit ? runs.last.map { "/console/reviews?cursor=\($0.id.rawValue)" } : nil
        return page("Reviews", "reviews", ["reviews": waiting, "next": next as Any, "nav_reviews": true], user: user)
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

    /// What a reviewer is shown: the `facts` of the review alert the run sent (a connector step
    /// with `facts` in its `with`, evaluated as the step did), else the event's data or the input.
    static func reviewFacts(_ snapshot: RunSnapshot, _ workflow: Workflow) -> JSON {
        for step in snapshot.steps {
            guard case let .connector(_, _, with)? = workflow.stepsByID[step.id]?.kind, let template = with["facts"] else { continue }
            let context = RunContext(run: snapshot.run, steps: snapshot.steps, now: step.startedAt, lists: ListIndexSnapshot(lists: []))
            if let facts = try? template.evaluate(in: context), case let .object(fields) = facts, !fields.isEmpty { return facts }
        }
        return snapshot.run.event?["data"] ?? snapshot.run.input ?? .object([:])
    }

    /// A flat object's fields as name and text (a string as it is, anything else as JSON), for a
    /// list a reviewer reads at a glance; nil for anything else, which is shown as JSON.
    static func fields(_ facts: JSON) -> [[String: String]]? {
        guard case let .object(object) = facts, !object.isEmpty, object.count <= 20 else { return nil }
        var fields: [[String: String]] = []
        for name in object.keys.sorted() {
            switch object[name] {
            case .object?, .array?: return nil
            case let .string(text)?: fields.append(["name": name, "value": text])
            case let value?: fields.append(["name": name, "value": value.text])
            case nil: break
            }
        }
        return fields
    }

    static func waitsForReview(_ snapshot: RunSnapshot, _ workflow: Workflow) -> Bool {
        snapshot.run.status == .waiting && snapshot.steps.contains { step in
            guard step.status == .waiting, step.output == nil, case .wait(.review)? = workflow.stepsByID[step.id]?.kind else { return false }
            return true
        }
    }
}
