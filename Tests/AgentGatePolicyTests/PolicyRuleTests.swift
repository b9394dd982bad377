import Foundation
import Testing
import AgentGatePolicy

/// Loads YAML and expects it to fail at a position with a message fragment.
private func expectLoadError(_ yaml: String, line: Int, column: Int, _ fragment: String,
                             variables: PolicyVariables = testVariables,
                             sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try Policy.parse(yaml: yaml, source: "policy.yaml", variables: variables)
        Issue.record("expected a load error containing \"\(fragment)\"", sourceLocation: sourceLocation)
    } catch {
        #expect(error.message.contains(fragment), "\(error)", sourceLocation: sourceLocation)
        #expect(error.line == line && error.column == column, "\(error)", sourceLocation: sourceLocation)
    }
}

private func exec(_ policy: Policy, _ argv: [String], program: String? = nil, context: ProcessContext? = nil) -> Verdict {
    policy.evaluate(.exec, target: program ?? ExecDetails.assumedProgram(argv[0]),
                    exec: ExecDetails(argv: argv), context: context)
}

@Suite("Exec argv and command rules")
struct ExecRuleTests {
    @Test("argv globs match one argument each; ** matches any run")
    func argvGlobs() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: [rm, "-*r*", "/"]}
                decision: deny
              - match: {action: exec, argv: [git, push, "**", "--force"]}
                decision: deny
              - match: {action: exec, argv: [npm, install, "**"]}
                decision: log
            """)
        #expect(exec(p, ["rm", "-rf", "/"]).decision == .deny)
        #expect(exec(p, ["/bin/rm", "-fr", "/"]).decision == .deny)  // basename for the program word
        #expect(exec(p, ["rm", "-rf", "/tmp/x"]).decision == .allow)
        #expect(exec(p, ["rm", "-rf", "/", "extra"]).decision == .allow) // no ** → exact length
        #expect(exec(p, ["git", "push", "origin", "main", "--force"]).decision == .deny)
        #expect(exec(p, ["git", "push", "--force"]).decision == .deny)
        #expect(exec(p, ["git", "push", "origin"]).decision == .allow)
        #expect(exec(p, ["npm", "install"]).decision == .log)
        #expect(exec(p, ["npm", "install", "left-pad"]).decision == .log)
        #expect(exec(p, ["npm", "run", "build"]).decision == .allow)
    }

    @Test("argv on a program path glob only matches that path")
    func argvPathProgram() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: ["/usr/bin/curl", "**"]}
                decision: deny
            """)
        #expect(exec(p, ["/usr/bin/curl", "x"]).decision == .deny)
        #expect(exec(p, ["curl", "x"]).decision == .allow) // argv[0] as written doesn't start with /usr/bin
    }

    @Test("command globs: * spans spaces and slashes")
    func commandGlobs() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, command: "curl * --upload-file *"}
                decision: deny
              - match: {action: exec, command: ["chmod *+s *", "chmod 4[0-7][0-7][0-7] *"]}
                decision: ask
            """)
        #expect(exec(p, ["curl", "https://x/y", "--upload-file", "/etc/passwd"]).decision == .deny)
        #expect(exec(p, ["/usr/bin/curl", "-s", "https://x/y", "--upload-file", "a"]).decision == .deny)
        #expect(exec(p, ["curl", "https://x/y"]).decision == .allow)
        #expect(exec(p, ["chmod", "u+s", "/tmp/x"]).decision == .ask)
        #expect(exec(p, ["chmod", "4755", "/tmp/x"]).decision == .ask)
        #expect(exec(p, ["chmod", "644", "/tmp/x"]).decision == .allow)
    }

    @Test("without exec details argv and command rules can't match")
    func noDetails() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: [rm, "**"]}
                decision: deny
            """)
        #expect(p.usesExecDetails)
        #expect(p.evaluate(.exec, target: "/usr/bin/rm").decision == .allow)
    }

    @Test("argv and command need action: exec")
    func argvNeedsExec() {
        expectLoadError("""
            rules:
              - match: {argv: [rm]}
                decision: deny
            """, line: 2, column: 20, "\"argv\" and \"command\" only apply to exec")
        expectLoadError("""
            rules:
              - match: {action: fs_read, command: "x"}
                decision: deny
            """, line: 2, column: 39, "only apply to exec")
        expectLoadError("""
            rules:
              - match: {action: exec, argv: "rm -rf"}
                decision: deny
            """, line: 2, column: 33, "expected \"argv\" to be a list of globs")
        expectLoadError("""
            rules:
              - match: {action: exec, command: "[x"}
                decision: deny
            """, line: 2, column: 36, "invalid command glob")
    }
}

