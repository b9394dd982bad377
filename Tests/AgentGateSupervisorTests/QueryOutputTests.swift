import AgentGateStore
import Foundation
import Testing

/// What `agentgate audit`, `show` and `export --format html` print for recorded sessions, read
/// from databases written directly (so every kind of row, old ones included, can be had).
@Suite(.serialized) struct QueryOutputTests {
    /// Writes a finished session with `events` and `processes` to the harness's database.
    func record(_ h: Harness, session id: String, events: [DecisionEvent], processes: [ProcessRecord] = []) throws {
        let store = try AuditStore(path: h.db)
        defer { store.close() }
        try store.createSession(SessionRecord(
            id: id, agent: "tester", command: ["sh", "-c", "work"], cwd: "/home/dev/project",
            policyPath: "/home/dev/policy.yaml", policySHA256: String(repeating: "0", count: 64),
            startTimeMicros: start))
        let writer = AuditWriter(store: store, sessionID: id)
        for process in processes { writer.recordProcessStart(process) }
        for event in events { writer.record(event) }
        writer.finishSession(endTimeMicros: start + 5_000_000, exitStatus: 0)
    }

    let start = AuditClock.nowMicros() - 60_000_000

    func event(
        _ action: String, _ target: String, syscall: String = "openat", argv: [String]? = nil, decision: String = "deny",
        rule: Int? = nil, id: String? = nil, reason: String, intent: String? = nil
    ) -> DecisionEvent {
        DecisionEvent(
            timeMicros: start + 1_000_000, pid: 100, ppid: 1, executable: "/usr/bin/bash", syscall: syscall,
            action: RecordedAction(text: action), target: target, argv: argv, decision: RecordedDecision(text: decision), ruleIndex: rule, reason: reason,
            errno: decision == "deny" ? 13 : nil, latencyMicros: 10, ruleID: id, intent: intent)
    }

    /// One of each kind of line.
    var mixedEvents: [DecisionEvent] {
        [
            event("fs_read", "/home/dev/.ssh/id_rsa", rule: 3, id: "ssh-keys", reason: "SSH private keys"),
            event("fs_read", "/etc/shadow", rule: 10, id: "11", reason: "matched rule"),
            event("fs_write", "/srv/x", rule: 4, reason: "outside the project"),
            event("net_egress", "telemetry.example:443", syscall: "connect", reason: "no rule matched, fell through to default"),
            // As the supervisor records syscalls of unsupervised routes now…
            event("syscall", "socket(AF_PACKET)", syscall: "socket", reason: "raw_sockets: packet sockets write their own headers"),
            // …and as older ones did: an exec of the route, or of the call.
            event("exec", "io_uring", syscall: "io_uring_setup", reason: "io_uring is unsupervised; denied by default"),
            event("exec", "socket(AF_INET, SOCK_RAW)", syscall: "socket", reason: "raw_sockets is unsupervised; denied by default"),
            event("exec", "tty", syscall: "ioctl", reason: "injecting terminal input would run commands outside supervision"),
            event("exec", "/usr/bin/sh", syscall: "execve", argv: ["sh", "-c", "echo one\necho\ttwo \u{1b}[31mred"],
                  decision: "allow", reason: "matched rule", intent: "agent wants to run echo one echo two red"),
        ]
    }

    @Test func auditAndShowLabelRulesSyscallsAndText() throws {
        let h = try Harness()
        try record(h, session: "mixed-1", events: mixedEvents)
        let audit = h.cli(["audit"])
        #expect(audit.status == 0, "\(audit.stderr)")
        // The clock is local time: strip it.
        let lines = audit.stdout.split(separator: "\n").map { String($0).replacing(#/ \d\d:\d\d:\d\d /#, with: " ") }
        #expect(lines == [
            "✗ fs_read deny /home/dev/.ssh/id_rsa (rule ssh-keys: SSH private keys)",
            "✗ fs_read deny /etc/shadow (rule 11)",
            "✗ fs_write deny /srv/x (rule 5: outside the project)",
            "✗ net_egress deny telemetry.example:443 (no rule matched, fell through to default)",
            "✗ syscall deny socket(AF_PACKET) — raw_sockets",
            "✗ syscall deny io_uring",
            "✗ syscall deny socket(AF_INET, SOCK_RAW) — raw_sockets",
            "✗ syscall deny tty (injecting terminal input would run commands outside supervision)",
            "✓ exec allow sh -c echo one⏎echo⇥two \\u{1b}[31mred",
        ], "\(audit.stdout)")
        #expect(!audit.stdout.contains("\u{1b}") && !audit.stdout.contains("\\u{a}"))

        let syscalls = h.cli(["audit", "--action", "syscall"]).stdout.split(separator: "\n")
        #expect(syscalls.count == 4 && syscalls.allSatisfy { $0.contains(" syscall deny ") }, "\(syscalls)")
        let execs = h.cli(["audit", "--action", "exec"]).stdout.split(separator: "\n")
        #expect(execs.count == 1 && execs[0].contains(" exec allow sh -c echo one⏎"), "\(execs)")
        // JSON keeps the rows as stored.
        let jsonl = h.cli(["audit", "--jsonl", "--action", "syscall"]).stdout.split(separator: "\n")
        let actions = jsonl.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["action"] as? String }
        #expect(actions == ["syscall", "exec", "exec", "exec"])

