import Foundation
import Testing
import AgentGatePolicy

@Suite("when: conditions on the process context")
struct ProcessContextRuleTests {
    let root = ProcessContext(uid: 0, gid: 0, effectiveCapabilities: 1 << 21 | 1 << 12, permittedCapabilities: ~0,
                              cgroup: "/system.slice/agent.service", executable: "/usr/bin/node",
                              commands: [["npm", "install"], ["node", "/usr/bin/npm", "install"]],
                              ancestors: [ProcessImage(executable: "/usr/bin/bash", commands: [["bash"]])],
                              agent: "claude")
    let user = ProcessContext(uid: 1000, gid: 1000, cgroup: "/user.slice/user-1000.slice/session-2.scope",
                              executable: "/usr/bin/python3", commands: [["python3", "x.py"]],
                              ancestors: [ProcessImage(executable: "/usr/bin/node", commands: [["npm", "install", "x"]]),
                                          ProcessImage(executable: "/usr/bin/bash", commands: [["bash"]])],
                              agent: "codex")

    @Test("caps: any, all, none, permitted set")
    func capabilities() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: net_egress}
                when: {caps: [CAP_SYS_ADMIN]}
                decision: deny
              - match: {action: fs_write}
                when: {caps: {all: [CAP_SYS_ADMIN, cap_net_admin]}}
                decision: deny
              - match: {action: fs_read}
                when: {caps: {none: [CAP_DAC_OVERRIDE], set: permitted}}
                decision: deny
            """)
        #expect(p.usesProcessContext)
        #expect(p.evaluate(.netEgress, target: "1.2.3.4:1", context: root).decision == .deny)
        #expect(p.evaluate(.netEgress, target: "1.2.3.4:1", context: user).decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/x", context: root).decision == .deny)
        var partial = root
        partial.effectiveCapabilities = 1 << 21
        #expect(p.evaluate(.fsWrite, target: "/x", context: partial).decision == .allow)
        #expect(p.evaluate(.fsRead, target: "/x", context: root).decision == .allow)
        #expect(p.evaluate(.fsRead, target: "/x", context: user).decision == .deny)
    }

    @Test("uid, gid, cgroup, exe, agent")
    func identity() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec}
                when: {uid: 0, gid: [0, 10]}
                decision: deny
                reason: root may not exec here
              - match: {action: fs_write}
                when: {cgroup: "/system.slice/**"}
                decision: deny
              - match: {action: fs_read}
                when: {exe: python3}
                decision: ask
              - match: {action: net_egress}
                when: {agent: "cl*", exe: "/usr/bin/*"}
                decision: deny
            """)
        #expect(p.evaluate(.exec, target: "/bin/ls", context: root).decision == .deny)
        #expect(p.rules[0].reason == "root may not exec here")
        #expect(p.evaluate(.exec, target: "/bin/ls", context: user).decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/x", context: root).decision == .deny)
        #expect(p.evaluate(.fsWrite, target: "/x", context: user).decision == .allow)
        #expect(p.evaluate(.fsRead, target: "/x", context: user).decision == .ask)
        #expect(p.evaluate(.fsRead, target: "/x", context: root).decision == .allow)
        #expect(p.evaluate(.netEgress, target: "a:1", context: root).decision == .deny)
        #expect(p.evaluate(.netEgress, target: "a:1", context: user).decision == .allow)
    }

    /// `agentgate-supervise --unit NAME` runs the agent in the session's cgroup below the unit's.
    @Test("cgroup: a rule naming a unit's cgroup matches its session's agents, and only theirs")
    func unitCgroup() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: fs_read}
                when: {cgroup: "/system.slice/nightly.scope/**"}
                decision: deny
            """)
        var agent = user
        agent.cgroup = "/system.slice/nightly.scope/agentgate-4242"
        #expect(p.evaluate(.fsRead, target: "/x", context: agent).decision == .deny)
        agent.cgroup = "/system.slice/nightly.scope"
        #expect(p.evaluate(.fsRead, target: "/x", context: agent).decision == .deny)
        for other in ["/system.slice/nightly.scope-2/agentgate-1", "/system.slice/other.scope/agentgate-1", "/user.slice"] {
            agent.cgroup = other
            #expect(p.evaluate(.fsRead, target: "/x", context: agent).decision == .allow, "\(other)")
        }
    }

    @Test("ancestor: processes started by npm install, by command line or executable")
    func ancestry() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: net_egress}
                when: {ancestor: "npm install*"}
                decision: deny
              - match: {action: exec}
                when: {ancestor: "/usr/bin/node"}
                decision: log
            """)
        // The process itself ran `npm install` before exec'ing node; the python child descends from it.
        #expect(p.evaluate(.netEgress, target: "a:1", context: root).decision == .deny)
        #expect(p.evaluate(.netEgress, target: "a:1", context: user).decision == .deny)
        let unrelated = ProcessContext(executable: "/usr/bin/curl", commands: [["curl", "x"]],
                                       ancestors: [ProcessImage(executable: "/usr/bin/bash", commands: [["bash"]])])
        #expect(p.evaluate(.netEgress, target: "a:1", context: unrelated).decision == .allow)
        #expect(p.evaluate(.exec, target: "/bin/ls", context: user).decision == .log)
        #expect(p.evaluate(.exec, target: "/bin/ls", context: unrelated).decision == .allow)
    }

    @Test("an unknown context never grants: deny rules apply, allow rules don't")
    func unknownContext() throws {
        let p = try policy("""
            default: ask
            rules:
              - match: {action: fs_read, target_glob: "/secret"}
                when: {uid: 1000}
                decision: deny
              - match: {action: fs_read}
                when: {uid: 1000}
                decision: allow
            """)
        #expect(p.evaluate(.fsRead, target: "/secret").decision == .deny)
        #expect(p.evaluate(.fsRead, target: "/other").decision == .ask)
        #expect(p.evaluate(.fsRead, target: "/other", context: user).decision == .allow)
    }

    @Test("the context is read only when a when: rule is reached")
    func lazyContext() throws {
        struct Counting: ProcessContextSource {
            var calls = 0
            mutating func processContext() -> ProcessContext? {
                calls += 1
                return ProcessContext(uid: 5)
            }
        }
        let p = try policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/a/**"}
                when: {uid: 5}
                decision: deny
              - match: {action: fs_read, target_glob: "/b/**"}
                when: {uid: 6}
                decision: deny
            """)
        var source = Counting()
        #expect(p.evaluate(.fsRead, target: "/c/x", exec: nil, contextSource: &source).decision == .allow)
        #expect(source.calls == 0)
        #expect(p.evaluate(.fsRead, target: "/a/x", exec: nil, contextSource: &source).decision == .deny)
        #expect(source.calls == 1)
    }

    @Test("when: errors")
    func errors() {
        expectLoadError("""
            rules:
              - when: {caps: [CAP_FLY]}
                decision: deny
            """, line: 2, column: 19, "unknown capability \"CAP_FLY\"")
        expectLoadError("""
            rules:
              - when: {uid: root}
                decision: deny
            """, line: 2, column: 17, "expected uid to be a number")
        expectLoadError("""
            rules:
              - when: {parent: x}
                decision: deny
            """, line: 2, column: 12, "unknown key \"parent\" in when")
        expectLoadError("""
            rules:
              - when: {caps: {any: [CAP_KILL], all: [CAP_KILL]}}
                decision: deny
            """, line: 2, column: 36, "give only one of any, all, none")
    }

    @Test("capability names cover the kernel's list")
    func capabilityNames() {
        #expect(CapabilityName.number("CAP_SYS_ADMIN") == 21)
        #expect(CapabilityName.number("sys_admin") == 21)
        #expect(CapabilityName.number("CAP_CHECKPOINT_RESTORE") == 40)
        #expect(CapabilityName.names(1 << 21 | 1) == ["CAP_CHOWN", "CAP_SYS_ADMIN"])
    }
}
