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

    @Test("rules that can never match, scopes that always deny, ask without an approver")
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
        #expect(messages.contains { $0.contains("rule 5: asks, but no approver can exist yet") })
        #expect(messages.contains { $0.contains("the default for exec is ask") })
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
        #expect(elapsed < .seconds(1))
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