        let show = h.cli(["show", "mixed-1"])
        #expect(show.status == 0, "\(show.stderr)")
        let text = show.stdout.replacing(#/ \d\d:\d\d:\d\d /#, with: " ")
        #expect(text.contains("  ✗ fs_read deny /home/dev/.ssh/id_rsa (rule ssh-keys: SSH private keys)\n"), "\(text)")
        #expect(text.contains("  ✗ syscall deny socket(AF_PACKET) — raw_sockets\n"))
        #expect(text.contains("  ✗ syscall deny io_uring\n"))
        #expect(!text.contains("exec deny io_uring") && !text.contains("matched rule"))
        // Counts: the old rows count as syscalls.
        #expect(text.contains(try Regex(#"\n  exec +1 +0 +0 +0\n"#)), "\(text)")
        #expect(text.contains(try Regex(#"\n  syscall +0 +4 +0 +0\n"#)), "\(text)")
    }

    @Test func supervisedDenialsReadTheSameWay() throws {
        let h = try Harness()
        try FileManager.default.createDirectory(atPath: h.path("home/.ssh"), withIntermediateDirectories: true)
        try h.write("home/.ssh/id_rsa", "key\n")
        let policy = try h.policy("""
            default: allow
            rules:
              - id: ssh-keys
                match: {action: fs_read, target_glob: "\(h.dir)/home/.ssh/**"}
                decision: deny
                reason: SSH private keys
              - match: {action: fs_read, target_glob: "\(h.dir)/nothing-here"}
                decision: deny
            """)
        let script = "import socket\ntry:\n    socket.socket(socket.AF_PACKET, socket.SOCK_RAW)\nexcept OSError:\n    pass\n"
        let result = h.supervised(["sh", "-c", "cat home/.ssh/id_rsa; cat nothing-here; python3 -c \"$1\"", "sh", script],
                                  policy: policy, extra: ["--session", "live-1"])
        #expect(result.status == 0, "\(result.stderr)")
        let denied = h.cli(["audit", "--decision", "deny"]).stdout.replacing(#/ \d\d:\d\d:\d\d /#, with: " ")
        #expect(denied.contains("✗ fs_read deny \(h.path("home/.ssh/id_rsa")) (rule ssh-keys: SSH private keys)\n"), "\(denied)")
        #expect(denied.contains("✗ fs_read deny \(h.path("nothing-here")) (rule 2: matched rule; ENOENT as bare: the path doesn't resolve)\n"), "\(denied)")
        #expect(denied.contains("✗ syscall deny socket(AF_PACKET) — raw_sockets\n"), "\(denied)")
        #expect(h.cli(["audit", "--action", "syscall"]).stdout.contains("syscall deny socket(AF_PACKET)"))
    }

    @Test func htmlLabelsLikeTheTerminalAndKeepsLineBreaks() throws {
        let h = try Harness()
        try record(h, session: "mixed-2", events: mixedEvents)
        let html = h.cli(["export", "mixed-2", "--format", "html"])
        #expect(html.status == 0, "\(html.stderr)")
        let page = html.stdout
        #expect(page.contains("<td>rule ssh-keys: SSH private keys</td>"))
        #expect(page.contains("<td>rule 11</td>") && !page.contains("rule 11: matched rule"))
        #expect(page.contains("<td class=\"mono\">syscall</td><td>deny</td><td class=\"mono wrap\">socket(AF_PACKET) — raw_sockets</td>"))
        #expect(page.contains("<td class=\"mono\">syscall</td><td>deny</td><td class=\"mono wrap\">io_uring</td>"))
        #expect(!page.contains("<td class=\"mono\">exec</td><td>deny</td><td class=\"mono wrap\">io_uring</td>"))
        #expect(page.contains("echo one<span class=\"muted\">⏎</span><br>echo⇥two \\u{1b}[31mred"), "\(page)")
        #expect(!page.contains("\\u{a}") && !page.contains("\u{1b}"))
        // The counts table counts the old rows as syscalls too.
        #expect(page.contains("<tr><td class=\"mono\">syscall</td><td class=\"num\">0</td><td class=\"num\">4</td>"))
        // The JSON pack keeps the rows and counts as stored.
        let json = h.cli(["export", "mixed-2", "--format", "json"]).stdout
        let pack = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let counts = (pack["counts"] as? [[String: Any]] ?? []).map { "\($0["action"]!) \($0["decision"]!) \($0["count"]!)" }
        #expect(counts.contains("exec deny 3") && counts.contains("syscall deny 1"), "\(counts)")
    }

    @Test func htmlRedactsAValueInEveryColumnThatShowsIt() throws {
        let h = try Harness()
        let token = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
        try record(h, session: "secret-1", events: [
            event("exec", "/usr/bin/mysql", syscall: "execve", argv: ["mysql", "--password", "hunter2", "-e", "select 1"],
                  rule: 0, id: "db", reason: "no databases", intent: "agent wants to run mysql --password hunter2 -e select 1"),
        ], processes: [
            ProcessRecord(pid: 100, ppid: 1, executable: "/tmp/\(token)/tool", argv: [], uid: 0, gid: 0, capabilities: [],
                          cgroup: "/", startTimeMicros: start),
            ProcessRecord(pid: 101, ppid: 100, executable: "/usr/bin/mysql", argv: ["mysql", "--password", "hunter2"],
                          uid: 0, gid: 0, capabilities: [], cgroup: "/", startTimeMicros: start),
        ])
        // A row from before intents and executables were redacted alike.
        _ = h.run(["python3", "-c", """
            import sqlite3,sys; c=sqlite3.connect(sys.argv[1])
            c.execute("update events set intent='agent wants to run mysql --password hunter2 -e select 1', executable='/tmp/\(token)/tool'")
            c.execute("update processes set executable='/tmp/\(token)/tool' where pid=100")
            c.commit()
            """, h.db])
        #expect(h.query("select intent from events").first?.first?.contains("hunter2") == true)
        let page = h.cli(["export", "secret-1", "--format", "html"]).stdout
        #expect(page.contains("<td class=\"mono wrap\">mysql --password [REDACTED] -e select 1</td>"), "\(page)")
        #expect(page.contains("rule db: no databases — agent wants to run mysql --password [REDACTED] -e select 1"))
        #expect(page.contains("100 /tmp/ghp_[REDACTED]/tool"))
        #expect(page.contains("101 mysql --password [REDACTED]"))
        #expect(!page.contains("hunter2") && !page.contains(token))
        let show = h.cli(["show", "secret-1"]).stdout + h.cli(["audit"]).stdout
        #expect(!show.contains("hunter2") && !show.contains(token) && show.contains("mysql --password [REDACTED]"), "\(show)")
    }

    @Test func showFoldsLargeProcessTrees() throws {
        let h = try Harness()
        func process(_ pid: Int32, _ ppid: Int32, _ argv: [String]) -> ProcessRecord {
            ProcessRecord(pid: pid, ppid: ppid, executable: "/usr/bin/" + argv[0], argv: argv, uid: 0, gid: 0,
                          capabilities: [], cgroup: "/", startTimeMicros: start)
        }
        // A make with 60 compilers, and a sibling after it.
        var wide = [process(100, 1, ["bash", "-c", "build"]), process(101, 100, ["make", "-j"])]
        wide += (0..<60).map { process(1000 + Int32($0), 101, ["cc", "-c", "f\($0).c"]) }
        wide.append(process(102, 100, ["sleep", "1"]))
        try record(h, session: "wide-1", events: [], processes: wide)
        let folded = h.cli(["show", "wide-1"]).stdout
        let tree = folded.components(separatedBy: "Process tree:\n")[1].split(separator: "\n").map(String.init)
        #expect(tree == [
            "  100 bash -c build",
            "  ├─ 101 make -j",
        ] + (0..<10).map { "  │  ├─ \(1000 + $0) cc -c f\($0).c" } + [
            "  │  └─ … 50 more processes (agentgate show wide-1 --all)",
            "  └─ 102 sleep 1",
        ], "\(tree)")
        let all = h.cli(["show", "wide-1", "--all"]).stdout
        let allTree = all.components(separatedBy: "Process tree:\n")[1].split(separator: "\n")
        #expect(allTree.count == 63 && !all.contains("more processes"))
        #expect(allTree.contains("  │  └─ 1059 cc -c f59.c"))

        // 8 × 8 grandchildren: no parent has too many children, but 73 lines are too many.
        var deep = [process(100, 1, ["bash"])]
        for child in 0..<8 {
            deep.append(process(200 + Int32(child), 100, ["sh", "\(child)"]))
            deep += (0..<8).map { process(Int32(3000 + child * 10 + $0), 200 + Int32(child), ["cc", "\($0)"]) }
        }
        try record(h, session: "deep-1", events: [], processes: deep)
        let capped = h.cli(["show", "deep-1"]).stdout.components(separatedBy: "Process tree:\n")[1]
            .split(separator: "\n").map(String.init)
        #expect(capped.count == 51 && capped.last == "  … 23 more processes (agentgate show deep-1 --all)", "\(capped)")
        #expect(h.cli(["show", "deep-1", "--all"]).stdout.components(separatedBy: "Process tree:\n")[1]
            .split(separator: "\n").count == 73)
    }
}
