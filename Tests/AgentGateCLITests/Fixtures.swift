import AgentGateStore
import Foundation

/// Fixed records the report tests render: nothing here reads the clock or the kernel.
enum Fixture {
    /// 2023-11-14T22:13:20Z.
    static let start: Int64 = 1_700_000_000_000_000

    static func session(id: String = "4f2a9c1e-session", end: Int64? = start + 36_000_000, exit: Int32? = 0) -> SessionRecord {
        SessionRecord(
            id: id, agent: "claude-code", command: ["claude", "--print", "fix it"], cwd: "/work/project",
            policyPath: "/etc/agentgate/policy.yaml", policySHA256: String(repeating: "ab", count: 32),
            startTimeMicros: start, endTimeMicros: end, exitStatus: exit)
    }

    static func event(
        at offset: Int64 = 0, pid: Int32 = 100, ppid: Int32 = 1, executable: String = "/usr/bin/cat",
        syscall: String = "openat", action: String = "fs_read", target: String = "/work/project/README",
        argv: [String]? = nil, decision: String = "allow", ruleIndex: Int? = nil, ruleID: String? = nil,
        reason: String = "no rule matched, default allow", enforced: Bool = true
    ) -> DecisionEvent {
        DecisionEvent(
            timeMicros: start + offset, pid: pid, ppid: ppid, executable: executable, syscall: syscall,
            action: RecordedAction(text: action), target: target, argv: argv, decision: RecordedDecision(text: decision), ruleIndex: ruleIndex, reason: reason,
            latencyMicros: 12, ruleID: ruleID, enforced: enforced)
    }

    static func stored(_ event: DecisionEvent, id: Int64, session: String = "4f2a9c1e-session") -> StoredEvent {
        StoredEvent(id: id, sessionID: session, event: event, seq: id, hash: String(repeating: "0\(id % 10)", count: 32))
    }

    static func process(
        id: Int64, pid: Int32, ppid: Int32, argv: [String], start offset: Int64, exit: Int64? = nil, status: Int32? = nil
    ) -> StoredProcess {
        StoredProcess(
            id: id, sessionID: "4f2a9c1e-session",
            process: ProcessRecord(
                pid: pid, ppid: ppid, executable: "/usr/bin/" + argv[0], argv: argv, uid: 1000, gid: 1000,
                capabilities: [], cgroup: "/user.slice", startTimeMicros: start + offset,
                exitTimeMicros: exit.map { start + $0 }, exitStatus: status))
    }

    /// An `ssh-keys` denial of a private key.
    static let sshDenial = event(
        at: 1_500_000, pid: 101, target: "/home/dev/.ssh/id_rsa", decision: "deny", ruleIndex: 2, ruleID: "ssh-keys",
        reason: "SSH private keys")
}

/// A fresh directory under /tmp, removed when the test is done with it.
final class TemporaryDirectory {
    let path = "/tmp/agentgate-cli-test-" + UUID().uuidString

    init() throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Local time as an independent formatter writes it, to check `AuditTime` against.
func localTime(_ micros: Int64, _ format: String) -> String {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone.current
    formatter.dateFormat = format
    return formatter.string(from: Date(timeIntervalSince1970: Double(micros) / 1e6))
}
