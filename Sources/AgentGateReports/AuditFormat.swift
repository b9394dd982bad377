import AgentGatePolicy
import AgentGateStore
import Foundation

/// How events and sessions look in listings, on a terminal and as JSON.
public enum AuditFormat {
    /// The decision as shown: in audit mode a deny or ask that wasn't applied is "would deny".
    public static func decisionText(_ event: DecisionEvent) -> String {
        !event.enforced && event.isRefusal ? "would \(event.decisionName)" : event.decisionName
    }

    /// The rule as shown: its id, else its 1-based number; nil when the default applied.
    public static func ruleLabel(_ event: DecisionEvent) -> String? {
        event.ruleID ?? event.ruleIndex.map { String($0 + 1) }
    }

    /// The rule and reason: `rule ssh-keys: SSH private keys`; `rule 3` for a rule without a
    /// `reason:` (the recorder stores a rule's reason as the event's, so the bare verdict text
    /// "matched rule" only ever stands for "no reason given"); `no rule matched, …`.
    public static func why(_ event: DecisionEvent) -> String {
        guard let rule = ruleLabel(event) else { return event.reason }
        let reason = event.reason
        return reason.isEmpty || reason == VerdictReason.matchedRule.text ? "rule \(rule)" : "rule \(rule): \(reason)"
    }

    /// The action as shown. Refusals on unsupervised routes (raw sockets, mount, …) are
    /// syscalls, not execs, whatever an older supervisor recorded them as.
    public static func shownAction(_ event: DecisionEvent) -> String {
        isSyscall(event) ? RecordedName.syscallText : event.actionName
    }

    /// Whether the event is a syscall decided on its own (an unsupervised route, a refused
    /// ioctl or owner change): recorded as `syscall`, or by older supervisors as an `exec` of
    /// the route's name or of a target that isn't a program path.
    public static func isSyscall(_ event: DecisionEvent) -> Bool {
        if event.isSyscallAction { return true }
        guard event.isExecAction, event.ruleIndex == nil else { return false }
        if legacyRoute(event) != nil { return true }
        return !event.syscall.isEmpty && event.syscall != "execve" && event.syscall != "execveat"
            && !event.target.hasPrefix("/")
    }

    /// The unsupervised route a syscall event went through, when its record names one.
    public static func unsupervisedRoute(_ event: DecisionEvent) -> String? {
        if event.isSyscallAction {
            // "raw_sockets: …", as the supervisor words it; older wordings too.
            let head = event.reason.prefix { $0 != ":" && $0 != " " }
            if routeNames.contains(String(head)) { return String(head) }
            return legacyRoute(event) ?? (routeNames.contains(event.target) ? event.target : nil)
        }
        return event.isExecAction && event.ruleIndex == nil ? legacyRoute(event) : nil
    }

    private static let routeNames = Set(UnsupervisedRoute.allCases.map(\.rawValue))

    /// The route in an older record: the target is the route ("raw_sockets"), or
    /// "namespaces:0x…", or the reason says "ROUTE is unsupervised; …", "new namespaces are
    /// unsupervised; …" or "allowed by allow_unsupervised: [ROUTE]".
    private static func legacyRoute(_ event: DecisionEvent) -> String? {
        if routeNames.contains(event.target) { return event.target }
        if event.target.hasPrefix("namespaces:") || event.reason.hasPrefix("new namespaces are unsupervised") {
            return UnsupervisedRoute.namespaces.rawValue
        }
        if let range = event.reason.range(of: " is unsupervised"),
           routeNames.contains(String(event.reason[..<range.lowerBound])) {
            return String(event.reason[..<range.lowerBound])
        }
        let allowed = "allowed by allow_unsupervised: ["
        if event.reason.hasPrefix(allowed), event.reason.hasSuffix("]") {
            let route = String(event.reason.dropFirst(allowed.count).dropLast())
            if routeNames.contains(route) { return route }
        }
        return nil
    }

