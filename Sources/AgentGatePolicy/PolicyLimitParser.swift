import Yams

/// One `limits:` entry's keys as written, read one key at a time.
struct LimitKeys {
    var id: String?
    var action: Node?
    var rule: (text: String, node: Node)?
    var match: Node?
    var count: Int?
    var window: LimitWindow?
    var decision: Decision?
    var reason: String?
}

/// The limits of a policy as compiled: the limits themselves, and a policy whose rule `i` is
/// limit `i`'s match, used only to tell whether an action matches it.
public final class LimitMatcher: Sendable {
    let matches: Policy

    init(matches: Policy) {
        self.matches = matches
    }
}

extension PolicyParser {
    static let limitKeys = "id, action, rule, match, count, per, decision, reason"
    static let runawayKeys = "denials, within, then"

    // MARK: Reading

    /// `limits:` (top-level file only): a list of limits.
    func readLimits(_ value: Node, keyNode: Node, depth: Int) throws(PolicyLoadError) -> [Node] {
        if isNull(value) { return [] }
        guard depth == 0 else {
            throw error(at: keyNode, "\"limits\" may only be set in the top-level policy, not in an included file")
        }
        guard case .sequence(let sequence) = value else {
            throw error(at: value, "expected \"limits\" to be a list of limits (mappings with keys \(Self.limitKeys)); "
                            + "found \(describe(value))")
        }
        return Array(sequence)
    }

    /// `runaway: {denials: N, within: "10s", then: pause}` (top-level file only).
    mutating func readRunaway(_ value: Node, keyNode: Node, depth: Int) throws(PolicyLoadError) {
        if isNull(value) { return }
        guard depth == 0 else {
            throw error(at: keyNode, "\"runaway\" may only be set in the top-level policy, not in an included file")
        }
        guard case .mapping(let mapping) = value else {
            throw error(at: value, "expected \"runaway\" to be a mapping with keys \(Self.runawayKeys); found \(describe(value))")
        }
        var denials: Int?
        var window: LimitWindow?
        var action = RunawayRule.Action.pause
        for (keyNode, item) in mapping {
            switch try key(keyNode) {
            case "denials": denials = try positiveCount(item, key: "runaway.denials")
            case "within": window = try limitWindow(item, key: "runaway.within")
            case "then":
                let text = try string(item, key: "runaway.then", expected: "pause")
                guard let parsed = RunawayRule.Action(rawValue: text) else {
                    throw error(at: item, "unknown runaway action \"\(text)\"; expected pause")
                }
                action = parsed
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in runaway; expected one of \(Self.runawayKeys)")
            }
        }
        guard let denials else { throw error(at: value, "runaway is missing required key \"denials\" (a number of denials)") }
        guard let window else {
            throw error(at: value, "runaway is missing required key \"within\" (a window such as \"10s\" or \"1m\")")
        }
        runaway = RunawayRule(denials: denials, window: window, action: action, file: source,
                              line: value.mark?.line ?? 0, column: value.mark?.column ?? 0)
    }

    /// A whole number from 1 to `RateLimit.maximumCount`.
    private func positiveCount(_ node: Node, key: String) throws(PolicyLoadError) -> Int {
        let text = try string(node, key: key, expected: "a whole number")
        guard let number = Int(text), number > 0, number <= RateLimit.maximumCount else {
            throw error(at: node, "expected \"\(key)\" to be a whole number from 1 to \(RateLimit.maximumCount); found \"\(text)\"")
        }
        return number
    }

    /// `"30s"`, `"1m"`, `"1h"`, `"1m30s"` or a number of seconds.
    func limitWindow(_ node: Node, key: String) throws(PolicyLoadError) -> LimitWindow {
        let text = try string(node, key: key, expected: "a window such as \"30s\", \"1m\" or \"1h\"")
        guard let window = LimitWindow(parsing: text) else {
            throw error(at: node, "invalid \"\(key)\" \"\(text)\"; expected a window such as \"30s\", \"1m\", \"1h\", "
                            + "\"1m30s\" or a number of seconds, from 1s to 7d")
        }
        return window
    }

