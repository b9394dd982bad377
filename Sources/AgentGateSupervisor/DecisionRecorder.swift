import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc

/// Hands each decision to the audit writer (after the response has been sent) and, with -v,
/// echoes it on stderr.
struct DecisionRecorder: Sendable {
    let writer: AuditWriter?
    let verbose: Bool
    /// For rule ids and reasons, and `log` decisions.
    let policy: Policy?
    /// The user's home, so intent lines can say `~/.ssh/id_rsa`.
    let home: String?

    init(writer: AuditWriter?, verbose: Bool, policy: Policy? = nil, home: String? = nil) {
        self.writer = writer
        self.verbose = verbose
        self.policy = policy
        self.home = home
    }

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
        /// The policy's verdict, when the policy decided (not a self-protection refusal).
        var verdict: Verdict? = nil
    }

    func record(_ entry: Entry, notification n: Notification, process: ProcessInfo, respondedAt: UInt64) {
        let latency = Int64((respondedAt &- n.receivedAt) / 1000)
        var ruleID: String?
        var reason = entry.reason
        if let index = entry.ruleIndex, let policy, policy.rules.indices.contains(index) {
            let rule = policy.rules[index]
            ruleID = rule.displayID
            if let ruleReason = rule.reason, entry.verdict?.reason != .escapesScope { reason = ruleReason }
        }
        let enforced = entry.verdict?.enforced ?? true
        // Intent lines are built after the response, and only where people read them: execs,
        // and whatever wasn't a plain allow. Plain allowed opens and connects don't pay for one.
        var intent: String?
        if entry.action == .exec || entry.decision != "allow" {
            intent = Intent.describe(entry.action, target: entry.target, argv: entry.argv, home: home).text
        }
        if verbose {
            var line = "agentgate: \(enforced ? entry.decision : "would \(entry.decision)") \(entry.action.name) \(entry.target)"
            if let ruleID { line += " (rule \(ruleID))" }
            if entry.decision != "allow" { line += " [\(reason)]" }
            line += " pid=\(process.tgid) \(latency)µs"
            if let intent { line += " — \(intent)" }
            line += "\n"
            writeStandardError(line)
        }
        writer?.record(DecisionEvent(
            timeMicros: agentgate_realtime_us(), pid: process.tgid, ppid: process.ppid,
            executable: process.executable, syscall: entry.syscall, action: entry.action.name,
            target: entry.target, argv: entry.argv.map(Self.recordable), decision: entry.decision, ruleIndex: entry.ruleIndex,
            reason: reason, errno: entry.errno, latencyMicros: latency,
            ruleID: ruleID, intent: intent, notable: entry.decision == "log", enforced: enforced))
    }
}

extension DecisionRecorder {
    /// The most argv bytes one event keeps. An agent can make argv megabytes long on every exec;
    /// the audit keeps the start, and says how much it left out, so memory and the database stay
    /// bounded whatever the agent does.
    static let recordedArgvBytes = 16 << 10

    static func recordable(_ argv: [String]) -> [String] {
        var kept: [String] = []
        var total = 0
        for (index, argument) in argv.enumerated() {
            let size = argument.utf8.count
            if total + size > recordedArgvBytes {
                let room = max(0, recordedArgvBytes - total)
                if room > 0 { kept.append(String(decoding: argument.utf8.prefix(room), as: UTF8.self) + "…") }
                let leftBytes = argv[index...].reduce(0) { $0 + $1.utf8.count } - room
                kept.append("…(\(argv.count - index) more arguments, \(leftBytes) bytes not recorded)")
                return kept
            }
            kept.append(argument)
            total += size
        }
        return kept
    }
}

extension DecisionRecorder.Entry {
    /// An entry for a policy verdict.
    init(syscall: String, action: ActionKind, target: String, verdict: Verdict, argv: [String]? = nil, errno: Int32? = nil) {
        self.init(syscall: syscall, action: action, target: target, argv: argv, decision: verdict.decision.name,
                  ruleIndex: verdict.ruleIndex, reason: verdict.reason.text, errno: errno, verdict: verdict)
    }

    /// An entry for a denial the policy didn't make (unreadable argument, self-protection…).
    static func denied(syscall: String, action: ActionKind, target: String, reason: String, errno: Int32) -> Self {
        Self(syscall: syscall, action: action, target: target, decision: "deny", reason: reason, errno: errno)
    }
}
