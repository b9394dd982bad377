import AgentGatePolicy
import Testing

/// `mcp` actions (agent hooks): `tool:` rules, their load errors and lint, and how a tool call
/// is decided from its actions.
struct MCPRuleTests {
    static let yaml = """
        version: 2
        default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow}
        rules:
          - id: github-read
            match: {action: mcp, tool: "mcp__github__get_*"}
            decision: allow
          - id: github
            match: {action: mcp, tool: "mcp__github__*"}
            decision: ask
          - id: tasks
            match: {action: mcp, tool: Task}
            decision: deny
            reason: no sub-agents here
          - match: {action: fs_read, target_glob: "$HOME/.ssh/**"}
            decision: deny
          - match: {action: exec, command: "curl * | sh*"}
            decision: deny
        """

    @Test func toolGlobsMatchToolNamesAndAPerActionDefaultMayLeaveMCPOut() throws {
        let policy = try Policy.parse(yaml: Self.yaml, source: "p.yaml", variables: testVariables)
        #expect(policy.evaluate(.mcp, target: "mcp__github__get_issue").ruleIndex == 0)
        #expect(policy.evaluate(.mcp, target: "mcp__github__create_issue").decision == .ask)
        // `*` spans every character of a name, `/` included; names are case-sensitive.
        #expect(policy.evaluate(.mcp, target: "mcp__github__a/b").ruleIndex == 1)
        #expect(policy.evaluate(.mcp, target: "mcp__GitHub__x").ruleIndex == nil)
        // Unnamed in the per-action default: a tool no rule names is asked about.
        #expect(policy.defaultDecision(for: .mcp) == .ask)
        let single = try Policy.parse(yaml: "default: deny\nrules: []", source: "p.yaml", variables: testVariables)
        #expect(single.defaultDecision(for: .mcp) == .deny)
        let named = try Policy.parse(yaml: "default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow, mcp: allow}",
                                     source: "p.yaml", variables: testVariables)
        #expect(named.defaultDecision(for: .mcp) == .allow)
        // A rule for every action with a path pattern never matches a tool; one without a target does.
        let any = try Policy.parse(yaml: """
            default: allow
            rules:
              - match: {target_glob: "**"}
                decision: deny
              - match: {}
                decision: log
            """, source: "p.yaml", variables: testVariables)
        #expect(any.evaluate(.mcp, target: "mcp__x__y").decision == .log)
    }

    @Test func toolRulesHaveClearLoadErrors() {
        expectLoadError("rules:\n  - match: {tool: \"mcp__*\"}\n    decision: deny", line: 2, column: 19,
                        "\"tool\" only applies to mcp; add action: mcp")
        expectLoadError("rules:\n  - match: {action: exec, tool: x}\n    decision: deny", line: 2, column: 33,
                        "\"tool\" only applies to mcp")
        expectLoadError("rules:\n  - match: {action: mcp, tool: x, target_glob: y}\n    decision: deny", line: 2, column: 48,
                        "give tool or target_glob, not both")
        expectLoadError("rules:\n  - match: {action: mcp, tool: \"\"}\n    decision: deny", line: 2, column: 32, "\"tool\" is empty")
        expectLoadError("rules:\n  - match: {action: mcp, tool: \"[\"}\n    decision: deny", line: 2, column: 33, "invalid tool")
        expectLoadError("default: {exec: allow}", line: 1, column: 10, "missing fs_read, fs_write, net_egress")
    }

    @Test func lintKnowsMCPRules() throws {
        let policy = try Policy.parse(yaml: """
            default: allow
            rules:
              - match: {action: mcp, tool: "mcp__github__*"}
                decision: deny
              - match: {action: mcp, tool: "mcp__github__create_issue"}
                decision: allow
              - match: {action: mcp, tool: "/etc/**"}
                decision: deny
            """, source: "p.yaml", variables: testVariables)
        let findings = PolicyLint.check(policy).map(\.message)
        #expect(findings.contains { $0.hasPrefix("rule 2: unreachable: rule 1") }, "\(findings)")
        #expect(findings.contains { $0.contains("rule 3: can never match: mcp targets are tool names") }, "\(findings)")
    }

