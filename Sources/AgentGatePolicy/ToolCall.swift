/// One tool call an agent's hook asks about (Claude Code's or Codex's PreToolUse), mapped to
/// the actions it would take: a Bash command is an exec, a Write an fs_write, a WebFetch a
/// net_egress, an MCP tool an `mcp` action. Decided by the same policy as the supervisor's
/// actions (`Policy.decide(_:context:)`). Pure: the mapping that reads the filesystem (program
/// lookup, symlinks) happens before, in `agentgate hook`.
public struct ToolCall: Sendable, Equatable, Codable {
    /// One action the call would take. `targets` are the names it may be decided under (a
    /// program as named and as resolved, a file and where a dangling symlink creates it): the
    /// strictest verdict wins, as the supervisor decides them.
    public struct Action: Sendable, Equatable, Codable {
        public var kind: ActionKind
        public var targets: [String]
        /// exec: the argv (a shell command is `bash -c COMMAND`), and the program's paths.
        public var argv: [String]?
        public var programs: [String]?

        public init(kind: ActionKind, targets: [String], argv: [String]? = nil, programs: [String]? = nil) {
            self.kind = kind
            self.targets = targets
            self.argv = argv
            self.programs = programs
        }
    }

    /// The tool's name as the agent gave it: `Bash`, `mcp__github__create_issue`.
    public var tool: String
    /// What the call would do; empty for a tool with no action of the kernel's kinds (an MCP
    /// tool, WebSearch, a tool the hook doesn't know), which is decided as an `mcp` action
    /// named by the tool.
    public var actions: [Action]
    /// An MCP tool's named arguments, for rules with `arguments:`; nil when not known.
    public var arguments: ToolArguments?

    public init(tool: String, actions: [Action], arguments: ToolArguments? = nil) {
        self.tool = tool
        self.actions = actions
        self.arguments = arguments
    }

    /// Tools that act on nothing the kernel layer judges (they search the web, keep a to-do
    /// list, start a sub-agent whose own tool calls come through the hook): allowed unless a
    /// rule names them (`action: mcp, tool: WebSearch`).
    public static let toolsAllowedUnlessNamed: Set<String> = [
        "WebSearch", "TodoWrite", "Task", "ExitPlanMode", "BashOutput", "KillShell", "KillBash", "update_plan",
    ]

    /// Whether `tool` is an MCP tool's name (`mcp__server__tool`).
    public static func isMCPTool(_ tool: String) -> Bool { tool.hasPrefix("mcp__") }
}

extension ActionKind: Codable {
    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let kind = ActionKind(name: name) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown action \(name)"))
        }
        self = kind
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }
}

/// How a tool call was decided: the strictest of its actions' verdicts.
public struct ToolDecision: Sendable, Equatable {
    /// What the hook answers: allow, deny or ask (a `log` verdict answers allow).
    public var decision: Decision
    /// The verdict that decided, nil when the hook's own rule for tools no rule names did.
    public var verdict: Verdict?
    /// The action and target that decided.
    public var kind: ActionKind
    public var target: String
    public var argv: [String]?
    /// Why, in words: the rule's reason, or what applied.
    public var why: String

    /// The answer the agent gets: audit mode lets everything through (it is still recorded as
    /// decided), and `log` is an allow.
    public var answer: Decision {
        if let verdict, !verdict.enforced { return .allow }
        return decision == .log ? .allow : decision
    }
}

extension Policy {
    /// Decides a tool call: every action under every name it has, the strictest verdict winning
    /// (deny > ask > log > allow). A call with no actions is an `mcp` action named by the tool:
    /// an MCP tool is decided by the rules and the default for mcp; any other tool by the rules
    /// that name it (`tool:`), else it is allowed when it acts on nothing the kernel sees
    /// (`ToolCall.toolsAllowedUnlessNamed`) and asked about otherwise.
    public func decide(_ call: ToolCall, context: ProcessContext?) -> ToolDecision {
        var best: ToolDecision?
        func consider(_ verdict: Verdict, _ kind: ActionKind, _ target: String, _ argv: [String]?) {
            guard best.map({ verdict.strictness > ($0.verdict?.strictness ?? $0.decision.strictness) }) ?? true else { return }
            best = ToolDecision(decision: verdict.decision, verdict: verdict, kind: kind, target: target, argv: argv,
                                why: explanation(of: verdict))
        }
        for action in call.actions {
            let exec = action.kind == .exec ? ExecDetails(argv: action.argv ?? action.targets, programs: action.programs ?? []) : nil
            for target in action.targets {
                consider(decide(action.kind, target: target, exec: exec, context: context), action.kind, target, action.argv)
                if action.kind == .netEgress, let query = dnsVerdict(target, context: context) {
                    consider(query, action.kind, target, nil)
                }
            }
        }
        if let best { return best }
        let verdict = evaluateMCP(tool: call.tool, arguments: call.arguments, context: context)
        if ToolCall.isMCPTool(call.tool) || verdict.ruleIndex.map({ rules[$0].targetGlob != nil }) == true {
            return ToolDecision(decision: verdict.decision, verdict: verdict, kind: .mcp, target: call.tool, argv: nil,
                                why: explanation(of: verdict))
        }
        let allowed = ToolCall.toolsAllowedUnlessNamed.contains(call.tool)
        return ToolDecision(
            decision: allowed ? .allow : .ask, verdict: nil, kind: .mcp, target: call.tool, argv: nil,
            why: allowed ? "\(call.tool) acts on nothing the supervisor judges, and no rule names it"
                : "no rule names the tool \(call.tool) (write one with action: mcp, tool: \(call.tool))")
    }

    /// A host name is first a DNS query: its verdict, when the target names a host the
    /// resolver is asked about (as `agentgate check` and the session's forwarder decide it).
    func dnsVerdict(_ target: String, context: ProcessContext?) -> Verdict? {
        guard !target.hasPrefix("unix:") else { return nil }
        var host = target
        if !target.hasPrefix("["), target.filter({ $0 == ":" }).count == 1, let colon = target.firstIndex(of: ":") {
            host = String(target[..<colon])
        }
        guard let name = Policy.hostName(host), name != "localhost", !name.hasSuffix(".localhost") else { return nil }
        return evaluateDNSQuery(name: name, context: context)
    }
}
