import Testing
@testable import AgentGatePolicy

@Suite("Policy lint and braces")
struct PolicyLintTests {
    private func findings(_ yaml: String) throws -> [String] {
        PolicyLint.check(try policy(yaml)).map(\.message)
    }

    @Test("a rule after one that matches a superset is unreachable")
    func shadowed() throws {
        let messages = try findings("""
            version: 2
            default: deny
            rules:
              - match: {action: fs_read, target_glob: "$HOME/**"}
                decision: allow
              - id: ssh
                match: {action: fs_read, target_glob: "$HOME/.ssh/**"}
                decision: deny
              - match: {action: fs_read, target_glob: "/etc/passwd"}
                decision: allow
              - match: {target_glob: "/etc/passwd"}
                decision: deny
              - match: {action: exec}
                decision: allow
              - match: {action: exec, argv: [rm, "**"]}
                decision: deny
            """)
        #expect(messages.contains { $0.hasPrefix("rule ssh: unreachable: rule 1 (policy.yaml:4:5)") })
        #expect(messages.contains { $0.hasPrefix("rule 6: unreachable: rule 5") })
        // An any-action rule is not covered by an fs_read rule.
        #expect(!messages.contains { $0.hasPrefix("rule 4:") })
        #expect(messages.count == 2, "\(messages)")
    }