    /// One limit's keys, each by its own function.
    private func limitKeys(_ node: Node) throws(PolicyLoadError) -> LimitKeys {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, "expected a limit (a mapping with keys \(Self.limitKeys)); found \(describe(node))")
        }
        var keys = LimitKeys()
        for (keyNode, value) in mapping {
            switch try key(keyNode) {
            case "id":
                let text = try string(value, key: "id", expected: "a limit name")
                guard !text.isEmpty, text.unicodeScalars.allSatisfy({ !$0.properties.isWhitespace }) else {
                    throw error(at: value, "a limit id must be non-empty and contain no spaces")
                }
                keys.id = text
            case "action": keys.action = value
            case "rule": keys.rule = (try string(value, key: "rule", expected: "a rule id or number"), value)
            case "match":
                guard case .mapping = value else {
                    throw error(at: value, "expected \"match\" to be a mapping with keys \(Self.matchKeys); found \(describe(value))")
                }
                keys.match = value
            case "count": keys.count = try positiveCount(value, key: "count")
            case "per": keys.window = try limitWindow(value, key: "per")
            case "decision":
                let decision = try self.decision(value, key: "decision")
                guard decision == .deny || decision == .ask else {
                    throw error(at: value, "a limit's decision must be deny or ask (what happens over the limit); "
                                    + "found \(decision.name)")
                }
                keys.decision = decision
            case "reason": keys.reason = try string(value, key: "reason", expected: "a sentence shown to the user")
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in limit; expected one of \(Self.limitKeys)")
            }
        }
        return keys
    }

    // MARK: Compiling

    /// Every limit, checked against the rules, and the matcher of their `match:` parts.
    mutating func buildLimits(rules: [PolicyRule]) throws(PolicyLoadError) -> (limits: [RateLimit], matcher: LimitMatcher?) {
        guard !limitNodes.isEmpty else { return ([], nil) }
        var limits: [RateLimit] = []
        var matchNodes: [(source: String, node: Node, braces: Bool)] = []
        var ids: [String: RateLimit] = [:]
        for (limitSource, node, fileBraces) in limitNodes {
            source = limitSource
            let keys = try limitKeys(node)
            guard let count = keys.count else {
                throw error(at: node, "limit is missing required key \"count\" (how many actions per window)")
            }
            guard let window = keys.window else {
                throw error(at: node, "limit is missing required key \"per\" (a window such as \"30s\", \"1m\" or \"1h\")")
            }
            var ruleIndex: Int?
            if let (text, ruleNode) = keys.rule {
                guard let found = rules.firstIndex(where: { $0.id == text }) ?? Int(text).flatMap({ n in
                    rules.indices.contains(n - 1) ? n - 1 : nil
                }) else {
                    throw error(at: ruleNode, "limit names rule \"\(text)\", which the policy does not have "
                                    + "(give a rule's id, or its 1-based number)")
                }
                guard rules[found].decision.allows else {
                    throw error(at: ruleNode, "limit names rule \(rules[found].displayID), which is a \(rules[found].decision.name) "
                                    + "rule; a limit counts what a rule allows")
                }
                ruleIndex = found
            }
            // The match part, with the limit's action, compiled like a rule's.
            var pairs: [(Node, Node)] = []
            if case .mapping(let match) = keys.match {
                for (matchKey, matchValue) in match {
                    if try key(matchKey) == "action", keys.action != nil {
                        throw error(at: matchKey, "the limit gives \"action\" already; give it once, beside count or in match")
                    }
                    pairs.append((matchKey, matchValue))
                }
            }
            if let action = keys.action { pairs.append((.scalar(.init("action")), action)) }
            let decisionNode = Node.scalar(.init("deny", .implicit, .any, node.mark))
            let ruleNode = Node.mapping(.init([(.scalar(.init("match")), .mapping(.init(pairs, .implicit, .any, keys.match?.mark ?? node.mark))),
                                               (.scalar(.init("decision")), decisionNode)], .implicit, .any, node.mark))
            matchNodes.append((limitSource, ruleNode, fileBraces))
            var actions = ActionKind.allCases
            if keys.action != nil || keys.match != nil {
                // Read back from the compiled rule below, once it is known to be valid.
                actions = []
            }
            let limit = RateLimit(index: limits.count, id: keys.id, actions: actions, ruleIndex: ruleIndex,
                                  hasMatch: keys.match != nil, count: count, window: window,
                                  decision: keys.decision ?? .deny, reason: keys.reason, file: limitSource,
                                  line: node.mark?.line ?? 0, column: node.mark?.column ?? 0)
            if let id = keys.id {
                if let earlier = ids[id] {
                    throw error(at: node, "duplicate limit id \"\(id)\"; first used at \(earlier.location)")
                }
                ids[id] = limit
            }
            limits.append(limit)
        }
        var matchParser = PolicyParser(variables: variables, lenient: lenient)
        matchParser.ruleNodes = matchNodes
        let matches = try matchParser.build(root: "<limits>")
        diagnostics += matchParser.diagnostics
        for (i, limit) in limits.enumerated() {
            var actions = matches.rules[i].actions
            if let ruleIndex = limit.ruleIndex {
                actions = actions.filter(rules[ruleIndex].actions.contains)
                guard !actions.isEmpty else {
                    source = limit.file
                    throw PolicyLoadError(file: limit.file, line: limit.line, column: limit.column,
                                          message: "limit \(limit.displayID) counts \(matches.rules[i].actions.map(\.name).joined(separator: ", ")) "
                                            + "but rule \(rules[ruleIndex].displayID) decides only "
                                            + rules[ruleIndex].actions.map(\.name).joined(separator: ", "))
                }
            }
            limits[i] = RateLimit(index: i, id: limit.id, actions: actions, ruleIndex: limit.ruleIndex, hasMatch: limit.hasMatch,
                                  count: limit.count, window: limit.window, decision: limit.decision, reason: limit.reason,
                                  file: limit.file, line: limit.line, column: limit.column)
        }
        return (limits, LimitMatcher(matches: matches))
    }
}

extension Policy {
    /// Whether limit `index` counts an action the policy decided with `verdict`: its action,
    /// its rule (when it names one) and its match (when it has one). `when:` is not part of
    /// a limit.
    public func limit(_ index: Int, counts kind: ActionKind, target: String, exec: ExecDetails?, verdict: Verdict) -> Bool {
        guard limits.indices.contains(index), let limitMatcher else { return false }
        let limit = limits[index]
        guard limit.actions.contains(kind) else { return false }
        if let ruleIndex = limit.ruleIndex, verdict.ruleIndex != ruleIndex { return false }
        guard limit.hasMatch else { return true }
        return limitMatcher.matches.ruleMatches(index, kind, target: target, exec: exec)
    }
}
