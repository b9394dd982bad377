import AgentGateStore

/// The decision and action names the store records, as reports read them. Events and counts
/// hand them over as text; every comparison report code makes on that text is here, so typing
/// decisions and actions in the store changes this file only.
enum RecordedName {
    /// Decisions in the order reports list them (totals and table columns).
    static let decisionOrder = ["allow", "deny", "ask", "log"]
    static let deny = "deny"
    static let exec = "exec"
    static let syscall = "syscall"
}

extension DecisionEvent {
    /// The decision as recorded: "allow", "deny", "ask" or "log".
    var decisionName: String { decision }
    /// The action as recorded: "exec", "fs_read", "fs_write", "net_egress" or "syscall".
    var actionName: String { action }

    /// Allowed outright (a `log` is allowed too, but flagged).
    var isPlainAllow: Bool { decision == "allow" }
    /// A deny or an ask: what enforcement refuses.
    var isRefusal: Bool { decision == "deny" || decision == "ask" }
    /// The call went ahead: allowed, logged, or refused only in audit mode.
    var wentAhead: Bool { decision == "allow" || decision == "log" || !enforced }

    var isExecAction: Bool { action == RecordedName.exec }
    var isSyscallAction: Bool { action == RecordedName.syscall }
    var isEgressAction: Bool { action == "net_egress" }

    /// ✓ allow, ✗ deny, ? ask, ! log (allowed and flagged).
    var decisionMark: String {
        switch decision {
        case "allow": "✓"
        case "deny": "✗"
        case "ask": "?"
        case "log": "!"
        default: "·"
        }
    }
}

extension AuditStore.EventCount {
    var isDeny: Bool { decision == RecordedName.deny }
}
