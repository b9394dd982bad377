import AgentGateSupervisor
import Foundation
import Prometheus

/// `/metrics`: the running supervisors' counters, summed per scrape, in Prometheus' text format.
enum Metrics {
    static func render(_ statuses: [SupervisorFleet.Status], unreachable: Int) -> [UInt8] {
        let registry = PrometheusCollectorRegistry()
        var decisions: [String: [String: UInt64]] = [:]
        var bounds: [Double] = []
        var buckets: [UInt64] = []
        var latencySum = 0.0
        var queueDepth = 0, asksPending = 0
        var writeErrors: UInt64 = 0
        for status in statuses {
            guard let metrics = status.metrics else { continue }
            for (action, byDecision) in metrics.decisions {
                for (decision, count) in byDecision { decisions[action, default: [:]][decision, default: 0] += count }
            }
            // Supervisors of one version share their buckets; another version's are skipped.
            if bounds.isEmpty {
                bounds = metrics.latencyBounds
                buckets = [UInt64](repeating: 0, count: bounds.count + 1)
            }
            if metrics.latencyBounds == bounds, metrics.latencyCounts.count == buckets.count {
                for index in buckets.indices { buckets[index] += metrics.latencyCounts[index] }
                latencySum += metrics.latencySumSeconds
            }
            queueDepth += metrics.auditQueueDepth
            asksPending += metrics.asksPending
            writeErrors += metrics.auditWriteErrors
        }
        for action in decisions.keys.sorted() {
            for decision in decisions[action]!.keys.sorted() {
                registry.makeCounter(name: "agentgate_decisions_total", labels: [("action", action), ("decision", decision)])
                    .increment(by: Int64(clamping: decisions[action]![decision]!))
            }
        }
        registry.makeGauge(name: "agentgate_sessions_active").set(Int64(statuses.count))
        registry.makeGauge(name: "agentgate_asks_pending").set(Int64(asksPending))
        registry.makeGauge(name: "agentgate_audit_queue_depth").set(Int64(queueDepth))
        registry.makeCounter(name: "agentgate_audit_write_errors_total").increment(by: Int64(clamping: writeErrors))
        registry.makeGauge(name: "agentgate_supervisors_unreachable").set(Int64(unreachable))
        var output: [UInt8] = []
        registry.emit(into: &output)
        output += histogram(bounds: bounds, buckets: buckets, sum: latencySum)
        return output
    }

    /// `agentgate_decision_latency_seconds`, from bucket counts summed over supervisors (the
    /// registry's histograms take one observation at a time, not counts).
    static func histogram(bounds: [Double], buckets: [UInt64], sum: Double) -> [UInt8] {
        let name = "agentgate_decision_latency_seconds"
        var text = "# TYPE \(name) histogram\n"
        var cumulative: UInt64 = 0
        for (index, bound) in bounds.enumerated() {
            cumulative += buckets[index]
            text += "\(name)_bucket{le=\"\(bound)\"} \(cumulative)\n"
        }
        cumulative += buckets.last ?? 0
        text += "\(name)_bucket{le=\"+Inf\"} \(cumulative)\n\(name)_sum \(sum)\n\(name)_count \(cumulative)\n"
        return Array(text.utf8)
    }
}
