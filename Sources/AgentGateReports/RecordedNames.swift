import AgentGateStore

/// The decisions and actions reports single out, as the store records them. Every comparison
/// report code makes on a recorded decision or action goes through this file, and names are
/// read through `description`.
enum RecordedName {
    static let (allow, deny, ask, log) = (RecordedDecision.allow, RecordedDecision.deny, RecordedDecision.ask, RecordedDecision.log)
    static let (exec, netEgress, syscall) = (RecordedAction.exec, RecordedAction.netEgress, RecordedAction.syscall)

    /// The syscall action as text, as reports show an action.
    static let syscallText = String(describing: syscall)
    /// Decisions in the order reports list them (totals and table columns), as text.
    static let decisionOrder = [allow, deny, ask, log].map { String(describing: $0) }
}

extension DecisionEvent {
    /// The decision as recorded: "allow", "deny", "ask" or "log".
    var decisionName: String { decision.description }
    /// The action as recorded: "exec", "fs_read", "fs_write", "net_egress" or "syscall".
    var actionName: String { action.description }

    /// Allowed outright (a `log` is allowed too, but flagged).
    var isPlainAllow: Bool { decision == RecordedName.allow }
    /// A deny or an ask: what enforcement refuses.
    var isRefusal: Bool { decision == RecordedName.deny || decision == RecordedName.ask }
    /// The call went ahead: allowed, logged, or refused only in audit mode.
    var wentAhead: Bool { decision == RecordedName.allow || decision == RecordedName.log || !enforced }

    var isExecAction: Bool { action == RecordedName.exec }
    var isSyscallAction: Bool { action == RecordedName.syscall }
    var isEgressAction: Bool { action == RecordedName.netEgress }

    /// ✓ allow, ✗ deny, ? ask, ! log (allowed and flagged).
    var decisionMark: String {
        switch decision {
        case RecordedName.allow: "✓"
        case RecordedName.deny: "✗"
        case RecordedName.ask: "?"
        case RecordedName.log: "!"
        default: "·"
        }
    }
}

extension AuditStore.EventCount {
    var isDeny: Bool { decision == RecordedName.deny }
}
