import AgentGateStore
import Testing

@testable import AgentGateReports

@Suite("Event lines")
struct EventFormatTests {
    let clock = localTime(Fixture.start + 1_500_000, "HH:mm:ss")

    @Test("a denial names its rule and reason")
    func denialLine() {
        #expect(AuditFormat.line(Fixture.sshDenial) == "✗ \(clock) fs_read deny /home/dev/.ssh/id_rsa (rule ssh-keys: SSH private keys)")
    }

    @Test("an allowed exec shows its argv and no reason")
    func execLine() {
        let event = Fixture.event(
            at: 1_500_000, syscall: "execve", action: "exec", target: "/usr/bin/npm", argv: ["npm", "install", "chalk"])
        #expect(AuditFormat.line(event) == "✓ \(clock) exec allow npm install chalk")
    }

    @Test("a rule without a reason is named by number; audit mode says would deny")
    func auditModeLine() {
        let event = Fixture.event(
            at: 1_500_000, action: "fs_write", target: "/etc/passwd", decision: "deny", ruleIndex: 2,
            reason: "matched rule", enforced: false)
        #expect(AuditFormat.line(event) == "✗ \(clock) fs_write would deny /etc/passwd (rule 3)")
        #expect(AuditFormat.decisionText(event) == "would deny")
    }

    @Test("a syscall on an unsupervised route names the route instead of a reason")
    func syscallLine() {
        let event = Fixture.event(
            at: 1_500_000, syscall: "socket", action: "syscall", target: "socket(AF_PACKET)", decision: "deny",
            reason: "raw_sockets: raw sockets bypass the network rules")
        #expect(AuditFormat.line(event) == "✗ \(clock) syscall deny socket(AF_PACKET) — raw_sockets")
    }

    @Test("a refusal an older supervisor recorded as an exec is shown as a syscall")
    func legacySyscall() {
        let event = Fixture.event(
            syscall: "mount", action: "exec", target: "mount", decision: "deny",
            reason: "mount is unsupervised; allow it with allow_unsupervised")
        #expect(AuditFormat.isSyscall(event))
        #expect(AuditFormat.shownAction(event) == "syscall")
        #expect(AuditFormat.unsupervisedRoute(event) == "mount")
        #expect(AuditFormat.subject(event) == "mount")
    }

    @Test("control characters, line breaks and bidirectional overrides are made visible")
    func printable() {
        #expect(AuditFormat.printable("plain/path") == "plain/path")
        #expect(AuditFormat.printable("a\r\nb\nc\rd") == "a⏎b⏎c⏎d")
        #expect(AuditFormat.printable("tab\there") == "tab⇥here")
        #expect(AuditFormat.printable("\u{1b}[31mred") == "\\u{1b}[31mred")
        #expect(AuditFormat.printable("evil\u{202e}txt.exe") == "evil\\u{202e}txt.exe")
        #expect(AuditFormat.printable("\u{7f}\u{85}") == "\\u{7f}\\u{85}")
    }

    @Test("an escape sequence in a target can't reach the terminal through an event line")
    func hostileTarget() {
        let event = Fixture.event(at: 1_500_000, target: "/tmp/\u{1b}]0;owned\u{7}\nx", decision: "deny", reason: "nope")
        let line = AuditFormat.line(event)
        #expect(!line.unicodeScalars.contains { $0.value < 0x20 })
        #expect(line == "✗ \(clock) fs_read deny /tmp/\\u{1b}]0;owned\\u{7}⏎x (nope)")
    }

    @Test("the -v echo is one line with the pid; notable means not a plain allow, an exec or a connect")
    func echo() {
        #expect(AuditFormat.echoLine(Fixture.sshDenial) == "agentgate: ✗ \(clock) fs_read deny /home/dev/.ssh/id_rsa (rule ssh-keys: SSH private keys) pid=101\n")
        #expect(AuditFormat.isNotable(Fixture.sshDenial))
        #expect(!AuditFormat.isNotable(Fixture.event()))
        #expect(AuditFormat.isNotable(Fixture.event(action: "exec")))
        #expect(AuditFormat.isNotable(Fixture.event(action: "net_egress")))
        #expect(AuditFormat.isNotable(Fixture.event(decision: "log")))
    }

    @Test("an event as JSON: sorted keys, UTC time, optional fields only when present")
    func eventJSON() {
        let stored = Fixture.stored(Fixture.sshDenial, id: 7)
        let object = AuditFormat.jsonObject(stored)
        #expect(object["time"] as? String == "2023-11-14T22:13:21.500Z")
        #expect(object["rule"] as? Int == 2)
        #expect(object["rule_id"] as? String == "ssh-keys")
        #expect(object["argv"] == nil)
        #expect(object["intent"] == nil)
        let text = AuditFormat.json(object)
        #expect(text.hasPrefix("{\"action\":\"fs_read\",\"decision\":\"deny\",\"enforced\":true,\"executable\":\"/usr/bin/cat\""))
        #expect(!text.contains("\n"))
        #expect(text.contains("\"target\":\"/home/dev/.ssh/id_rsa\""))
    }

    @Test("a session as JSON carries its duration")
    func sessionJSON() {
        let object = AuditFormat.sessionObject(Fixture.session())
        #expect(object["start_time"] as? String == "2023-11-14T22:13:20.000Z")
        #expect(object["duration_us"] as? Int64 == 36_000_000)
        #expect(object["exit_status"] as? Int32 == 0)
        #expect(AuditFormat.sessionObject(Fixture.session(end: nil, exit: nil))["end_time"] == nil)
    }
}