    /// What the event acted on, as shown: an exec's argv, a syscall's target and route
    /// (`socket(AF_PACKET) — raw_sockets`, or just `raw_sockets`), else the target.
    public static func subject(_ event: DecisionEvent) -> String {
        if isSyscall(event) {
            guard let route = unsupervisedRoute(event), route != event.target else { return event.target }
            return "\(event.target) — \(route)"
        }
        if event.isExecAction, let argv = event.argv { return argv.joined(separator: " ") }
        return event.target
    }

    /// `✓ 13:20:26 exec allow npm install chalk`, `✓ 13:20:26 hook:exec allow git status` (an agent
    /// hook's decision),
    /// `✗ 13:20:26 fs_read deny ~/.ssh/id_rsa (rule ssh-keys: SSH private keys)`,
    /// `✗ 13:20:26 syscall deny socket(AF_PACKET) — raw_sockets`.
    public static func line(_ event: DecisionEvent) -> String {
        let event = redacted(event)
        // An agent hook's decision is marked as such: it is what the agent said it would do.
        let layer = event.source == .kernel ? "" : "\(event.source.text):"
        var line = "\(event.decisionMark) \(AuditTime.clock(event.timeMicros)) \(layer)\(shownAction(event)) "
            + "\(decisionText(event)) \(subject(event))"
        // A syscall's route says why; other refusals name their rule or reason.
        if !event.isPlainAllow && !(isSyscall(event) && unsupervisedRoute(event) != nil) {
            line += " (\(why(event)))"
        }
        // An aggregate of allowed reads: one line, its count, and the last read's time.
        if let count = event.readCount {
            line += " ×\(count)"
            if let last = event.lastReadMicros, count > 1 { line += " (last \(AuditTime.clock(last)))" }
        }
        return printable(line)
    }

    /// The event with every field that can carry a secret redacted the same way, whatever the
    /// supervisor that recorded it did: a value the argv hides is hidden in the intent, the
    /// target and the executable too. (Stored rows are redacted when written; this covers rows
    /// older supervisors wrote, and costs nothing when there is nothing to find.)
    public static func redacted(_ event: DecisionEvent) -> DecisionEvent {
        var event = event
        event.executable = Redactor.redact(text: event.executable)
        event.target = Redactor.redact(text: event.target)
        event.argv = event.argv.map(Redactor.redact(argv:))
        event.intent = event.intent.map(Redactor.redact(commandText:))
        event.reason = Redactor.redact(text: event.reason)
        return event
    }

    /// The session with its command line and paths redacted as its events are.
    public static func redacted(_ session: SessionRecord) -> SessionRecord {
        var session = session
        session.command = Redactor.redact(argv: session.command)
        session.cwd = Redactor.redact(text: session.cwd)
        session.policyPath = Redactor.redact(text: session.policyPath)
        if let program = session.context?.program { session.context?.program = Redactor.redact(text: program) }
        if let environment = session.context?.environment {
            session.context?.environment = Redactor.redact(environment: environment)
        }
        return session
    }

    /// Text made safe and readable on a terminal (an agent chooses paths and arguments, and
    /// could put escape sequences in them): a line break shows as ⏎, a tab as ⇥, and other
    /// control characters and bidirectional overrides as \u{…}.
    public static func printable(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: DisplayText.needsEscape) else { return text }
        return DisplayText.escaped(text, lineBreak: "⏎")
    }

    /// `agentgate: ✗ 13:20:26 fs_read deny ~/.ssh/id_rsa (rule ssh-keys: SSH private keys) pid=4242`:
    /// a decision as `agentgate-supervise -v` and `--log` echo it, one whole line.
    public static func echoLine(_ event: DecisionEvent) -> String {
        "agentgate: " + line(event) + " pid=\(event.pid)\n"
    }

    /// Whether `-v` echoes the decision: execs, connects, and every decision that isn't a plain
    /// allow (what explains a failure, without the reads a failing tool makes while it prints it).
    public static func isNotable(_ event: DecisionEvent) -> Bool {
        !event.isPlainAllow || event.isExecAction || event.isEgressAction
    }
}
