import AgentGateStore
import CSupport
import Glibc
import Synchronization

/// Every decision into systemd's journal with structured fields (`--journal`, or
/// `audit: {journal: true}`), one datagram of the journal's native protocol each, sent as
/// libsystemd's `sd_journal_sendv` would (libsystemd isn't linked: loading it and the libraries
/// it pulls in cost every start of the program about 0.45 ms): journalctl filters
/// (`AGENTGATE_DECISION=deny`) work and the shippers people run forward them. It writes to
/// /run/systemd/journal/socket; when the journal stops reading, the send blocks this sink's
/// thread only, its queue fills, and events are dropped and counted.
struct JournalSink: EventSink {
    static let socketPath = AuditJournal.socketPath
    let session: SinkSession
    /// This sink's datagram socket, made once; only the sink's thread sends on it.
    private let socket: JournalSocket
    var name: String { "journal" }

    init(session: SinkSession) {
        self.session = session
        socket = JournalSocket()
    }

    /// Whether a journal listens here (else the sink is skipped, with one warning).
    static var isAvailable: Bool { AuditJournal.isAvailable }

    func wants(_ event: SinkEvent) -> Bool { true }

    func deliver(_ batch: [SinkEvent]) -> Int {
        var failures = 0
        for event in batch where !socket.send(datagram(fields(event))) { failures += 1 }
        return failures
    }

    func close() { socket.close() }

    /// The journal fields of `event`, names apart from values: a value is the agent's text (a
    /// path), which may hold `=`, newlines or any bytes; it goes in the protocol's binary form.
    func fields(_ event: SinkEvent) -> [(name: String, value: String)] {
        var fields = [("SYSLOG_IDENTIFIER", "agentgate"), ("AGENTGATE_SESSION", session.sessionID), ("AGENTGATE_AGENT", session.agent)]
        switch event.kind {
        case .decision(let decision):
            let rule = decision.ruleID ?? decision.ruleIndex.map { "#\($0 + 1)" } ?? ""
            fields += [
                ("MESSAGE", "agentgate: \(decision.decision) \(decision.action) \(decision.target)"
                    + (rule.isEmpty ? "" : " (rule \(rule))") + " pid \(decision.pid) session \(session.sessionID): \(decision.reason)"),
                ("PRIORITY", "\(decision.decision == .deny ? 4 : 6)"),
                ("AGENTGATE_ACTION", "\(decision.action)"),
                ("AGENTGATE_DECISION", "\(decision.decision)"),
                ("AGENTGATE_TARGET", decision.target),
                ("AGENTGATE_RULE", rule),
                ("AGENTGATE_REASON", decision.reason),
                ("AGENTGATE_SYSCALL", decision.syscall),
                ("AGENTGATE_PID", "\(decision.pid)"),
                ("AGENTGATE_EXECUTABLE", decision.executable),
                ("AGENTGATE_ENFORCED", "\(decision.enforced ? 1 : 0)"),
            ]
        case .kill(let by):
            fields += [("MESSAGE", "agentgate: session \(session.sessionID) killed by \(by)"), ("PRIORITY", "4"),
                       ("AGENTGATE_EVENT", "kill"), ("AGENTGATE_BY", "\(by)")]
        case .reload(let accepted, let sha, let message):
            fields += [("MESSAGE", "agentgate: session \(session.sessionID): \(message)"), ("PRIORITY", "\(accepted ? 5 : 3)"),
                       ("AGENTGATE_EVENT", "reload"), ("AGENTGATE_RELOAD", accepted ? "accepted" : "rejected"),
                       ("AGENTGATE_POLICY_SHA256", sha ?? "")]
        }
        return fields
    }

    /// The datagram holding `fields`.
    func datagram(_ fields: [(name: String, value: String)]) -> [UInt8] {
        var bytes: [UInt8] = []
        for field in fields { AuditJournal.appendField(field.name, field.value, to: &bytes) }
        return bytes
    }
}

/// The journal sink's AF_UNIX datagram socket (blocking, so a journal that stops reading holds
/// the sink's thread, not the agent), with an 8 MiB send buffer where the system allows one.
final class JournalSocket: Sendable {
    private let descriptor: Mutex<Int32>

    init() {
        let made = Glibc.socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        if made >= 0 {
            var size: Int32 = 8 << 20
            _ = setsockopt(made, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        descriptor = Mutex(made)
    }

    deinit { close() }

    /// Sends one datagram (`agentgate_journal_send`); false when it could not be sent.
    func send(_ datagram: [UInt8]) -> Bool {
        descriptor.withLock { descriptor in
            guard descriptor >= 0 else { return false }
            return datagram.withUnsafeBytes {
                agentgate_journal_send(descriptor, JournalSink.socketPath, $0.baseAddress, $0.count) == 0
            }
        }
    }

    func close() {
        descriptor.withLock { descriptor in
            if descriptor >= 0 { Glibc.close(descriptor) }
            descriptor = -1
        }
    }
}