@Suite("Network rules")
struct NetworkRuleTests {
    @Test("CIDRs, IPv4 and IPv6")
    func cidrs() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: net_egress, cidr: [10.0.0.0/8, "fd00::/8", 192.168.1.7]}
                decision: deny
            """)
        #expect(p.evaluate(.netEgress, target: "10.1.2.3:443").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "11.1.2.3:443").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "[fd12::1]:80").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "[fe80::1]:80").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "192.168.1.7:22").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "192.168.1.8:22").decision == .allow)
        // IPv4-mapped IPv6 addresses meet IPv4 rules.
        #expect(p.evaluate(.netEgress, target: "[::ffff:10.9.9.9]:443").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "[::ffff:a09:909]:443").decision == .deny)
        // Names and unix sockets are in no network.
        #expect(p.evaluate(.netEgress, target: "example.com:443").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "unix:/run/x.sock").decision == .allow)
    }

    @Test("ports and port ranges, alone and with hosts")
    func ports() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: net_egress, target_glob: "*.github.com", ports: 443}
                decision: allow
              - match: {action: net_egress, cidr: 127.0.0.0/8, ports: ["8000-8999", 3000]}
                decision: allow
              - match: {action: net_egress, target_glob: "unix:/run/user/*/bus"}
                decision: allow
            """)
        #expect(p.evaluate(.netEgress, target: "api.github.com:443").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "api.github.com:22").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "127.0.0.1:8080").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "127.0.0.1:3000").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "127.0.0.1:9000").decision == .deny)
        #expect(p.evaluate(.netEgress, target: "[::ffff:127.0.0.1]:8000").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "unix:/run/user/1000/bus").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "unix:/run/docker.sock").decision == .deny)
    }

    @Test("malformed networks and ports are load errors")
    func malformed() {
        expectLoadError("""
            rules:
              - match: {action: net_egress, cidr: 10.0.0.1/8}
                decision: deny
            """, line: 2, column: 39, "host bits are set")
        expectLoadError("""
            rules:
              - match: {action: net_egress, cidr: 10.0.0.0/33}
                decision: deny
            """, line: 2, column: 39, "at most 32")
        expectLoadError("""
            rules:
              - match: {action: net_egress, cidr: example.com}
                decision: deny
            """, line: 2, column: 39, "expected an IP address or network")
        expectLoadError("""
            rules:
              - match: {action: net_egress, ports: "9-1"}
                decision: deny
            """, line: 2, column: 40, "invalid port \"9-1\"")
        expectLoadError("""
            rules:
              - match: {action: fs_read, ports: 80}
                decision: deny
            """, line: 2, column: 37, "only apply to net_egress")
    }
}

@Suite("when: process context rules")
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

@Suite("Policy variables")
struct VariableTests {
    let variables = PolicyVariables(workingDirectory: "/home/u/proj", home: "/home/u", temporaryDirectory: "/var/tmp/u",
                                    agent: "claude", environment: ["CARGO_HOME": "/opt/cargo", "REGISTRY": "npm.example"])

