import CEL
import Foundation
import Hummingbird

/// The console's delivery log: the list with its filters, a delivery's attempts and curl command,
/// and retries, one or all that a filter selects.
extension Console {
    func deliveriesPage(_ request: Request, _ user: User) async throws -> Response {
        let parameters = request.uri.queryParameters
        let filter = Self.deliveryFilter(parameters.map { (String($0.key), String($0.value)) })
        let notice = parameters["retried"].map { "\($0) deliveries sent again." } ?? filter.notice
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
            "since": Self.value("since", in: filter.items), "until": Self.value("until", in: filter.items),
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
            return notFound("There is no delivery \(id.rawValue).", user: user)
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
        let filter = Self.deliveryFilter(fields.filter { ["run", "connector", "status", "since", "until"].contains($0.key) }
            .map { ($0.key, $0.value) })
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
                "since": Self.value("since", in: filter.items), "until": Self.value("until", in: filter.items),
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

    /// The delivery filter of a query string or form: `run`, `connector`, `status`, `since`,
    /// `until` (as on the runs page); the items it was made from, for links and forms, and a
    /// notice naming a time that could not be read (and was not applied).
    static func deliveryFilter(_ pairs: [(String, String)]) -> (query: DeliveryQuery, items: [(String, String)], notice: String?) {
        var query = DeliveryQuery()
        var items: [(String, String)] = []
        var notice: String?
        for (name, raw) in pairs {
            let value = raw.trimmingCharacters(in: .whitespaces)
            guard !value.isEmpty else { continue }
            switch name {
            case "run": query.run = RunID(value); items.append((name, value))
            case "connector": query.connector = value; items.append((name, value))
            case "status": if let status = DeliveryStatus(rawValue: value) { query.status = status; items.append((name, value)) }
            case "since", "until":
                guard let date = time(value) else {
                    notice = unreadableTime(name)
                    continue
                }
                if name == "since" { query.since = date } else { query.until = date }
                items.append((name, value))
            default: break
            }
        }
        return (query, items.sorted { $0.0 < $1.0 }, notice)
    }

    static func value(_ name: String, in items: [(String, String)]) -> String {
        items.first { $0.0 == name }?.1 ?? ""
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
}
