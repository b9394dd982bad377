/// `arguments:` of an mcp rule: a text glob per named argument of the tool call, every one of
/// which must match (`arguments: {path: "$HOME/.ssh/**"}`). A call without a named argument
/// doesn't match. `*` spans every character, `/` included, as in `tool:` and `argv:`.
struct ToolArgumentMatch: Sendable {
    var arguments: [(name: String, globs: [Glob])]

    /// Whether every named argument is given and one of its globs matches its value (an
    /// absolute path cleaned lexically first, so `/p/../.ssh/id_rsa` is `/.ssh/id_rsa`).
    func matches(_ given: ToolArguments) -> Bool {
        arguments.allSatisfy { argument in
            guard let value = given.values[argument.name] else { return false }
            let text = value.hasPrefix("/") ? PathLexical.clean(value) : value
            return argument.globs.contains { $0.matches(text) }
        }
    }
}

/// The named arguments of one MCP tool call, each as text: a string argument as it is, any
/// other value as its JSON text (`42`, `true`, `{"a":1}`). Built by the caller, which parses
/// the JSON (this module reads no JSON).
public struct ToolArguments: Sendable, Equatable, Codable {
    public var values: [String: String]
    public init(_ values: [String: String]) { self.values = values }
}

extension Policy {
    /// Decides an MCP tool call by the tool's name and, for rules with `arguments:`, its
    /// arguments. Without arguments (`agentgate check mcp TOOL`, a hook that gave none) a rule
    /// with `arguments:` is decided like one whose `when:` is unknown: only one that denies or
    /// asks applies, so not knowing the arguments never allows more.
    public func evaluateMCP(tool: String, arguments: ToolArguments?, context: ProcessContext? = nil) -> Verdict {
        var source = KnownProcessContext(context)
        return evaluateMCP(tool: tool, arguments: arguments, contextSource: &source)
    }

    func evaluateMCP<Source: ProcessContextSource>(tool: String, arguments: ToolArguments?, contextSource: inout Source) -> Verdict {
        var target = tool
        let kindIndex = Int(ActionKind.mcp.rawValue)
        let enforced = mode == .enforce
        return target.withUTF8 { target in
            arena.withPointers { arena in
                var context: ProcessContext?? = .none
                var facts = NetworkTargetFacts()
                for i in kindStart[kindIndex]..<kindStart[kindIndex + 1] {
                    let code = compiled[i]
                    guard filters[i].admits(target), code.matches(.mcp, target, nil, arena),
                          constraintsHold(code, target, nil, &facts, nil, &context, &contextSource) else { continue }
                    if let match = toolArguments[code.ruleIndex] {
                        if let arguments {
                            guard match.matches(arguments) else { continue }
                        } else if code.decision.allows {
                            continue
                        }
                    }
                    var verdict = code.verdict(.mcp, target, arena)
                    verdict.enforced = enforced
                    return verdict
                }
                let decision = defaults[kindIndex]
                return Verdict(decision: decision, ruleIndex: nil,
                               reason: decision == .ask ? .noApprover : .defaultDecision, enforced: enforced)
            }
        }
    }
}
