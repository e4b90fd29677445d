import CEL
import Foundation
import Hummingbird

/// The sandbox KYB vendor's routes.
extension Sandbox {
    func addVendorRoutes(_ kyb: RouterGroup<BasicRequestContext>) {
        kyb.post("v1/reports") { [self] request, _ -> Response in
            guard authorized(request) else { return .json(["error": "invalid api key"], status: .unauthorized) }
            if let refusal = await planned() { return refusal }
            guard let body = try? JSON.parse(Data(try await request.sandboxBody())) else {
                return .json(["error": "the body must be JSON"], status: .badRequest)
            }
            guard let type = body["type"]?.stringValue, SandboxOutcomes.types.contains(type) else {
                return .json(["error": .string("type must be one of \(SandboxOutcomes.types.joined(separator: ", "))")],
                                    status: .unprocessableContent)
            }
            guard let name = body["business"]?["name"]?.stringValue, !name.isEmpty else {
                return .json(["error": "business.name is required"], status: .unprocessableContent)
            }
            let id = nextID("rep")
            let address = body["business"]?["address"]?.stringValue
            let tin = body["business"]?["tin"]?.stringValue
            var finished: JSON = ["id": .string(id), "type": .string(type), "status": "completed",
                                  "result": SandboxOutcomes.result(type: type, name: name, address: address, tin: tin)]
            if SandboxOutcomes.fails(name: name) {
                finished = ["id": .string(id), "type": .string(type), "status": "failed", "error": "the registry did not answer"]
            }
            state.withLock { $0.reports[id] = finished }
            if let url = body["callback_url"]?.stringValue, state.withLock({ $0.plan.callbacks }) {
                schedule.yield(ScheduledCallback(url: url, reportID: id,
                                                 body: JSON.object(["type": "report.completed", "data": finished]).text))
            }
            return .json(["id": .string(id), "type": .string(type), "status": "pending"], status: .created)
        }
        kyb.get("v1/reports/:id") { [self] request, context -> Response in
            guard authorized(request) else { return .json(["error": "invalid api key"], status: .unauthorized) }
            let id = try context.parameters.require("id")
            guard let report = state.withLock({ $0.reports[id] }) else {
                return .json(["error": "no such report"], status: .notFound)
            }
            return .json(report)
        }
        kyb.get("v1/account") { [self] request, _ -> Response in
            guard authorized(request) else { return .json(["error": "invalid api key"], status: .unauthorized) }
            return .json(["name": "Switchboard sandbox vendor", "mode": "sandbox"])
        }
        kyb.get("control") { [self] _, _ -> Response in .json(planJSON) }
        kyb.post("control") { [self] request, _ -> Response in
            guard let body = try? JSON.parse(Data(try await request.sandboxBody())) else {
                return .json(["error": "the body must be JSON"], status: .badRequest)
            }
            state.withLock { state in
                if let n = body["fail_status"]?.numberValue { state.plan.failStatus = Int(n) }
                if let n = body["fail_count"]?.numberValue { state.plan.failCount = Int(n) }
                if let n = body["retry_after"]?.numberValue { state.plan.retryAfter = Int(n) }
                if let n = body["slow_ms"]?.numberValue { state.plan.slow = .milliseconds(Int(n)) }
                if case let .bool(on)? = body["callbacks"] { state.plan.callbacks = on }
            }
            return .json(planJSON)
        }
    }

    var planJSON: JSON {
        let plan = state.withLock { $0.plan }
        return ["fail_status": .number(Double(plan.failStatus)), "fail_count": .number(Double(plan.failCount)),
                "retry_after": .number(Double(plan.retryAfter)), "callbacks": .bool(plan.callbacks),
                "slow_ms": .number(Double(plan.slow.components.seconds * 1000 + plan.slow.components.attoseconds / 1_000_000_000_000_000))]
    }

    private func authorized(_ request: Request) -> Bool {
        request.headers[.authorization] == "Bearer \(settings.apiKey)"
    }

    /// The failure the control plan asks for, if any is left; slowness applies first.
    private func planned() async -> Response? {
        let (plan, fail) = state.withLock { state -> (SandboxFailurePlan, Bool) in
            let fail = state.plan.failCount > 0
            if fail { state.plan.failCount -= 1 }
            return (state.plan, fail)
        }
        if plan.slow > .zero { try? await Sleep.for(plan.slow) }
        guard fail else { return nil }
        var response = Response.json(["error": "the sandbox was told to fail"], status: .init(code: plan.failStatus))
        if plan.failStatus == 429 || plan.failStatus == 503 { response.headers[.retryAfter] = String(plan.retryAfter) }
        return response
    }
}
