// TEMPORARY: stands in for the policy half until it is merged. Delete at merge.
import AgentGatePolicy

struct DNSLimits: Sendable {}
struct DNSQueryObservation: Sendable { var anomalies: [String] = []; var exceedsLimit = false }
struct DNSQueryMonitor: Sendable {
    init(limits: DNSLimits) {}
    mutating func observe(_ name: String, nowSeconds: UInt64) -> DNSQueryObservation { DNSQueryObservation() }
}
extension Policy {
    var dnsLimits: DNSLimits { DNSLimits() }
    func evaluateDNSQuery(name: String, context: ProcessContext? = nil) -> Verdict {
        evaluateEgress(target: name + ":53", context: context)
    }
    func evaluateConnection<Source: ProcessContextSource>(addressTarget: String, resolvedName: String?, contextSource: inout Source) -> Verdict {
        let name = resolvedName.map { n in n + ":" + (addressTarget.split(separator: ":").last.map(String.init) ?? "") }
        return evaluateEgress(target: name ?? addressTarget, contextSource: &contextSource)
    }
}
