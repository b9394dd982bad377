import AgentGateStore
import Testing

@testable import AgentGateReports

@Suite("Session report")
struct SessionReportTests {
    static let processes = [
        Fixture.process(id: 1, pid: 100, ppid: 1, argv: ["sh", "-c", "make"], start: 0, exit: 36_000_000, status: 0),
        Fixture.process(id: 2, pid: 101, ppid: 100, argv: ["cat", "README"], start: 1_000_000, exit: 1_850_000, status: 1),
        Fixture.process(id: 3, pid: 102, ppid: 100, argv: ["make"], start: 2_000_000),
    ]

    static func report() -> SessionReport {
        let counts = [
            AuditStore.EventCount(action: RecordedAction(text: "exec"), decision: RecordedDecision(text: "allow"), enforced: true, count: 2),
            AuditStore.EventCount(action: RecordedAction(text: "fs_read"), decision: RecordedDecision(text: "allow"), enforced: true, count: 5),
            AuditStore.EventCount(action: RecordedAction(text: "fs_read"), decision: RecordedDecision(text: "deny"), enforced: true, count: 1),
        ]
        return SessionReport(
            record: Fixture.session(), counts: counts, storedCounts: counts,
            denied: [Fixture.stored(Fixture.sshDenial, id: 3)], deniedTotal: 1, processes: processes,
            tree: ProcessTree(processes: processes))
    }

    @Test("`show` renders a fixed session line for line")
    func text() {
        let start = AuditTime.dateTime(Fixture.start)
        let end = AuditTime.dateTime(Fixture.start + 36_000_000)
        let clock = localTime(Fixture.start + 1_500_000, "HH:mm:ss")
        #expect(Self.report().text(treeLimits: .folded) == [
            "Session   4f2a9c1e-session",
            "Agent     claude-code",
            "Command   claude --print fix it",
            "Cwd       /work/project",
            "Policy    /etc/agentgate/policy.yaml (sha256 abababababababab…)",
            "Time      \(start) → \(end) (36.0 s)",
            "Exit      0",
            "",
            "Events: 8 (7 allow, 1 deny)",
            "  ACTION   ALLOW  DENY  ASK  LOG",
            "  exec         2     0    0    0",
            "  fs_read      5     1    0    0",
            "",
            "Denied (1):",
            "  ✗ \(clock) fs_read deny /home/dev/.ssh/id_rsa (rule ssh-keys: SSH private keys)",
            "",
            "Process tree:",
            "  100 sh -c make  [exit 0, 36.0 s]",
            "  ├─ 101 cat README  [exit 1, 850 ms]",
            "  └─ 102 make",
        ])
    }

    @Test("a running session, audit mode, a signal exit and denials past the limit")
    func runningAuditSession() {
        var report = Self.report()
        report.record = Fixture.session(end: nil, exit: 137)
        report.record.mode = "audit"
        report.deniedTotal = 3
        let lines = report.text(treeLimits: nil)
        #expect(lines.contains("Agent     claude-code  (audit mode: decided and recorded, not enforced)"))
        #expect(lines.contains("Time      \(AuditTime.dateTime(Fixture.start)) → no end recorded (running, or the supervisor was killed)"))
        #expect(lines.contains("Exit      137 (signal 9)"))
        #expect(lines.contains("Denied (3):"))
        #expect(lines.contains("  … 2 more: agentgate audit --session 4f2a9c1e-session --decision deny"))
    }

    @Test("refusals older supervisors stored as execs are counted as syscalls")
    func legacyCounts() {
        let legacy = Fixture.event(syscall: "mount", action: "exec", target: "mount", decision: "deny", reason: "mount is unsupervised; …")
        typealias Count = AuditStore.EventCount
        let stored: [Count] = [
            Count(action: RecordedAction(text: "exec"), decision: RecordedDecision(text: "deny"), enforced: true, count: 3),
            Count(action: RecordedAction(text: "fs_read"), decision: RecordedDecision(text: "allow"), enforced: true, count: 4),
        ]
        let expected: [Count] = [
            Count(action: RecordedAction(text: "exec"), decision: RecordedDecision(text: "deny"), enforced: true, count: 2),
            Count(action: RecordedAction(text: "fs_read"), decision: RecordedDecision(text: "allow"), enforced: true, count: 4),
            Count(action: RecordedAction(text: "syscall"), decision: RecordedDecision(text: "deny"), enforced: true, count: 1),
        ]
        #expect(SessionReport.counts(stored, moving: [legacy]) == expected)
    }

    @Test("a wide tree folds children and lines past the limits")
    func foldedTree() {
        let children: [StoredProcess] = (1...12).map { (index: Int) -> StoredProcess in
            Fixture.process(id: Int64(index + 1), pid: Int32(200 + index), ppid: 200, argv: ["true"], start: Int64(index))
        }
        let tree = ProcessTree(processes: [Fixture.process(id: 1, pid: 200, ppid: 1, argv: ["make"], start: 0)] + children)
        let folded = tree.lines(limits: ProcessTree.Limits(lines: 50, children: 10), showAll: "SHOW ALL")
        #expect(folded.count == 12)
        #expect(folded[10] == "├─ 210 true")
        #expect(folded.last == "└─ … 2 more processes (SHOW ALL)")
        let short = tree.lines(limits: ProcessTree.Limits(lines: 4, children: 10), showAll: "SHOW ALL")
        #expect(short.count == 5)
        #expect(short.last == "… 9 more processes (SHOW ALL)")
        #expect(tree.lines().count == 13)
    }

    @Test("without process records, the tree is rebuilt from the events' pids and allowed execs")
    func treeFromEvents() {
        let events = [
            Fixture.stored(Fixture.event(pid: 300, ppid: 1, executable: "/bin/sh"), id: 1),
            Fixture.stored(Fixture.event(pid: 301, ppid: 300, executable: "/bin/sh", syscall: "execve", action: "exec",
                                         target: "/usr/bin/git", argv: ["git", "status"]), id: 2),
            Fixture.stored(Fixture.event(pid: 302, ppid: 300, executable: "/bin/sh", syscall: "execve", action: "exec",
                                         target: "/usr/bin/curl", argv: ["curl", "x"], decision: "deny", reason: "no"), id: 3),
        ]
        let tree = ProcessTree(events: events)
        #expect(tree.fromEvents)
        #expect(tree.lines() == ["300 /bin/sh", "├─ 301 /bin/sh → git status", "└─ 302 /bin/sh"])
    }
}
