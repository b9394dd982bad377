import Testing
import AgentGatePolicy

let testVariables = PolicyVariables(workingDirectory: "/home/u/proj", home: "/home/u")

func policy(_ yaml: String, variables: PolicyVariables = testVariables) throws -> Policy {
    try Policy.parse(yaml: yaml, source: "policy.yaml", variables: variables)
}

@Suite("Policy evaluation")
struct PolicyEvaluationTests {
    @Test("first match wins")
    func firstMatchWins() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/etc/shadow"}
                decision: deny
              - match: {action: fs_read, target_glob: "/etc/**"}
                decision: allow
              - match: {action: fs_read, target_glob: "/etc/shadow"}
                decision: allow
            """)
        #expect(p.evaluate(.fsRead, target: "/etc/shadow") == Verdict(decision: .deny, ruleIndex: 0, reason: .matchedRule))
        #expect(p.evaluate(.fsRead, target: "/etc/hosts") == Verdict(decision: .allow, ruleIndex: 1, reason: .matchedRule))
    }

    @Test("no match falls through to the default")
    func defaultFallthrough() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: exec, target_glob: "/usr/bin/git"}
                decision: allow
            """)
        let verdict = p.evaluate(.exec, target: "/usr/bin/curl")
        #expect(verdict == Verdict(decision: .deny, ruleIndex: nil, reason: .defaultDecision))
        #expect(!verdict.letsCallProceed)
        #expect(p.evaluate(.fsRead, target: "/usr/bin/git").ruleIndex == nil)
        #expect(try policy("default: allow").evaluate(.netEgress, target: "1.2.3.4:1")
            == Verdict(decision: .allow, ruleIndex: nil, reason: .defaultDecision))
    }

    @Test("ask is recorded as ask with reason noApprover and is not an enforced allow")
    func askHasNoApprover() throws {
        let p = try policy("""
            default: ask
            rules:
              - match: {action: exec, target_glob: "*install*"}
                decision: ask
            """)
        let fromRule = p.evaluate(.exec, target: "/usr/local/bin/pip-install")
        #expect(fromRule == Verdict(decision: .ask, ruleIndex: 0, reason: .noApprover))
        #expect(!fromRule.letsCallProceed)
        let fromDefault = p.evaluate(.exec, target: "/usr/bin/ls")
        #expect(fromDefault == Verdict(decision: .ask, ruleIndex: nil, reason: .noApprover))
        #expect(fromDefault.reason.text == "no approver")
    }

    @Test("a missing default is ask, as in the Go tool")
    func missingDefault() throws {
        let p = try policy("rules: []")
        #expect(ActionKind.allCases.allSatisfy { p.defaultDecision(for: $0) == .ask })
        #expect(try policy("default: deny").rules.isEmpty)
        #expect(try policy("default: deny\nrules:\n").rules.isEmpty)
    }

    @Test("a rule without action applies to every kind; without target_glob to every target")
    func omittedMatchFields() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {target_glob: "$HOME/.ssh/**"}
                decision: deny
              - match: {action: net_egress}
                decision: ask
              - decision: deny
            """)
        #expect(p.evaluate(.fsRead, target: "/home/u/.ssh/id_rsa").ruleIndex == 0)
        #expect(p.evaluate(.fsWrite, target: "/home/u/.ssh/authorized_keys").ruleIndex == 0)
        #expect(p.evaluate(.exec, target: "/home/u/.ssh/evil").ruleIndex == 0)
        #expect(p.evaluate(.netEgress, target: "1.1.1.1:53").ruleIndex == 1)
        #expect(p.evaluate(.fsRead, target: "/etc/hosts") == Verdict(decision: .deny, ruleIndex: 2, reason: .matchedRule))
        #expect(p.rules[0].action == nil)
        #expect(p.rules[0].targetGlob == "$HOME/.ssh/**")
        #expect(p.rules[0].expandedTargetGlob == "/home/u/.ssh/**")
        #expect(p.rules[0].line == 3)
        #expect(p.rules[2].targetGlob == nil)
    }

    @Test("exec globs match the absolute path, and the basename when the pattern has no slash")
    func execBasename() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: exec, target_glob: "*install*"}
                decision: ask
              - match: {action: exec, target_glob: "git"}
                decision: allow
              - match: {action: exec, target_glob: "/usr/bin/*"}
                decision: allow
            """)
        #expect(p.evaluate(.exec, target: "/usr/bin/git").ruleIndex == 1)
        #expect(p.evaluate(.exec, target: "/opt/git/bin/git").ruleIndex == 1)
        #expect(p.evaluate(.exec, target: "/usr/bin/install").ruleIndex == 0)
        #expect(p.evaluate(.exec, target: "/usr/bin/npm").ruleIndex == 2)
        #expect(p.evaluate(.exec, target: "/usr/bin/git-shell").ruleIndex == 2)
        #expect(p.evaluate(.exec, target: "/usr/local/bin/gitx").ruleIndex == nil)
        #expect(p.evaluate(.exec, target: "/opt/installer/run").ruleIndex == nil)
    }

    @Test("net_egress rules use host matching")
    func netEgress() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: net_egress, target_glob: "169.254.169.254"}
                decision: deny
              - match: {action: net_egress, target_glob: "registry.npmjs.org"}
                decision: allow
              - match: {action: net_egress, target_glob: ".github.com"}
                decision: allow
              - match: {action: net_egress, target_glob: "unix:$PWD/**"}
                decision: allow
            """)
        #expect(p.evaluate(.netEgress, target: "registry.npmjs.org:443").letsCallProceed)
        #expect(!p.evaluate(.netEgress, target: "registry.npmjs.org.evil.com:443").letsCallProceed)
        #expect(p.evaluate(.netEgress, target: "api.github.com:443").letsCallProceed)
        #expect(!p.evaluate(.netEgress, target: "github.com:443").letsCallProceed)
        #expect(p.evaluate(.netEgress, target: "169.254.169.254:80").ruleIndex == 0)
        #expect(p.evaluate(.netEgress, target: "[::ffff:169.254.169.254]:80").ruleIndex == 0)
        #expect(p.evaluate(.netEgress, target: "unix:/home/u/proj/.dev.sock").letsCallProceed)
        #expect(!p.evaluate(.netEgress, target: "unix:/run/docker.sock").letsCallProceed)
    }

    @Test("variables expand in target_glob and scope, in both spellings, and $$ is a literal $")
    func variables() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: fs_write, target_glob: "${PWD}/**"}
                decision: allow
                scope: "${PWD}"
              - match: {action: fs_read, target_glob: "$HOME/cost$$.txt"}
                decision: allow
              - match: {action: fs_read, target_glob: "${HOME}x/*"}
                decision: allow
            """)
        #expect(p.rules[0].expandedTargetGlob == "/home/u/proj/**")
        #expect(p.rules[0].expandedScope == "/home/u/proj")
        #expect(p.rules[0].scope == "${PWD}")
        #expect(p.evaluate(.fsWrite, target: "/home/u/proj/src/a.c").letsCallProceed)
        #expect(p.evaluate(.fsRead, target: "/home/u/cost$.txt").letsCallProceed)
        #expect(p.evaluate(.fsRead, target: "/home/ux/a").letsCallProceed)
    }

    @Test("variable values are cleaned and matched literally, never as glob syntax")
    func variableValues() throws {
        let odd = PolicyVariables(workingDirectory: "/w/[proj]*/", home: "/home/u//")
        let p = try policy("""
            default: allow
            rules:
              - match: {target_glob: "$HOME/.ssh/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "$PWD/**"}
                decision: deny
            """, variables: odd)
        #expect(p.evaluate(.fsRead, target: "/home/u/.ssh/id_rsa").decision == .deny)
        #expect(p.evaluate(.fsWrite, target: "/w/[proj]*/a").decision == .deny)
        #expect(p.evaluate(.fsWrite, target: "/w/p*/a").decision == .allow)
        let root = PolicyVariables(workingDirectory: "/", home: "/")
        let atRoot = try policy("""
            default: allow
            rules:
              - match: {target_glob: "$HOME/.ssh/**"}
                decision: deny
            """, variables: root)
        #expect(atRoot.rules[0].expandedTargetGlob == "/.ssh/**")
        #expect(atRoot.evaluate(.fsRead, target: "/.ssh/id_rsa").decision == .deny)
    }

    @Test("an allow with scope becomes deny when the path escapes the scope")
    func scopeEscapes() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: fs_write, target_glob: "/home/u/**"}
                decision: allow
                scope: "$PWD"
              - match: {action: fs_read}
                decision: allow
                scope: "$PWD/sub/../"
              - match: {action: net_egress, target_glob: "unix:**"}
                decision: allow
                scope: "/run/user"
            """)
        #expect(p.rules[1].expandedScope == "/home/u/proj")
        #expect(p.evaluate(.fsWrite, target: "/home/u/proj/a.c") == Verdict(decision: .allow, ruleIndex: 0, reason: .matchedRule))
        #expect(p.evaluate(.fsWrite, target: "/home/u/proj") == Verdict(decision: .allow, ruleIndex: 0, reason: .matchedRule))
        #expect(p.evaluate(.fsWrite, target: "/home/u/.bashrc") == Verdict(decision: .deny, ruleIndex: 0, reason: .escapesScope))
        #expect(p.evaluate(.fsWrite, target: "/home/u/project/x") == Verdict(decision: .deny, ruleIndex: 0, reason: .escapesScope))
        // The glob matches lexically, the scope check cleans the path first.
        #expect(p.evaluate(.fsWrite, target: "/home/u/proj/../.bashrc") == Verdict(decision: .deny, ruleIndex: 0, reason: .escapesScope))
        #expect(p.evaluate(.fsWrite, target: "/home/u/proj/./x//y").letsCallProceed)
        #expect(p.evaluate(.fsRead, target: "/etc/passwd") == Verdict(decision: .deny, ruleIndex: 1, reason: .escapesScope))
        #expect(p.evaluate(.fsRead, target: "/home/u/proj/sub").letsCallProceed)
        #expect(p.evaluate(.netEgress, target: "unix:/run/user/1000/bus").letsCallProceed)
        #expect(p.evaluate(.netEgress, target: "unix:/run/user/../docker.sock").reason == .escapesScope)
        // Abstract sockets have no path, so the scope does not apply.
        #expect(p.evaluate(.netEgress, target: "unix:@abstract").letsCallProceed)
        #expect(VerdictReason.escapesScope.text == "matched an allow rule but the path escapes its scope")
    }

    @Test("non-clean absolute paths are cleaned before matching")
    func uncleanTargets() throws {
        let p = try policy("""
            default: allow
            rules:
              - match: {target_glob: "$HOME/.ssh/**"}
                decision: deny
            """)
        for target in ["/home/u/proj/../.ssh/id_rsa", "/home/u//.ssh/id_rsa", "/home/u/./.ssh/", "/home/u/.ssh/."] {
            #expect(p.evaluate(.fsRead, target: target) == Verdict(decision: .deny, ruleIndex: 0, reason: .matchedRule),
                    "\(target)")
        }
        #expect(p.evaluate(.fsRead, target: "/home/u/.ssh/../.bashrc").letsCallProceed)
    }

    @Test("targets can be given as UTF-8 bytes")
    func utf8Evaluation() throws {
        let p = try policy("""
            default: deny
            rules:
              - match: {action: fs_read, target_glob: "/etc/**"}
                decision: allow
            """)
        let bytes = Array("/etc/hosts".utf8)
        let verdict = bytes.withUnsafeBufferPointer { p.evaluate(.fsRead, utf8: $0) }
        #expect(verdict.letsCallProceed)
    }

    @Test("names round-trip")
    func names() {
        for kind in ActionKind.allCases { #expect(ActionKind(name: kind.name) == kind) }
        #expect(ActionKind.allCases.map(\.name) == ["exec", "fs_read", "fs_write", "net_egress", "mcp"])
        #expect(ActionKind(name: "exe") == nil)
        #expect(Decision.allow.name == "allow" && Decision.deny.name == "deny" && Decision.ask.name == "ask")
        #expect(Decision(name: "ask") == .ask)
        #expect(VerdictReason.matchedRule.text == "matched rule")
        #expect(VerdictReason.defaultDecision.text == "no rule matched, fell through to default")
    }
}

@Suite("Unsupervised routes and descendant protection")
struct UnsupervisedRouteTests {
    let variables = PolicyVariables(workingDirectory: "/w", home: "/h")

    @Test func parsesAllowUnsupervised() throws {
        let policy = try Policy.parse(yaml: "default: deny\nallow_unsupervised: [io_uring, seccomp]\n", source: "p.yaml", variables: variables)
        #expect(policy.allowedUnsupervised == [.ioUring, .seccomp])
        let none = try Policy.parse(yaml: "default: deny\n", source: "p.yaml", variables: variables)
        #expect(none.allowedUnsupervised.isEmpty)
    }

    @Test func rejectsUnknownRouteWithPosition() {
        #expect(throws: PolicyLoadError.self) {
            try Policy.parse(yaml: "default: deny\nallow_unsupervised: [ptrace]\n", source: "p.yaml", variables: variables)
        }
        do {
            _ = try Policy.parse(yaml: "default: deny\nallow_unsupervised: [ptrace]\n", source: "p.yaml", variables: variables)
        } catch {
            #expect(error.line == 2 && error.message.contains("io_uring"))
        }
    }

    @Test func protectsDescendants() throws {
        let policy = try Policy.parse(yaml: """
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/w/secret/**"}
                decision: deny
              - match: {action: exec, target_glob: "/w/bin/*"}
                decision: deny
            """, source: "p.yaml", variables: variables)
        #expect(policy.protectsDescendants(of: "/w"))
        #expect(!policy.protectsDescendants(of: "/w/public"))
        #expect(!policy.protectsDescendants(of: "/w/bin"))
    }
}

@Suite("Descendant protection with a catch-all deny")
struct DescendantCatchAllTests {
    @Test func catchAllDenyAfterAnAllowDoesNotProtectTheAllowedTree() throws {
        let policy = try Policy.parse(yaml: """
            default: deny
            rules:
              - match: {action: fs_read, target_glob: "/w/proj/secret/**"}
                decision: deny
              - match: {action: fs_write, target_glob: "/w/proj/**"}
                decision: allow
              - match: {action: fs_read}
                decision: allow
              - match: {action: fs_write}
                decision: deny
            """, source: "p.yaml", variables: PolicyVariables(workingDirectory: "/w", home: "/h"))
        #expect(!policy.protectsDescendants(of: "/w/proj/build"))
        #expect(policy.protectsDescendants(of: "/w/proj"))
    }

    @Test("a pattern whose wildcards begin above the directory protects it when it reaches below")
    func wildcardsAboveTheDirectory() throws {
        let variables = PolicyVariables(workingDirectory: "/w", home: "/h")
        let policy = try Policy.parse(yaml: """
            version: 2
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "/h/{.config/{git,systemd},.local/share/applications}/**"}
                decision: deny
              - match: {action: fs_read, target_glob: "/h/.aws/*/credentials"}
                decision: deny
            """, source: "p.yaml", variables: variables)
        // Brace alternatives: the literal start (/h/) lies above ~/.config.
        #expect(policy.protectsDescendants(of: "/h/.config"))
        #expect(policy.protectsDescendants(of: "/h/.config/"))
        #expect(policy.protectsDescendants(of: "/h/.local/share"))
        #expect(policy.protectsDescendants(of: "/h/.local"))
        #expect(policy.protectsDescendants(of: "/h"))
        #expect(!policy.protectsDescendants(of: "/h/.config/nvim"))
        #expect(!policy.protectsDescendants(of: "/h/.cache"))
        #expect(!policy.protectsDescendants(of: "/w/proj"))
        // One wildcard segment: /h/.aws/x/credentials, not /h/.aws/x/y/credentials.
        #expect(policy.protectsDescendants(of: "/h/.aws"))
        #expect(policy.protectsDescendants(of: "/h/.aws/x"))
        #expect(!policy.protectsDescendants(of: "/h/.aws/x/y"))
        // A directory name with glob characters is taken literally.
        #expect(!policy.protectsDescendants(of: "/h/.c*"))
        #expect(!policy.protectsDescendants(of: "/h/{.config,x}"))

        // A leading wildcard reaches below every directory.
        let anywhere = try Policy.parse(yaml: """
            default: allow
            rules:
              - match: {action: fs_write, target_glob: "**/.git/hooks/*"}
                decision: deny
            """, source: "p.yaml", variables: variables)
        #expect(anywhere.protectsDescendants(of: "/w/proj"))
        #expect(anywhere.protectsDescendants(of: "/w/proj/.git"))

        // Where a tree may appear, only write protection counts: a read-denied name below (a
        // credential pattern anywhere) is the agent's own content if it puts one there.
        let readsOnly = try Policy.parse(yaml: """
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/**/.env"}
                decision: deny
            """, source: "p.yaml", variables: variables)
        #expect(readsOnly.protectsDescendants(of: "/w/proj"))
        #expect(!readsOnly.protectsDescendants(of: "/w/proj", kinds: [.fsWrite]))
        #expect(anywhere.protectsDescendants(of: "/w/proj", kinds: [.fsWrite]))
    }

    @Test("the built-in policy: ~/.config and ~/.local/share protect what they hold; a project's directories don't")
    func builtInDescendants() throws {
        let policy = try Policy.builtInDefault(variables: PolicyVariables(workingDirectory: "/home/u/proj", home: "/home/u"))
        // (~/.ssh itself is denied: the question is for directories a rename or symlink may name.)
        for directory in ["/home/u/.config", "/home/u/.local/share", "/home/u/.local", "/home/u"] {
            #expect(policy.protectsDescendants(of: directory), "\(directory)")
        }
        // ~/.config/app is decided by `$HOME/.config/*/**`, which decides all below it too.
        for directory in ["/home/u/proj/build", "/home/u/proj/src/module", "/home/u/proj/.git/objects/ab", "/tmp/x",
                          "/home/u/.cache/pip", "/home/u/.config/nvim-data", "/home/u/.config/configstore",
                          "/home/u/.local/share/app/logs", "/home/u/.local/state/app"] {
            #expect(!policy.protectsDescendants(of: directory), "\(directory)")
        }
    }
}
