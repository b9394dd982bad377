import AgentGateStore

/// `agentgate sessions` as a table: one row per session.
public enum SessionListing {
    public static let header = ["SESSION", "AGENT", "STARTED", "DURATION", "STATUS", "EVENTS", "DENIED", "COMMAND"]

    /// The session's id, agent, start, duration, status, counts, and command (printable, cut
    /// to 60 characters).
    public static func row(_ session: SessionRecord, events: Int, denied: Int) -> [String] {
        let status: String
        let duration: String
        if let end = session.endTimeMicros {
            status = session.exitStatus.map { "exit \($0)" } ?? "ended"
            duration = AuditTime.duration(micros: end - session.startTimeMicros)
        } else {
            status = "running"
            duration = "-"
        }
        let command = AuditFormat.printable(session.command.joined(separator: " "))
        return [session.id, session.agent + (session.mode == "audit" ? " (audit)" : ""),
                AuditTime.dateTime(session.startTimeMicros), duration, status, "\(events)",
                "\(denied)", command.count > 60 ? String(command.prefix(59)) + "…" : command]
    }
}
