import CEL
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// The operator's console at `/console/`: pages rendered on the server, a session cookie opened by
/// signing in with an API key, and a CSRF token in every form. Each page and action needs the
/// scope of the API route it mirrors.
struct Console: Sendable {
    let gateway: Gateway
    /// Whether cookies are marked `Secure` (the gateway serves HTTPS).
    let secureCookies: Bool

    static let cookie = "switchboard_session"
    static let sessionLifetime: TimeInterval = 12 * 3600

    /// Who a request is: its open session and the key that opened it.
    struct User: Sendable {
        let session: ConsoleSession
        let key: APIKeyRecord
        func can(_ scope: String) -> Bool { key.scopes.contains(scope) || key.scopes.contains("*") }
    }

    func addRoutes(to router: Router<GatewayRequestContext>) {
        router.get("/") { _, _ in Self.redirect("/console/runs") }
        router.get("/console") { _, _ in Self.redirect("/console/runs") }
        router.get("/console/assets/console.css") { _, _ in
            var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: ConsoleTemplates.css)))
            response.headers[.contentType] = "text/css; charset=utf-8"
            response.headers[.cacheControl] = "max-age=3600"
            return response
        }
        router.get("/console/login") { request, _ in
            if try await user(request) != nil { return Self.redirect("/console/runs") }
            return page("Sign in", "login", [:], user: nil)
        }
        router.post("/console/login") { request, context in try await signIn(request, context) }
        router.post("/console/logout") { request, _ in
            guard let (user, _) = try await formUser(request) else { return Self.redirect("/console/login") }
            _ = try await gateway.store.endSession(user.session.id, at: gateway.clock.now())
            var response = Self.redirect("/console/login")
            response.headers[.setCookie] = "\(Self.cookie)=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0\(secureCookies ? "; Secure" : "")"
            return response
        }
        router.get("/console/runs") { request, _ in
            try await signedIn(request, scope: "runs:read") { user in try await runsPage(request, user) }
        }
        router.get("/console/runs/:id") { request, context in
            let id = RunID(try context.parameters.require("id"))
            return try await signedIn(request, scope: "runs:read") { user in try await runPage(id, user) }
        }
        router.post("/console/runs/:id/review") { request, context in
            let id = RunID(try context.parameters.require("id"))
            return try await review(id, request, context)
        }
        router.get("/console/deliveries") { request, _ in
            try await signedIn(request, scope: "deliveries:read") { user in try await deliveriesPage(request, user) }
        }
        router.get("/console/deliveries/:id") { request, context in
            let id = DeliveryID(try context.parameters.require("id"))
            return try await signedIn(request, scope: "deliveries:read") { user in try await deliveryPage(id, user) }
        }
        router.post("/console/deliveries/:id/retry") { request, context in
            let id = DeliveryID(try context.parameters.require("id"))
            guard let (user, _) = try await formUser(request) else { return Self.redirect("/console/login") }
            guard user.can("deliveries:write") else { throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope deliveries:write") }
            switch try await gateway.retryDelivery(id, audit: consoleAudit("delivery.retried", "delivery:\(id.rawValue)", user, context)) {
            case .reopened: return Self.redirect("/console/deliveries/\(Self.pathEscape(id.rawValue))")
            case .notFound: throw Problem.notFound("no delivery '\(id)'")
            case let .notRetryable(status): throw Problem(.conflict, "delivery '\(id)' is \(status.rawValue); only failed and dead ones are sent again")
            }
        }
        router.post("/console/deliveries/retry") { request, context in try await retryAll(request, context) }
        router.get("/console/workflows") { request, _ in
            try await signedIn(request, scope: "workflows:read") { user in workflowsPage(user) }
        }
        router.get("/console/workflows/:id") { request, context in
            let id = try context.parameters.require("id")
            return try await signedIn(request, scope: "workflows:read") { user in try await workflowPage(id, user) }
        }
        router.get("/console/lists") { request, _ in
            try await signedIn(request, scope: "lists:read") { user in try await listsPage(user) }
        }
        router.get("/console/lists/:name") { request, context in
            let name = try context.parameters.require("name")
            return try await signedIn(request, scope: "lists:read") { user in try await listPage(name, user, error: nil) }
        }
        router.post("/console/lists/:name/items") { request, context in
            try await changeList(try context.parameters.require("name"), add: true, request, context)
        }
        router.post("/console/lists/:name/remove") { request, context in
            try await changeList(try context.parameters.require("name"), add: false, request, context)
        }
        router.get("/console/connectors") { request, _ in
            try await signedIn(request, scope: "connectors:read") { user in connectorsPage(user, result: nil) }
        }
        router.post("/console/connectors/:id/test") { request, context in
            let id = try context.parameters.require("id")
            guard let (user, _) = try await formUser(request) else { return Self.redirect("/console/login") }
            guard user.can("connectors:write") else { throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope connectors:write") }
            guard gateway.configuration.connectors[id] != nil else { throw Problem.notFound("no connector '\(id)'") }
            let result = await gateway.deliveryWorker.test(connector: id)
            return connectorsPage(user, result: ["connector": id, "ok": result?.ok ?? false, "status": result?.status ?? "not_supported",
                                                 "detail": result?.detail ?? "this build cannot run connectors of this kind"])
        }
        router.get("/console/audit") { request, _ in
            try await signedIn(request, scope: "admin") { user in try await auditPage(request, user) }
        }
        router.get("/console/reviews") { request, _ in
            try await signedIn(request, scope: "runs:read") { user in try await reviewsPage(user) }
        }
    }

    // MARK: Sessions

    /// The open session a request's cookie names, with a key that is still valid.
    func user(_ request: Request) async throws -> User? {
        guard let token = Self.cookieValue(request.headers[.cookie], named: Self.cookie), !token.isEmpty else { return nil }
        let now = gateway.clock.now()
        guard let session = try await gateway.store.session(Self.digest(token)), session.isOpen(at: now),
              let key = try await gateway.store.apiKey(hash: session.keyHash), key.isValid(at: now)
        else { return nil }
        return User(session: session, key: key)
    }

    /// The user of a POSTed form and its fields, if the form carries the session's CSRF token;
    /// nil without a session. A form without the token (or with another session's) is refused.
    func formUser(_ request: Request) async throws -> (User, [String: String])? {
        guard let user = try await user(request) else { return nil }
        let fields = try await Self.form(request)
        guard let token = fields["csrf_token"],
              Self.constantTimeEqual(Array(token.utf8), Array(user.session.csrfToken.utf8))
        else {
            throw Problem(.forbidden, "the form's CSRF token is missing or not this session's; reload the page and try again")
        }
        return (user, fields)
    }

    func signIn(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let fields = try await Self.form(request)
        let now = gateway.clock.now()
        let given = fields["key"] ?? ""
        guard !given.isEmpty, let key = try await gateway.authenticate(token: given) else {
            try await gateway.store.recordAudit(AuditEntry(at: now, actor: .console, name: "unknown", action: "console.sign_in",
                                                           target: "console", outcome: "refused", requestID: context.requestID,
                                                           sourceIP: context.sourceIP))
            var response = page("Sign in", "login", ["error": "That key is not valid: unknown, revoked or expired."], user: nil)
            response.status = .unauthorized
            return response
        }
        let token = Self.randomToken()
        let session = ConsoleSession(id: Self.digest(token), keyHash: key.hash, csrfToken: Self.randomToken(), createdAt: now,
                                     expiresAt: now.addingTimeInterval(Self.sessionLifetime))
        try await gateway.store.createSession(session, audit: AuditEntry(
            at: now, actor: .console, name: key.name, action: "console.sign_in", target: "console", requestID: context.requestID,
            sourceIP: context.sourceIP))
        var response = Self.redirect("/console/runs")
        response.headers[.setCookie] = "\(Self.cookie)=\(token); Path=/console; HttpOnly; SameSite=Strict; Max-Age=\(Int(Self.sessionLifetime))"
            + (secureCookies ? "; Secure" : "")
        return response
    }

    /// Runs `body` for a signed-in user with `scope`; otherwise the sign-in page or a 403 page.
    func signedIn(_ request: Request, scope: String, _ body: (User) async throws -> Response) async throws -> Response {
        guard let user = try await user(request) else { return Self.redirect("/console/login") }
        guard user.can(scope) else {
            var response = page("Not allowed", "problem", ["title": "Not allowed",
                                                          "detail": "The key '\(user.key.name)' lacks the scope \(scope)."], user: user)
            response.status = .forbidden
            return response
        }
        return try await body(user)
    }

    // MARK: Pages

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
            var response = page("Not found", "problem", ["title": "Not found", "detail": "There is no run \(id.rawValue)."], user: user)
            response.status = .notFound
            return response
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

    func deliveriesPage(_ request: Request, _ user: User) async throws -> Response {
        let parameters = request.uri.queryParameters
        let notice = parameters["retried"].map { "\($0) deliveries sent again." }
        let filter = Self.deliveryFilter(parameters.map { (String($0.key), String($0.value)) })
        var query = filter.query
        query.limit = 100
        if let cursor = parameters["cursor"] { query.before = DeliveryID(String(cursor)) }
        let deliveries = try await gateway.store.listDeliveries(query)
        var next: String?
        if deliveries.count == query.limit, let last = deliveries.last {
            next = "/console/deliveries?" + FormEncoding.encode(filter.items + [("cursor", last.id.rawValue)])
        }
        let canRetry = user.can("deliveries:write")
        let object: [String: Any] = [
            "run": query.run?.rawValue ?? "", "connector": query.connector ?? "", "status": query.status?.rawValue ?? "",
            "connectors": gateway.configuration.connectors.keys.sorted().map { ["id": $0, "selected": $0 == query.connector] },
            "statuses": DeliveryStatus.allCases.map { ["name": $0.rawValue, "selected": $0 == query.status] },
            "canRetry": canRetry, "notice": notice as Any,
            "deliveries": deliveries.map { delivery -> [String: Any] in
                ["id": delivery.id.rawValue, "run": delivery.runID.rawValue, "step": delivery.stepID, "connector": delivery.connector,
                 "operation": delivery.operation, "status": delivery.status.rawValue, "attempts": delivery.attemptCount,
                 "updated": delivery.updatedAt.rfc3339,
                 "retryable": canRetry && (delivery.status == .failed || delivery.status == .dead)]
            },
            "next": next as Any, "nav_deliveries": true,
        ]
        return page("Deliveries", "deliveries", object, user: user)
    }

    func deliveryPage(_ id: DeliveryID, _ user: User) async throws -> Response {
        guard let record = try await gateway.store.delivery(id) else {
            var response = page("Not found", "problem", ["title": "Not found", "detail": "There is no delivery \(id.rawValue)."], user: user)
            response.status = .notFound
            return response
        }
        let delivery = record.delivery
        let object: [String: Any] = [
            "id": delivery.id.rawValue, "run": delivery.runID.rawValue, "step": delivery.stepID, "connector": delivery.connector,
            "operation": delivery.operation, "status": delivery.status.rawValue, "attempts": delivery.attemptCount,
            "next": (delivery.status == .pending ? delivery.nextAttemptAt?.rfc3339 : nil) as Any,
            "lastError": delivery.lastError.map { "[\($0.errorClass)] \($0.message)" } as Any,
            "retryable": user.can("deliveries:write") && (delivery.status == .failed || delivery.status == .dead),
            "curl": Self.curl(delivery, lastAttempt: record.attempts.last),
            "attemptList": record.attempts.reversed().enumerated().map { index, attempt -> [String: Any] in
                let status = attempt.response?["status"]?.numberValue.map { String(Int($0)) } ?? (attempt.errorClass ?? "no answer")
                let ok = attempt.response?["status"]?.numberValue.map { (200 ..< 300).contains(Int($0)) } ?? false
                return ["number": attempt.number, "trigger": attempt.trigger.rawValue, "status": status,
                        "outcome": ok ? "succeeded" : "failed", "duration": attempt.durationMilliseconds,
                        "started": attempt.startedAt.rfc3339, "error": attempt.errorClass.map { "[\($0)] \(attempt.errorMessage ?? "")" } as Any,
                        "request": Self.pretty(attempt.request), "response": attempt.response.map(Self.pretty) ?? "no response", "open": index == 0]
            },
            "nav_deliveries": true,
        ]
        return page("Delivery", "delivery", object, user: user)
    }

    /// "Retry all": the first POST shows how many failed and dead deliveries the filter selects
    /// and asks to confirm; the second, carrying that count, sends them again (at most 1,000).
    func retryAll(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        guard let (user, fields) = try await formUser(request) else { return Self.redirect("/console/login") }
        guard user.can("deliveries:write") else { throw Problem(.forbidden, "the key '\(user.key.name)' lacks the scope deliveries:write") }
        let filter = Self.deliveryFilter(fields.filter { ["run", "connector", "status"].contains($0.key) }.map { ($0.key, $0.value) })
        var selected: [Delivery] = []
        for status in [DeliveryStatus.failed, .dead] where filter.query.status == nil || filter.query.status == status {
            var query = filter.query
            query.status = status
            query.limit = 500
            while selected.count < 1000 {
                let page = try await gateway.store.listDeliveries(query)
                selected += page
                guard page.count == query.limit, let last = page.last else { break }
                query.before = last.id
            }
        }
        selected = Array(selected.prefix(1000))
        guard fields["confirm"] != nil else {
            let described = filter.items.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            return page("Retry deliveries", "confirm-retry", [
                "count": selected.count, "filter": described.isEmpty ? nil as String? : described as Any,
                "run": filter.query.run?.rawValue ?? "", "connector": filter.query.connector ?? "", "status": filter.query.status?.rawValue ?? "",
                "nav_deliveries": true,
            ], user: user)
        }
        var retried = 0
        for delivery in selected {
            if case .reopened = try await gateway.retryDelivery(delivery.id, audit: consoleAudit("delivery.retried", "delivery:\(delivery.id.rawValue)",
                                                                                              user, context)) { retried += 1 }
        }
        return Self.redirect("/console/deliveries?" + FormEncoding.encode(filter.items + [("retried", String(retried))]))
    }

    func consoleAudit(_ action: String, _ target: String, _ user: User, _ context: GatewayRequestContext) -> AuditEntry {
        AuditEntry(at: gateway.clock.now(), actor: .console, name: user.key.name, action: action, target: target,
                   requestID: context.requestID, sourceIP: context.sourceIP)
    }

    /// The delivery filter of a query string or form: `run`, `connector`, `status`; the items it
    /// was made from, for links.
    static func deliveryFilter(_ pairs: [(String, String)]) -> (query: DeliveryQuery, items: [(String, String)]) {
        var query = DeliveryQuery()
        var items: [(String, String)] = []
        for (name, value) in pairs where !value.isEmpty {
            switch name {
            case "run": query.run = RunID(value); items.append((name, value))
            case "connector": query.connector = value; items.append((name, value))
            case "status": if let status = DeliveryStatus(rawValue: value) { query.status = status; items.append((name, value)) }
            default: break
            }
        }
        return (query, items.sorted { $0.0 < $1.0 })
    }

    /// The delivery's request as a curl command: the headers as the last attempt sent them (secrets
    /// and credentials added at send time read `••••`), or as the connector made them.
    static func curl(_ delivery: Delivery, lastAttempt: DeliveryAttempt?) -> String {
        func quote(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        var headers: [(String, String)] = delivery.request.headers.map { header in
            (header[0], DeliveryWorker.alwaysSecret.contains(header[0].lowercased()) ? "••••" : header[1])
        }
        if let sent = lastAttempt?.request["headers"] {
            switch sent {
            case let .object(fields): headers = fields.keys.sorted().map { ($0, fields[$0]?.stringValue ?? "") }
            case let .array(pairs): headers = pairs.compactMap { pair in
                    guard case let .array(parts) = pair, parts.count == 2, let name = parts[0].stringValue,
                          let value = parts[1].stringValue else { return nil }
                    return (name, value)
                }
            default: break
            }
        }
        var lines = ["curl -X \(delivery.request.method) \(quote(delivery.request.url))"]
        for (name, value) in headers { lines.append("  -H \(quote("\(name): \(value)"))") }
        if let body = delivery.request.body { lines.append("  --data-binary \(quote(body))") }
        return lines.joined(separator: " \\\n")
    }

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
            var response = page("Not found", "problem", ["title": "Not found", "detail": "There is no workflow \(id)."], user: user)
            response.status = .notFound
            return response
        }
        let versions = try await gateway.store.workflowVersions(id)
        // Decisions of the last 24 hours, from the newest runs (at most 500 read).
        let since = gateway.clock.now().addingTimeInterval(-86_400)
        var counts: [String: Int] = [:]
        for run in try await gateway.store.listRuns(RunQuery(workflow: id, limit: 500)) where run.createdAt >= since && run.status.isFinished {
            counts[run.decision?.rawValue ?? "none", default: 0] += 1
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
            var response = page("Not found", "problem", ["title": "Not found", "detail": "There is no list \(name)."], user: user)
            response.status = .notFound
            return response
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

    // MARK: Actions

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

    // MARK: Rendering

    func page(_ title: String, _ template: String, _ object: [String: Any], user: User?) -> Response {
        var context = Self.present(object)
        context["csrf"] = user?.session.csrfToken ?? ""
        let body = ConsoleTemplates.render(template, context)
        var layout = context
        layout["title"] = title
        layout["body"] = body
        layout["signedIn"] = user != nil
        layout["keyName"] = user?.key.name ?? ""
        var response = Response(status: .ok, body: ResponseBody(byteBuffer: ByteBuffer(string: ConsoleTemplates.render("layout", layout))))
        response.headers[.contentType] = "text/html; charset=utf-8"
        response.headers[.cacheControl] = "no-store"
        response.headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"
        response.headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        return response
    }

    /// The page's values with absent ones (nil optionals) left out, in nested lists too, so that a
    /// section for a missing value is skipped rather than showing "nil".
    static func present(_ object: [String: Any]) -> [String: Any] {
        var cleaned: [String: Any] = [:]
        for (key, value) in object {
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .optional {
                guard let unwrapped = mirror.children.first?.value else { continue }
                cleaned[key] = unwrapped
            } else if let list = value as? [[String: Any]] {
                cleaned[key] = list.map(present)
            } else {
                cleaned[key] = value
            }
        }
        return cleaned
    }

    static func waitsForReview(_ snapshot: RunSnapshot, _ workflow: Workflow) -> Bool {
        snapshot.run.status == .waiting && snapshot.steps.contains { step in
            guard step.status == .waiting, step.output == nil, case .wait(.review)? = workflow.stepsByID[step.id]?.kind else { return false }
            return true
        }
    }

    static func redirect(_ location: String) -> Response {
        var response = Response(status: .seeOther)
        response.headers[.location] = location
        return response
    }

    static func pretty(_ json: JSON) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: json.foundationObject, options: [.prettyPrinted, .sortedKeys,
                                                                                                      .fragmentsAllowed, .withoutEscapingSlashes]),
              let text = String(data: data, encoding: .utf8) else { return json.text }
        return text
    }

    static func duration(_ seconds: TimeInterval) -> String {
        if seconds < 1 { return "\(Int(seconds * 1000)) ms" }
        if seconds < 120 { return String(format: "%.1f s", seconds) }
        if seconds < 7200 { return "\(Int(seconds / 60)) min" }
        return String(format: "%.1f h", seconds / 3600)
    }

    static func pathEscape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: FormEncoding.unreserved) ?? text
    }

    static func form(_ request: Request) async throws -> [String: String] {
        var request = request
        let buffer = try await request.collectBody(upTo: 64 << 10)
        return FormEncoding.decode(Array(buffer.readableBytesView))
    }

    static func cookieValue(_ header: String?, named name: String) -> String? {
        guard let header else { return nil }
        for part in header.split(separator: ";") {
            let pair = part.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            if pair.count == 2, pair[0] == name { return pair[1] }
        }
        return nil
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0 ..< 32).map { _ in UInt8.random(in: 0 ... 255, using: &generator) })
    }

    static func digest(_ token: String) -> String { Hex.encode(SHA256.hash(data: Data(token.utf8))) }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
