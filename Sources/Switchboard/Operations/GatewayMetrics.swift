import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The gateway's metrics, kept in one Prometheus registry that `GET /metrics` renders.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Metric handles by name and label values: making one looks the registry up under a lock,
    /// so hot paths reuse them. The key holds the strings it is given (no concatenation), since
    /// building one is on the path of every event.
    private struct HandleKey: Hashable {
        let label: String
        let first: String
        let second: String
        let third: String

        init(_ label: String, _ dimensions: [(String, String)]) {
            self.label = label
            first = dimensions.count > 0 ? dimensions[0].1 : ""
            second = dimensions.count > 1 ? dimensions[1].1 : ""
            third = dimensions.count > 2 ? dimensions[2].1 : ""
            precondition(dimensions.count <= 3, "metric handles are keyed by at most three label values")
        }
    }

    private let counters = Mutex<[HandleKey: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[HandleKey: CoreMetrics.Timer]>([:])

    /// A counter handle, made once per name and label values (a name always has the same label names).
    func counter(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Counter {
        let key = HandleKey(label, dimensions)
        if let existing = counters.withLock({ $0[key] }) { return existing }
        let made = CoreMetrics.Counter(label: label, dimensions: dimensions, factory: factory)
        counters.withLock { $0[key] = made }
        return made
    }

    /// A timer handle, made once per name and label values.
    func timer(_ label: String, _ dimensions: [(String, String)]) -> CoreMetrics.Timer {
        let key = HandleKey(label, dimensions)
        if let existing = timers.withLock({ $0[key] }) { return existing }
        let made = CoreMetrics.Timer(label: label, dimensions: dimensions, factory: factory)
        timers.withLock { $0[key] = made }
        return made
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
            .milliseconds(500), .seconds(2), .seconds(10), .seconds(60),
        ]
        self.factory = factory
    }

    /// Counts an accepted event (`outcome`: accepted or duplicate).
    func eventReceived(type: String, outcome: String) {
        counter("switchboard_events_received_total", [("outcome", outcome)]).increment()
    }

    /// Counts a `trigger.if` that failed to evaluate (and so started no run).
    func triggerFilterFailed(workflow: String) {
        counter("switchboard_trigger_filter_errors_total", [("workflow", workflow)]).increment()
    }

    /// Counts a run reaching a status.
    func runTransition(workflow: String, status: RunStatus) {
        counter("switchboard_runs_total", [("workflow", workflow), ("status", status.rawValue)]).increment()
    }

    /// Records how long a step took from start to end.
    func stepEnded(workflow: String, kind: String, status: StepStatus, duration: TimeInterval) {
        timer("switchboard_step_duration_seconds", [("workflow", workflow), ("kind", kind), ("status", status.rawValue)])
            .recordNanoseconds(Int64(max(0, duration) * 1e9))
    }

    /// Counts inbound callbacks and Slack clicks by connector and what became of them
    /// (`matched`, `pending`, `rejected`, `replayed`, `invalid`, `forbidden`, `decided`, `already_decided`).
    func callbackReceived(connector: String, outcome: String) {
        counter("switchboard_callbacks_total", [("connector", connector), ("outcome", outcome)]).increment()
    }

    /// Counts API requests by route and status class.
    func request(status: Int) {
        counter("switchboard_http_requests_total", [("status", "\(status / 100)xx")]).increment()
    }

    /// Prometheus text exposition.
    public func render() -> String { registry.emitToString() }
}