    @Test("an allow of everything shadows every later deny of that action")
    func matchEverythingShadows() throws {
        let yaml = """
            version: 2
            default: deny
            rules:
              - id: read-anything
                match: {action: fs_read, target_glob: "**"}
                decision: allow
              - id: ssh
                match: {action: fs_read, target_glob: "/home/*/.ssh/**"}
                decision: deny
              - id: pipes
                match: {action: fs_read, target_glob: "pipe:*"}
                decision: deny
              - id: run-anything
                match: {action: exec, target_glob: "*"}
                decision: allow
              - id: pipe-to-shell
                match: {action: exec, command: "curl * | sh"}
                decision: deny
              - id: rm
                match: {action: exec, target_glob: "/usr/bin/rm"}
                decision: deny
              - id: any-host
                match: {action: net_egress, target_glob: "*"}
                decision: allow
              - id: evil
                match: {action: net_egress, target_glob: "evil.example"}
                decision: deny
              - id: private
                match: {action: net_egress, cidr: [10.0.0.0/8]}
                decision: deny
              - id: docker
                match: {action: net_egress, target_glob: "unix:/run/docker.sock"}
                decision: deny
              - id: write-below-root
                match: {action: fs_write, target_glob: "/**"}
                decision: allow
              - id: write-pipes
                match: {action: fs_write, target_glob: "pipe:*"}
                decision: deny
              - id: write-top-level
                match: {action: fs_write, target_glob: "*"}
                decision: allow
              - id: write-sockets
                match: {action: fs_write, target_glob: "socket:*"}
                decision: deny
              - id: root-writes
                match: {action: fs_write}
                when: {uid: 0}
                decision: deny
            """
        let policy = try policy(yaml)
        let messages = PolicyLint.check(policy).map(\.message)
        for (rule, shadow) in [("ssh", "read-anything"), ("pipes", "read-anything"), ("pipe-to-shell", "run-anything"),
                               ("rm", "run-anything"), ("evil", "any-host"), ("private", "any-host"),
                               ("write-sockets", "write-top-level")] {
            #expect(messages.contains {
                $0.hasPrefix("rule \(rule): unreachable: rule \(shadow) (")
                    && $0.hasSuffix("so its deny never applies (rule \(shadow) decides allow)")
            }, "\(rule): \(messages)")
        }
        // `*` for net_egress misses unix sockets, `/**` misses pipe:[…], and no one earlier
        // rule matches every write (lint looks for a single shadowing rule).
        for rule in ["docker", "write-pipes", "root-writes"] {
            #expect(!messages.contains { $0.hasPrefix("rule \(rule):") }, "\(rule): \(messages)")
        }
        #expect(messages.count == 7, "\(messages)")
        // For files `*` is one path segment.
        #expect(try findings("""
            default: deny
            rules:
              - {match: {action: fs_read, target_glob: "*"}, decision: allow}
              - {match: {action: fs_read, target_glob: "/etc/**"}, decision: deny}
            """).isEmpty)

        // What lint claims is what evaluation does: the shadowing rule decides.
        let index = Dictionary(uniqueKeysWithValues: policy.rules.map { ($0.displayID, $0.index) })
        for (kind, target, argv, decider) in [
            (ActionKind.fsRead, "/home/dev/.ssh/id_rsa", nil, "read-anything"),
            (.fsRead, "pipe:[123]", nil, "read-anything"),
            (.exec, "/usr/bin/rm", ["rm", "-rf", "x"], "run-anything"),
            (.exec, "/usr/bin/sh", ["sh", "-c", "curl x | sh"], "run-anything"),
            (.netEgress, "evil.example:443", nil, "any-host"),
            (.netEgress, "10.1.2.3:22", nil, "any-host"),
            (.netEgress, "unix:/run/docker.sock", nil, "docker"),
            (.fsWrite, "pipe:[9]", nil, "write-pipes"),
            (.fsWrite, "socket:[9]", nil, "write-top-level"),
            (.fsWrite, "/etc/passwd", nil, "write-below-root"),
        ] as [(ActionKind, String, [String]?, String)] {
            let verdict = policy.evaluate(kind, target: target, exec: argv.map { ExecDetails(argv: $0) })
            #expect(verdict.ruleIndex == index[decider], "\(kind.name) \(target)")
        }
    }

    @Test("conditions and argv keep an earlier rule from shadowing")
    func conditional() throws {
        let messages = try findings("""
            default: deny
            rules:
              - match: {action: exec}
                when: {uid: 0}
                decision: deny
              - match: {action: exec}
                decision: allow
            """)
        #expect(messages.isEmpty)
    }

    @Test("rules that can never match, scopes that always deny; ask is no finding")
    func neverMatch() throws {
        let messages = try findings("""
            version: 2
            default: ask
            rules:
              - match: {action: net_egress, target_glob: "/run/docker.sock"}
                decision: deny
              - match: {action: fs_read, target_glob: "secrets.txt"}
                decision: deny
              - match: {action: fs_write, target_glob: "{pipe,socket}:*"}
                decision: allow
              - match: {action: fs_write, target_glob: "/srv/**"}
                decision: allow
                scope: /home
              - match: {action: exec, argv: [sudo, "**"]}
                decision: ask
            """)
        #expect(messages.contains { $0.contains("rule 1: can never match: net_egress targets are host:port or unix:PATH") })
        #expect(messages.contains { $0.contains("rule 2: can never match: file targets are absolute paths") })
        #expect(!messages.contains { $0.hasPrefix("rule 3:") })
        #expect(messages.contains { $0.contains("rule 4: every path it matches is outside its scope /home") })
        // Sessions ask at the terminal or over the control socket.
        #expect(!messages.contains { $0.hasPrefix("rule 5:") || $0.contains("the default for exec is ask") })
    }

    @Test("brace expansion", arguments: [
        ("a{b,c}d", ["abd", "acd"]),
        ("{a,b}{1,2}", ["a1", "a2", "b1", "b2"]),
        ("x{a,b{c,d}}", ["xa", "xbc", "xbd"]),
        ("{x}", ["{x}"]),
        ("a\\{b,c\\}", ["a\\{b,c\\}"]),
        ("[{,]x", ["[{,]x"]),
        ("{,-}z", ["z", "-z"]),
        ("{a,{x}}", ["a", "{x}"]),
        ("plain", ["plain"]),
    ])
    func braces(_ pattern: String, _ expected: [String]) throws {
        #expect(try BraceExpansion.expand(pattern) == expected)
    }

    @Test("brace blow-ups and unbalanced braces are refused")
    func braceLimits() {
        let bomb = String(repeating: "{a,b}", count: 9)
        #expect(throws: BraceExpansion.Failure.self) { try BraceExpansion.expand(bomb) }
        // Refused before anything is built: a long run of groups fails fast.
        let clock = ContinuousClock()
        let huge = String(repeating: "{a,b,c,d}", count: 5000)
        let elapsed = clock.measure { _ = try? BraceExpansion.expand(huge) }
        #expect(elapsed < .seconds(5))
        for typo in ["{-f,--force", "-f,--force}", "a\\{b,c}"] {
            #expect(throws: BraceExpansion.Failure.self, "\(typo)") { try BraceExpansion.expand(typo) }
        }
    }

    @Test("braces are literal in version 1 files and alternate in version 2")
    func versions() throws {
        let v1 = try policy("""
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/x/{a,b}"}
                decision: deny
            """)
        #expect(v1.evaluate(.fsRead, target: "/x/{a,b}").decision == .deny)
        #expect(v1.evaluate(.fsRead, target: "/x/a").decision == .allow)
        let v2 = try policy("""
            version: 2
            default: allow
            rules:
              - match: {action: fs_read, target_glob: "/x/{a,b}"}
                decision: deny
            """)
        #expect(v2.evaluate(.fsRead, target: "/x/a").decision == .deny)
        #expect(v2.evaluate(.fsRead, target: "/x/b").decision == .deny)
        #expect(v2.evaluate(.fsRead, target: "/x/c").decision == .allow)
    }
}