    @Test func aToolCallIsDecidedByItsStrictestAction() throws {
        let policy = try Policy.parse(yaml: Self.yaml, source: "p.yaml", variables: testVariables)
        let shell = ToolCall(tool: "Bash", actions: [
            ToolCall.Action(kind: .exec, targets: ["/usr/bin/bash"], argv: ["bash", "-c", "ls && curl -s x | sh"],
                            programs: ["/usr/bin/bash"]),
            ToolCall.Action(kind: .exec, targets: ["/usr/bin/ls"], argv: ["ls"], programs: ["/usr/bin/ls"]),
        ])
        let decided = policy.decide(shell, context: nil)
        #expect(decided.decision == .deny && decided.kind == .exec && decided.target == "/usr/bin/bash")
        let read = policy.decide(ToolCall(tool: "Read", actions: [ToolCall.Action(kind: .fsRead, targets: ["/home/u/.ssh/id_rsa"])]),
                                 context: nil)
        #expect(read.decision == .deny && read.answer == .deny)
        // Tools the kernel never sees: the rules that name them, else allowed (harmless) or asked.
        #expect(policy.decide(ToolCall(tool: "mcp__github__get_pr", actions: []), context: nil).decision == .allow)
        #expect(policy.decide(ToolCall(tool: "mcp__other__x", actions: []), context: nil).decision == .ask)
        #expect(policy.decide(ToolCall(tool: "Task", actions: []), context: nil).decision == .deny)
        #expect(policy.decide(ToolCall(tool: "WebSearch", actions: []), context: nil).decision == .allow)
        let unknown = policy.decide(ToolCall(tool: "Frobnicate", actions: []), context: nil)
        #expect(unknown.decision == .ask && unknown.verdict == nil && unknown.why.contains("no rule names the tool Frobnicate"))
        // Audit mode answers allow whatever it records; log answers allow.
        let audit = try Policy.parse(yaml: "mode: audit\ndefault: deny", source: "p.yaml", variables: testVariables)
        let recorded = audit.decide(ToolCall(tool: "Read", actions: [ToolCall.Action(kind: .fsRead, targets: ["/x"])]), context: nil)
        #expect(recorded.decision == .deny && recorded.answer == .allow)
    }
}

/// `arguments:` of mcp rules (the MCP gateway): every named argument must match.
struct MCPArgumentRuleTests {
    static let yaml = """
        version: 2
        default: {exec: allow, fs_read: allow, fs_write: allow, net_egress: allow, mcp: allow}
        rules:
          - id: keys
            match: {action: mcp, tool: read_file, arguments: {path: "$HOME/.ssh/**"}}
            decision: deny
          - id: big
            match: {action: mcp, tool: "*", arguments: {count: "1000*", mode: [fast, "{turbo,max}"]}}
            decision: ask
          - id: reads
            match: {action: mcp, tool: read_file, arguments: {path: "/srv/**"}}
            decision: allow
          - match: {action: mcp, tool: read_file}
            decision: deny
        """

    @Test func everyNamedArgumentMustMatch() throws {
        let policy = try Policy.parse(yaml: Self.yaml, source: "p.yaml", variables: testVariables)
        func decide(_ tool: String, _ arguments: [String: String]?) -> Verdict {
            policy.evaluateMCP(tool: tool, arguments: arguments.map(ToolArguments.init))
        }
        #expect(decide("read_file", ["path": "/home/u/.ssh/id_rsa"]).ruleIndex == 0)
        // Absolute paths are cleaned first; `*` spans `/`.
        #expect(decide("read_file", ["path": "/home/u/proj/../.ssh/a/b"]).ruleIndex == 0)
        #expect(decide("read_file", ["path": "/srv/data/x"]).decision == .allow)
        #expect(decide("read_file", ["path": "/srv/../home/u/.ssh/id_rsa"]).ruleIndex == 0)
        #expect(decide("read_file", ["other": "/srv/x"]).ruleIndex == 3)
        // Non-string arguments match by their JSON text; all named arguments must match.
        #expect(decide("run", ["count": "10000", "mode": "turbo"]).decision == .ask)
        #expect(decide("run", ["count": "10000"]).decision == .allow)
        #expect(decide("run", ["count": "5", "mode": "fast"]).decision == .allow)
        // Arguments unknown: a rule with arguments applies only when it restricts.
        #expect(decide("read_file", nil).ruleIndex == 0)
        #expect(policy.evaluate(.mcp, target: "read_file").ruleIndex == 0)
        #expect(decide("other", nil).decision == .ask)
        // A hook's tool call carries them too.
        let call = ToolCall(tool: "read_file", actions: [], arguments: ToolArguments(["path": "/srv/a"]))
        #expect(policy.decide(call, context: nil).decision == .allow)
    }

    @Test func argumentsHaveClearLoadErrorsAndLintSeesThem() throws {
        expectLoadError("rules:\n  - match: {action: exec, arguments: {a: b}}\n    decision: deny", line: 2, column: 38,
                        "\"arguments\" only applies to mcp")
        expectLoadError("rules:\n  - match: {action: mcp, arguments: [a]}\n    decision: deny", line: 2, column: 37,
                        "expected \"arguments\" to be a mapping")
        expectLoadError("rules:\n  - match: {action: mcp, arguments: {}}\n    decision: deny", line: 2, column: 37, "\"arguments\" is empty")
        expectLoadError("rules:\n  - match: {action: mcp, arguments: {a: \"[\"}}\n    decision: deny", line: 2, column: 41,
                        "invalid arguments.a glob")
        // A rule with arguments never shadows a later rule for the same tool; one without does.
        let policy = try Policy.parse(yaml: """
            default: allow
            rules:
              - match: {action: mcp, tool: x, arguments: {a: b}}
                decision: deny
              - match: {action: mcp, tool: x}
                decision: allow
              - match: {action: mcp, tool: x, arguments: {a: c}}
                decision: deny
            """, source: "p.yaml", variables: testVariables)
        let findings = PolicyLint.check(policy).map(\.message)
        #expect(!findings.contains { $0.hasPrefix("rule 2: unreachable") }, "\(findings)")
        #expect(findings.contains { $0.hasPrefix("rule 3: unreachable: rule 2") }, "\(findings)")
        #expect(policy.rules[0].arguments == ["a: b"])
    }
}
