import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc

/// Hands each decision to the audit writer (after the response has been sent) and, with -v,
/// echoes it on stderr.
struct DecisionRecorder: Sendable {
    let writer: AuditWriter?
    let verbose: Bool

    /// One decided syscall.
    struct Entry {
        var syscall: String
        var action: ActionKind
        var target: String
        var argv: [String]? = nil
        var decision: String
        var ruleIndex: Int? = nil
        var reason: String
        var errno: Int32? = nil
    }

    func record(_ entry: Entry, notification n: Notification, process: ProcessInfo, respondedAt: UInt64) {
        let latency = Int64((respondedAt &- n.receivedAt) / 1000)
        if verbose {
            var line = "agentgate: \(entry.decision) \(entry.action.name) \(entry.target)"
            if let rule = entry.ruleIndex { line += " (rule \(rule))" }
            if entry.decision != "allow" { line += " [\(entry.reason)]" }
            line += " pid=\(process.tgid) \(latency)µs\n"
            writeStandardError(line)
        }
        writer?.record(DecisionEvent(
            timeMicros: agentgate_realtime_us(), pid: process.tgid, ppid: process.ppid,
            executable: process.executable, syscall: entry.syscall, action: entry.action.name,
            target: entry.target, argv: entry.argv, decision: entry.decision, ruleIndex: entry.ruleIndex,
            reason: entry.reason, errno: entry.errno, latencyMicros: latency))
    }
}

extension DecisionRecorder.Entry {
    /// An entry for a policy verdict.
    init(syscall: String, action: ActionKind, target: String, verdict: Verdict, argv: [String]? = nil, errno: Int32? = nil) {
        self.init(syscall: syscall, action: action, target: target, argv: argv, decision: verdict.decision.name,
                  ruleIndex: verdict.ruleIndex, reason: verdict.reason.text, errno: errno)
    }

    /// An entry for a denial the policy didn't make (unreadable argument, self-protection…).
    static func denied(syscall: String, action: ActionKind, target: String, reason: String, errno: Int32) -> Self {
        Self(syscall: syscall, action: action, target: target, decision: "deny", reason: reason, errno: errno)
    }
}
