import CoreMetrics
import Foundation
import Prometheus

/// The gateway's metrics, kept in one Prometheus registry that `GET /metrics` renders.
public final class GatewayMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

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
        Counter(label: "switchboard_events_received_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    /// Counts a run reaching a status.
    func runTransition(workflow: String, status: RunStatus) {
        Counter(label: "switchboard_runs_total", dimensions: [("workflow", workflow), ("status", status.rawValue)],
                factory: factory).increment()
    }

    /// Records how long a step took from start to end.
    func stepEnded(workflow: String, kind: String, status: StepStatus, duration: TimeInterval) {
        CoreMetrics.Timer(label: "switchboard_step_duration_seconds",
                          dimensions: [("workflow", workflow), ("kind", kind), ("status", status.rawValue)],
                          factory: factory).recordNanoseconds(Int64(max(0, duration) * 1e9))
    }

    /// Counts API requests by route and status class.
    func request(status: Int) {
        Counter(label: "switchboard_http_requests_total", dimensions: [("status", "\(status / 100)xx")], factory: factory)
            .increment()
    }

    /// Prometheus text exposition.
    public func render() -> String { registry.emitToString() }
}
