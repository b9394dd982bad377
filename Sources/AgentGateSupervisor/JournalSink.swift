import AgentGateStore
import CSystemdJournal
import Glibc

/// Every decision into systemd's journal with structured fields (`--journal`, or
/// `audit: {journal: true}`), through libsystemd's `sd_journal_sendv`: journalctl filters
/// (`AGENTGATE_DECISION=deny`) work and the shippers people run forward them. It writes to
/// /run/systemd/journal/socket; when the journal stops reading, the send blocks this sink's
/// thread only, its queue fills, and events are dropped and counted.
struct JournalSink: EventSink {
    static let socketPath = "/run/systemd/journal/socket"
    let session: SinkSession
    var name: String { "journal" }

    /// Whether a journal listens here (else the sink is skipped, with one warning).
    static var isAvailable: Bool {
        var info = stat()
        return stat(socketPath, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
    }

    func wants(_ event: SinkEvent) -> Bool { true }

    func deliver(_ batch: [SinkEvent]) -> Int {
        var failures = 0
        for event in batch where !send(fields(event)) { failures += 1 }
        return failures
    }

    /// The journal fields of `event`, `NAME=value` each; values may hold any bytes (a newline
    /// makes sd_journal_sendv use the binary form).
    func fields(_ event: SinkEvent) -> [String] {
        var fields = ["SYSLOG_IDENTIFIER=agentgate", "AGENTGATE_SESSION=\(session.sessionID)", "AGENTGATE_AGENT=\(session.agent)"]
        switch event.kind {
        case .decision(let decision):
            let rule = decision.ruleID ?? decision.ruleIndex.map { "#\($0 + 1)" } ?? ""
            fields += [
                "MESSAGE=agentgate: \(decision.decision) \(decision.action) \(decision.target)"
                    + (rule.isEmpty ? "" : " (rule \(rule))") + " pid \(decision.pid) session \(session.sessionID): \(decision.reason)",
                "PRIORITY=\(decision.decision == .deny ? 4 : 6)",
                "AGENTGATE_ACTION=\(decision.action)",
                "AGENTGATE_DECISION=\(decision.decision)",
                "AGENTGATE_TARGET=\(decision.target)",
                "AGENTGATE_RULE=\(rule)",
                "AGENTGATE_REASON=\(decision.reason)",
                "AGENTGATE_SYSCALL=\(decision.syscall)",
                "AGENTGATE_PID=\(decision.pid)",
                "AGENTGATE_EXECUTABLE=\(decision.executable)",
                "AGENTGATE_ENFORCED=\(decision.enforced ? 1 : 0)",
            ]
        case .kill(let by):
            fields += ["MESSAGE=agentgate: session \(session.sessionID) killed by \(by)", "PRIORITY=4",
                       "AGENTGATE_EVENT=kill", "AGENTGATE_BY=\(by)"]
        case .reload(let accepted, let sha, let message):
            fields += ["MESSAGE=agentgate: session \(session.sessionID): \(message)", "PRIORITY=\(accepted ? 5 : 3)",
                       "AGENTGATE_EVENT=reload", "AGENTGATE_RELOAD=\(accepted ? "accepted" : "rejected")",
                       "AGENTGATE_POLICY_SHA256=\(sha ?? "")"]
        }
        return fields
    }

    private func send(_ fields: [String]) -> Bool {
        // One buffer holding every field, and an iovec for each, built while it is pinned.
        var bytes: [UInt8] = []
        var spans: [(offset: Int, count: Int)] = []
        for field in fields {
            spans.append((bytes.count, field.utf8.count))
            bytes += field.utf8
        }
        return bytes.withUnsafeMutableBytes { raw in
            let iovecs = spans.map { iovec(iov_base: raw.baseAddress! + $0.offset, iov_len: $0.count) }
            return iovecs.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) >= 0 }
        }
    }
}