    @Test("$TMPDIR, $AGENT and ${env:NAME}")
    func expansion() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: fs_write, target_glob: "$TMPDIR/**"}
                decision: allow
              - match: {action: fs_write, target_glob: "${env:CARGO_HOME}/**"}
                decision: allow
              - match: {action: fs_write, target_glob: "$HOME/.local/state/$AGENT/**"}
                decision: allow
              - match: {action: net_egress, target_glob: "${env:REGISTRY}"}
                decision: allow
            """, variables: variables)
        #expect(p.evaluate(.fsWrite, target: "/var/tmp/u/a").decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/opt/cargo/registry/x").decision == .allow)
        #expect(p.evaluate(.fsWrite, target: "/home/u/.local/state/claude/log").decision == .allow)
        #expect(p.evaluate(.netEgress, target: "npm.example:443").decision == .allow)
    }

    @Test("unknown or unset variables are errors, never empty strings")
    func unknown() {
        expectLoadError("""
            rules:
              - match: {target_glob: "${env:NOPE}/x"}
                decision: deny
            """, line: 2, column: 27, "environment variable NOPE is not set", variables: variables)
        expectLoadError("""
            rules:
              - match: {target_glob: "$AGENT"}
                decision: deny
            """, line: 2, column: 27, "$AGENT has no value here")
        expectLoadError("""
            rules:
              - match: {target_glob: "$TMP/x"}
                decision: deny
            """, line: 2, column: 27, "unknown variable $TMP")
    }

    @Test("a lenient load reports unknown variables and loads the rest")
    func lenient() throws {
        var diagnostics: [PolicyDiagnostic] = []
        let directory = try TemporaryDirectory()
        let path = directory.write("p.yaml", """
            default: allow
            rules:
              - match: {target_glob: "$NOPE/x"}
                decision: deny
              - match: {target_glob: "${env:UNSET_FOR_TEST}/y"}
                decision: deny
            """)
        let p = try Policy.load(path: path, variables: testVariables, lenient: true, diagnostics: &diagnostics)
        #expect(p.rules.count == 2)
        #expect(diagnostics.count == 2)
        #expect(diagnostics.first?.description.hasSuffix("p.yaml:3:27: unknown variable $NOPE; expected $PWD, $HOME, $TMPDIR, $AGENT or ${env:NAME} (write $$ for a literal '$')") == true)
        #expect(p.evaluate(.fsRead, target: "/x").decision == .allow)
    }
}

/// A scratch directory removed when the test ends.
final class TemporaryDirectory {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "agentgate-policy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    @discardableResult
    func write(_ name: String, _ text: String) -> String {
        let file = path + "/" + name
        try? FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent,
                                                 withIntermediateDirectories: true)
        _ = FileManager.default.createFile(atPath: file, contents: Data(text.utf8))
        return file
    }
}

@Suite("Policy includes")
struct IncludeTests {
    @Test("own rules first, then includes in order, depth-first; root defaults win")
    func mergeOrder() throws {
        let directory = try TemporaryDirectory()
        directory.write("profiles/base.yaml", """
            default: {exec: allow, fs_read: allow, fs_write: deny, net_egress: deny}
            include: [extra.yaml]
            rules:
              - id: base-deny-secret
                match: {action: fs_read, target_glob: "/secret/**"}
                decision: deny
            """)
        directory.write("profiles/extra.yaml", """
            rules:
              - id: extra-allow-all-reads
                match: {action: fs_read}
                decision: allow
            """)
        directory.write("profiles/node.yaml", """
            rules:
              - id: node-registry
                match: {action: net_egress, target_glob: "registry.npmjs.org"}
                decision: allow
            """)
        let root = directory.write("policy.yaml", """
            include: [profiles/base.yaml, profiles/node.yaml]
            default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: deny}
            rules:
              - id: mine
                match: {action: fs_read, target_glob: "/secret/mine"}
                decision: allow
            """)
        let p = try Policy.load(path: root, variables: testVariables)
        #expect(p.rules.map(\.displayID) == ["mine", "base-deny-secret", "extra-allow-all-reads", "node-registry"])
        #expect(p.files.count == 4)
        #expect(p.rules[1].file.hasSuffix("profiles/base.yaml"))
        #expect(p.evaluate(.fsRead, target: "/secret/mine").decision == .allow)
        #expect(p.evaluate(.fsRead, target: "/secret/other").decision == .deny)
        #expect(p.evaluate(.fsWrite, target: "/x").decision == .allow) // root's default wins
        #expect(p.evaluate(.netEgress, target: "registry.npmjs.org:443").decision == .allow)
    }

    @Test("include errors point at the include, cycles and conflicts are named")
    func errors() throws {
        let directory = try TemporaryDirectory()
        let missing = directory.write("missing.yaml", "include: [nope.yaml]\n")
        #expect(throws: PolicyLoadError.self) { try Policy.load(path: missing, variables: testVariables) }
        do {
            _ = try Policy.load(path: missing, variables: testVariables)
        } catch {
            #expect(error.line == 1 && error.column == 11)
            #expect(error.message.contains("cannot include") && error.message.contains("nope.yaml: the policy file does not exist"))
        }
        directory.write("a.yaml", "include: b.yaml\n")
        directory.write("b.yaml", "include: [a.yaml]\n")
        do {
            _ = try Policy.load(path: directory.path + "/a.yaml", variables: testVariables)
            Issue.record("cycle not detected")
        } catch {
            #expect(error.message.contains("include cycle"), "\(error)")
            #expect(error.file.hasSuffix("b.yaml"))
        }
        directory.write("x.yaml", "default: allow\n")
        directory.write("y.yaml", "default: deny\n")
        let conflict = directory.write("c.yaml", "include: [x.yaml, y.yaml]\n")
        do {
            _ = try Policy.load(path: conflict, variables: testVariables)
            Issue.record("conflict not detected")
        } catch {
            #expect(error.file.hasSuffix("y.yaml") && error.message.contains("included files disagree on the default"), "\(error)")
        }
        // The root resolves it.
        let resolved = directory.write("d.yaml", "include: [x.yaml, y.yaml]\ndefault: ask\n")
        #expect(try Policy.load(path: resolved, variables: testVariables).defaultDecision(for: .exec) == .ask)
        directory.write("moded.yaml", "mode: audit\n")
        let moded = directory.write("e.yaml", "include: moded.yaml\n")
        do {
            _ = try Policy.load(path: moded, variables: testVariables)
            Issue.record("mode in an include accepted")
        } catch {
            #expect(error.file.hasSuffix("moded.yaml") && error.message.contains("top-level policy"), "\(error)")
        }
        // A broken included file reports its own position.
        directory.write("broken.yaml", "rules:\n  - decision: maybe\n")
        let broken = directory.write("f.yaml", "include: broken.yaml\n")
        do {
            _ = try Policy.load(path: broken, variables: testVariables)
            Issue.record("broken include accepted")
        } catch {
            #expect(error.file.hasSuffix("broken.yaml") && error.line == 2 && error.column == 15, "\(error)")
        }
        // Rule ids are unique across the root and everything it includes.
        directory.write("ids.yaml", "rules:\n  - id: ssh-keys\n    decision: deny\n")
        let clash = directory.write("g.yaml", "include: ids.yaml\nrules:\n  - id: ssh-keys\n    decision: allow\n")
        do {
            _ = try Policy.load(path: clash, variables: testVariables)
            Issue.record("duplicate id across files accepted")
        } catch {
            #expect(error.file.hasSuffix("ids.yaml") && error.line == 2 && error.message.contains("duplicate rule id \"ssh-keys\"")
                    && error.message.contains("g.yaml:3:5"), "\(error)")
        }
    }
}

@Suite("Inline rule examples")
struct ExampleTests {
    @Test("examples are checked when the policy loads")
    func examples() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: exec, argv: [git, push, "**"]}
                decision: ask
                examples:
                  match: ["git push origin main", "/usr/bin/git push"]
                  no_match: ["git pull"]
              - match: {action: fs_read, target_glob: "$HOME/.aws/**"}
                decision: deny
                examples: {match: [/home/u/.aws/credentials], no_match: [/home/u/aws]}
            """)
        #expect(p.rules.count == 2)
        expectLoadError("""
            rules:
              - match: {action: exec, argv: [git, push, "**"]}
                decision: ask
                examples:
                  match: ["git pull"]
            """, line: 5, column: 15, "example \"git pull\" should match rule 1 but does not")
        expectLoadError("""
            rules:
              - id: aws
                match: {action: fs_read, target_glob: "$HOME/.aws/**"}
                decision: deny
                examples: {no_match: [/home/u/.aws/x]}
            """, line: 5, column: 27, "example \"/home/u/.aws/x\" should not match rule aws but does")
    }
}
