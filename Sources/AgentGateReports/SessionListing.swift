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
        return [session.id, session.agent + (session.mode == "audit" ? " (audit)" : session.mode == "learn" ? " (learn)" : ""),
                AuditTime.dateTime(session.startTimeMicros), duration, status, "\(events)",
                "\(denied)", command.count > 60 ? String(command.prefix(59)) + "…" : command]
    }

    /// The header and rows with a UNIT column (before COMMAND) when a session ran in a systemd
    /// unit, as they are otherwise.
    public static func table(_ sessions: [(session: SessionRecord, events: Int, denied: Int)]) -> (header: [String], rows: [[String]]) {
        var rows = sessions.map { row($0.session, events: $0.events, denied: $0.denied) }
        guard sessions.contains(where: { $0.session.unit != nil }) else { return (header, rows) }
        for index in rows.indices {
            rows[index].insert(sessions[index].session.unit.map { AuditFormat.printable($0.name) } ?? "-", at: header.count - 1)
        }
        var withUnit = header
        withUnit.insert("UNIT", at: header.count - 1)
        return (withUnit, rows)
    }
}
