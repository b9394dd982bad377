import Foundation
import Testing
import AgentGatePolicy

@Suite("Rule fields, decisions, modes and defaults")
struct RuleFieldTests {
    @Test("id, reason, errno, log and the display id")
    func fields() throws {
        let p = try policy("""
            default: deny
            rules:
              - id: no-ssh
                match: {action: fs_read, target_glob: "$HOME/.ssh/**"}
                decision: deny
                reason: SSH keys stay private
                errno: ENOENT
              - match: {action: fs_read, target_glob: "/etc/**"}
                decision: log
              - match: {action: fs_write}
                decision: deny
                errno: 30
            """)
        let ssh = p.evaluate(.fsRead, target: "/home/u/.ssh/id_rsa")
        #expect(ssh.decision == .deny && ssh.errno == ENOENT && !ssh.letsCallProceed)
        #expect(p.rules[0].displayID == "no-ssh" && p.rules[0].reason == "SSH keys stay private")
        #expect(p.rules[1].displayID == "2")
        let etc = p.evaluate(.fsRead, target: "/etc/hosts")
        #expect(etc.decision == .log && etc.letsCallProceed)
        #expect(p.evaluate(.fsWrite, target: "/x").errno(or: 13) == 30)
        #expect(p.evaluate(.exec, target: "/x").errno(or: 13) == 13)
    }

    @Test("rule field errors")
    func errors() {
        expectLoadError("""
            rules:
              - match: {action: fs_read}
                decision: allow
                errno: EPERM
            """, line: 4, column: 12, "\"errno\" only applies to rules that deny or ask")
        expectLoadError("""
            rules:
              - decision: deny
                errno: EWHAT
            """, line: 3, column: 12, "unknown errno \"EWHAT\"")
        expectLoadError("""
            rules:
              - id: a
                decision: deny
              - id: a
                decision: allow
            """, line: 4, column: 5, "duplicate rule id \"a\"; first used at policy.yaml:2:5")
        expectLoadError("""
            rules:
              - id: "two words"
                decision: deny
            """, line: 2, column: 9, "a rule id must be non-empty and contain no spaces")
    }

    @Test("audit mode decides but enforces nothing")
    func auditMode() throws {
        let p = try policy("""
            mode: audit
            default: deny
            """)
        #expect(p.mode == .audit)
        let verdict = p.evaluate(.fsRead, target: "/x")
        #expect(verdict.decision == .deny && !verdict.enforced && verdict.letsCallProceed)
        expectLoadError("mode: learn\n", line: 1, column: 7, "unknown mode \"learn\"; expected enforce or audit")
    }

    @Test("per-action defaults")
    func perActionDefaults() throws {
        let p = try policy("""
            default: {exec: allow, fs_read: allow, fs_write: deny, net_egress: ask}
            """)
        #expect(p.evaluate(.exec, target: "/x").decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/x").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "a:1").decision == .ask)
        expectLoadError("default: {exec: allow}\n", line: 1, column: 10, "missing fs_read, fs_write, net_egress")
        expectLoadError("default: {run: allow}\n", line: 1, column: 11, "unknown action \"run\" in default")
    }

    @Test("an action list applies a rule to several actions")
    func actionList() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: [fs_read, fs_write], target_glob: "/secret/**"}
                decision: deny
            """)
        #expect(p.evaluate(.fsRead, target: "/secret/a").decision == .deny)
        #expect(p.evaluate(.fsWrite, target: "/secret/a").decision == .deny)
        #expect(p.evaluate(.exec, target: "/secret/a").decision == .allow)
    }
}
