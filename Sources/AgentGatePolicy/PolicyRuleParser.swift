import Yams

/// One rule's keys as written, read one key at a time before the rule is compiled: compiling
/// checks keys against each other, so it waits until all of them are known.
struct RuleKeys {
    typealias Item = (text: String, node: Node)

    var id: String?
    /// nil: `action` omitted, the rule applies to every kind.
    var actions: [ActionKind]?
    var target: Item?
    /// `tool:` (mcp rules): a glob over the tool's name, the target of an mcp action.
    var tool: Item?
    /// `arguments:` (mcp rules): a glob per named argument.
    var arguments: (items: [(name: String, pattern: Item)], node: Node)?
    var argv: [Item]?
    var commands: [Item] = []
    var cidrs: [Item] = []
    var ports: [Item] = []
    var when: Node?
    var decision: Decision?
    var reason: String?
    var errno: (value: Int32, node: Node)?
    var scope: Item?
    var examples: [(text: String, node: Node, shouldMatch: Bool)] = []
}

/// A rule as compiled, before its parts are moved into the policy's tables.
struct ParsedRule {
    var rule: PolicyRule
    var matchers: [(ActionKind, CompiledMatcher)]
    var exec: ExecConstraint?
    var network: NetworkConstraint?
    var condition: RuleCondition?
    var toolArguments: ToolArgumentMatch?
    var examples: [PolicyParser.PendingExample]
}

extension PolicyParser {
    // MARK: Reading a rule's keys

    /// Reads one rule: each key by its own function, then the checks across keys, then each
    /// part compiled. Errors come in document order, then in the order of the checks.
    mutating func rule(_ node: Node, index: Int) throws(PolicyLoadError) -> ParsedRule {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, "expected a rule (a mapping with keys \(Self.ruleKeys)); found \(describe(node))")
        }
        var keys = RuleKeys()
        for (keyNode, value) in mapping {
            switch try key(keyNode) {
            case "id": keys.id = try ruleID(value)
            case "match": try readMatch(value, into: &keys)
            case "when": keys.when = value
            case "decision": keys.decision = try self.decision(value, key: "decision")
            case "reason": keys.reason = try string(value, key: "reason", expected: "a sentence shown to the user")
            case "errno": keys.errno = (try errnoNumber(value), value)
            case "scope": keys.scope = (try string(value, key: "scope", expected: "an absolute directory path"), value)
            case "examples": keys.examples = try examples(value)
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in rule; expected one of \(Self.ruleKeys)")
            }
        }
        let decision = try checkCombinations(keys, rule: node)
        let kinds = keys.actions ?? ActionKind.allCases
        let expandedScope = try scope(keys.scope, decision: decision)
        let target = try targetMatchers(keys.target ?? keys.tool, kinds: kinds, actionGiven: keys.actions != nil,
                                        key: keys.tool != nil ? "tool" : "target_glob")
        let exec = try execConstraint(argv: keys.argv, commands: keys.commands)
        let network = try networkConstraint(cidrs: keys.cidrs, ports: keys.ports)
        var condition: RuleCondition?
        var conditionSummary: [String] = []
        if let when = keys.when, !isNull(when) {
            (condition, conditionSummary) = try self.condition(when)
        }

        let toolArguments = try toolArgumentMatch(keys.arguments?.items)

        let mark = node.mark
        var rule = PolicyRule(
            index: index, id: keys.id, action: keys.actions?.count == 1 ? keys.actions![0] : nil, actions: kinds,
            targetGlob: (keys.target ?? keys.tool)?.text, argv: keys.argv?.map(\.text), commands: keys.commands.map(\.text),
            networks: keys.cidrs.map(\.text), ports: keys.ports.map(\.text), conditions: conditionSummary,
            decision: decision, reason: keys.reason, errno: keys.errno?.value ?? 0, scope: keys.scope?.text, file: source,
            line: mark?.line ?? 0, column: mark?.column ?? 0,
            expandedTargetGlob: target.expanded, targetAlternatives: target.alternatives, expandedScope: expandedScope)
        rule.arguments = keys.arguments?.items.map { "\($0.name): \($0.pattern.text)" } ?? []
        let pending = keys.examples.map {
            PendingExample(ruleIndex: index, kinds: kinds, node: $0.node, source: source, text: $0.text, shouldMatch: $0.shouldMatch)
        }
        return ParsedRule(rule: rule, matchers: target.matchers, exec: exec, network: network, condition: condition,
                          toolArguments: toolArguments, examples: pending)
    }

    /// `id:`: a name without spaces.
    private func ruleID(_ value: Node) throws(PolicyLoadError) -> String {
        let text = try string(value, key: "id", expected: "a rule name")
        guard !text.isEmpty, text.unicodeScalars.allSatisfy({ !$0.properties.isWhitespace }) else {
            throw error(at: value, "a rule id must be non-empty and contain no spaces")
        }
        return text
    }

    /// `match:`: each of its keys into `keys`.
    private func readMatch(_ value: Node, into keys: inout RuleKeys) throws(PolicyLoadError) {
        guard case .mapping(let match) = value else {
            throw error(at: value, "expected \"match\" to be a mapping with keys \(Self.matchKeys); "
                        + "found \(describe(value)) (write {} to match everything)")
        }
        for (keyNode, value) in match {
            switch try key(keyNode) {
            case "action":
                keys.actions = try actionKinds(value)
            case "target_glob":
                let text = try string(value, key: "target_glob", expected: "a glob string")
                guard !text.isEmpty else {
                    throw error(at: value, "\"target_glob\" is empty; omit it to match every target")
                }
                keys.target = (text, value)
            case "argv":
                guard case .sequence = value else {
                    throw error(at: value, "expected \"argv\" to be a list of globs, one per argument "
                                    + "(\"**\" for any run of arguments); found \(describe(value))")
                }
                let items = try stringList(value, key: "argv", expected: "a list of globs")
                guard !items.isEmpty else { throw error(at: value, "\"argv\" is an empty list") }
                keys.argv = items
            case "tool":
                let text = try string(value, key: "tool", expected: "a glob over MCP tool names, such as mcp__github__*")
                guard !text.isEmpty else { throw error(at: value, "\"tool\" is empty; omit it to match every tool") }
                keys.tool = (text, value)
            case "arguments":
                keys.arguments = (try argumentGlobs(value), value)
            case "command":
                keys.commands = try stringList(value, key: "command", expected: "a glob or a list of globs")
            case "cidr":
                keys.cidrs = try stringList(value, key: "cidr", expected: "a network such as 10.0.0.0/8, or a list")
            case "ports", "port":
                keys.ports = try stringList(value, key: "ports", expected: "a port, a range such as 8000-9000, or a list")
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in match; expected one of \(Self.matchKeys)")
            }
        }
    }

    /// `arguments:`: a mapping from argument names to globs (a string or a list of strings).
    private func argumentGlobs(_ value: Node) throws(PolicyLoadError) -> [(name: String, pattern: RuleKeys.Item)] {
        guard case .mapping(let mapping) = value else {
            throw error(at: value, "expected \"arguments\" to be a mapping from argument names to globs, "
                            + "such as {path: \"$HOME/.ssh/**\"}; found \(describe(value))")
        }
        var items: [(name: String, pattern: RuleKeys.Item)] = []
        for (keyNode, pattern) in mapping {
            let name = try key(keyNode)
            guard !name.isEmpty else { throw error(at: keyNode, "an argument name is empty") }
            for item in try stringList(pattern, key: "arguments.\(name)", expected: "a glob or a list of globs") {
                items.append((name, item))
            }
        }
        guard !items.isEmpty else { throw error(at: value, "\"arguments\" is empty; omit it to match any arguments") }
        return items
    }

    /// `arguments:` compiled: each name's globs, variables expanded, `{a,b}` alternatives split.
    private mutating func toolArgumentMatch(_ items: [(name: String, pattern: RuleKeys.Item)]?) throws(PolicyLoadError) -> ToolArgumentMatch? {
        guard let items else { return nil }
        var arguments: [(name: String, globs: [Glob])] = []
        for item in items {
            let globs = try textGlobs(item.pattern, key: "arguments.\(item.name)")
            if let index = arguments.firstIndex(where: { $0.name == item.name }) {
                arguments[index].globs += globs
            } else {
                arguments.append((item.name, globs))
            }
        }
        return ToolArgumentMatch(arguments: arguments)
    }

    /// `action:`: one kind or a list, duplicates dropped.
    private func actionKinds(_ value: Node) throws(PolicyLoadError) -> [ActionKind] {
        var kinds: [ActionKind] = []
        for item in try stringList(value, key: "action", expected: "an action (\(Self.actionNames))") {
            guard let kind = ActionKind(name: item.text) else {
                throw error(at: item.node, "unknown action \"\(item.text)\"; expected one of \(Self.actionNames)")
            }
            if !kinds.contains(kind) { kinds.append(kind) }
        }
        guard !kinds.isEmpty else { throw error(at: value, "\"action\" is an empty list") }
        return kinds
    }

    /// `errno:`: a number from 1 to 4095 or a name.
    private func errnoNumber(_ value: Node) throws(PolicyLoadError) -> Int32 {
        let text = try string(value, key: "errno", expected: "an errno name such as EPERM, or a number")
        if let number = Int32(text), number > 0, number < 4096 { return number }
        if let number = ErrnoName.number(text) { return number }
        throw error(at: value, "unknown errno \"\(text)\"; expected a number from 1 to 4095 or one of \(ErrnoName.names)")
    }

    /// `examples:`: `match` and `no_match` lists, variables expanded.
    private mutating func examples(_ value: Node) throws(PolicyLoadError) -> [(text: String, node: Node, shouldMatch: Bool)] {
        guard case .mapping(let exampleMap) = value else {
            throw error(at: value, "expected \"examples\" to be a mapping with keys match, no_match")
        }
        var result: [(text: String, node: Node, shouldMatch: Bool)] = []
        for (exampleKey, list) in exampleMap {
            let name = try key(exampleKey)
            guard name == "match" || name == "no_match" else {
                throw error(at: exampleKey, "unknown key \"\(name)\" in examples; expected match or no_match")
            }
            for item in try stringList(list, key: "examples.\(name)", expected: "a list of examples") {
                let text = try expand(item.text, node: item.node, escapeGlob: false).text
                result.append((text, item.node, name == "match"))
            }
        }
        return result
    }

    // MARK: Compiling a rule

    /// The rule's decision, once the keys that depend on each other are known to fit.
    private func checkCombinations(_ keys: RuleKeys, rule node: Node) throws(PolicyLoadError) -> Decision {
        guard let decision = keys.decision else {
            throw error(at: node, "rule is missing required key \"decision\" (one of \(Self.decisionNames))")
        }
        if let errno = keys.errno, decision.allows {
            throw error(at: errno.node, "\"errno\" only applies to rules that deny or ask; this rule's decision is \(decision.name)")
        }
        let kinds = keys.actions ?? ActionKind.allCases
        if let first = keys.argv?.first?.node ?? keys.commands.first?.node, kinds != [.exec] {
            throw error(at: first, "\"argv\" and \"command\" only apply to exec; add action: exec to the match")
        }
        if let first = keys.cidrs.first?.node ?? keys.ports.first?.node, kinds != [.netEgress] {
            throw error(at: first, "\"cidr\" and \"ports\" only apply to net_egress; add action: net_egress to the match")
        }
        if let arguments = keys.arguments, kinds != [.mcp] {
            throw error(at: arguments.node, "\"arguments\" only applies to mcp; add action: mcp to the match")
        }
        if let tool = keys.tool {
            guard kinds == [.mcp] else {
                throw error(at: tool.node, "\"tool\" only applies to mcp; add action: mcp to the match")
            }
            if let target = keys.target {
                throw error(at: target.node, "an mcp rule names its tool with \"tool\"; give tool or target_glob, not both")
            }
        }
        return decision
    }

    /// `scope:` expanded, cleaned and resolved like `$PWD`.
    private mutating func scope(_ scope: RuleKeys.Item?, decision: Decision) throws(PolicyLoadError) -> String? {
        guard let scope else { return nil }
        let (text, node) = scope
        guard decision.allows else {
            throw error(at: node, "\"scope\" only applies to allow and log rules; this rule's decision is \(decision.name)")
        }
        let expansion = try expand(text, node: node, escapeGlob: false)
        guard expansion.text.hasPrefix("/") else {
            throw error(at: node, "scope must be an absolute path (or start with $PWD or $HOME); "
                            + "got \"\(expansion.text)\"")
        }
        // Resolved like $PWD: a write is decided on the real path, so a symlinked scope
        // must be the real directory too (agentgate v1 resolved both sides as well).
        let cleaned = PathLexical.clean(expansion.text)
        let resolved = variables.scopeResolver.resolve(cleaned)
        return resolved.hasPrefix("/") ? PathLexical.clean(resolved) : cleaned
    }

    /// `target_glob:` compiled for each kind the rule applies to (and each `{a,b}` alternative).
    private mutating func targetMatchers(
        _ target: RuleKeys.Item?, kinds: [ActionKind], actionGiven: Bool, key: String = "target_glob"
    ) throws(PolicyLoadError) -> (matchers: [(ActionKind, CompiledMatcher)], expanded: String?, alternatives: [String]) {
        guard let target else { return (kinds.map { ($0, CompiledMatcher.any) }, nil, []) }
        let (text, node) = target
        let expansion = try expand(text, node: node, escapeGlob: true)
        let alternatives = try alternatives(of: expansion, node: node, key: key)
        var matchers: [(ActionKind, CompiledMatcher)] = []
        if alternatives.count > 1 {
            for alternative in alternatives {
                for kind in kinds {
                    do throws(GlobError) {
                        if let matcher = try targetMatcher(alternative, kind: kind, actionGiven: actionGiven) {
                            matchers.append((kind, matcher))
                        }
                    } catch {
                        throw self.error(at: node, "invalid \(key) alternative \"\(alternative)\": \(error.message)")
                    }
                }
            }
        } else {
            for kind in kinds {
                do throws(GlobError) {
                    if let matcher = try targetMatcher(expansion.text, kind: kind, actionGiven: actionGiven) {
                        matchers.append((kind, matcher))
                    }
                } catch {
                    let offsets = expansion.sourceScalarOffsets
                    let offset = offsets[min(max(error.utf8Offset, 0), offsets.count - 1)]
                    throw self.error(at: node, scalarOffset: offset, "invalid \(key): \(error.message)")
                }
            }
        }
        return (matchers, expansion.text, alternatives)
    }

    /// One target pattern for one kind; nil when it can never match that kind.
    private func targetMatcher(_ pattern: String, kind: ActionKind, actionGiven: Bool) throws(GlobError) -> CompiledMatcher? {
        switch kind {
        case .fsRead, .fsWrite:
            return .glob(try Glob(pattern), .path, lines: nil)
        case .exec:
            let glob = try Glob(pattern)
            // agentgate v1 matched an exec's target_glob against its command line
            // (`npm install left-pad`), `*` spanning `/`. Files without version 2 keep that
            // meaning, on top of matching the program path. (Only version 2 files alternate.)
            let lines = braces ? nil : try Glob(pattern, caseInsensitive: false, syntax: .text)
            return .glob(glob, pattern.contains("/") ? .exec : .execOrBasename, lines: lines)
        case .netEgress:
            // A path pattern in an any-action rule can never match a network target.
            if !actionGiven, pattern.hasPrefix("/") { return nil }
            return .host(try HostPattern(pattern))
        case .mcp:
            // Tool names: `*` spans every character (`mcp__github__*`). The pattern of a rule
            // for every action is a path or a host, never a tool's name.
            guard actionGiven else { return nil }
            return .glob(try Glob(pattern, caseInsensitive: false, syntax: .text), .path, lines: nil)
        }
    }

    /// `argv:` and `command:` compiled to text globs.
    private mutating func execConstraint(argv: [RuleKeys.Item]?, commands: [RuleKeys.Item]) throws(PolicyLoadError) -> ExecConstraint? {
        guard argv != nil || !commands.isEmpty else { return nil }
        var constraint = ExecConstraint()
        if let argv {
            var elements: [ArgvElement] = []
            for item in argv {
                if item.text == "**" { elements.append(.rest); continue }
                elements.append(.one(try textGlobs(item, key: "argv")))
            }
            constraint.argv = elements
        }
        for item in commands {
            constraint.commands += try textGlobs(item, key: "command")
        }
        return constraint
    }

    /// One pattern's text globs: variables expanded, then each `{a,b}` alternative.
    private mutating func textGlobs(_ item: RuleKeys.Item, key: String) throws(PolicyLoadError) -> [Glob] {
        let expansion = try expand(item.text, node: item.node, escapeGlob: true)
        var globs: [Glob] = []
        for alternative in try alternatives(of: expansion, node: item.node, key: key) {
            globs.append(try textGlob(alternative, node: item.node, key: key))
        }
        return globs
    }

    /// `cidr:` and `ports:` parsed.
    private func networkConstraint(cidrs: [RuleKeys.Item], ports: [RuleKeys.Item]) throws(PolicyLoadError) -> NetworkConstraint? {
        guard !cidrs.isEmpty || !ports.isEmpty else { return nil }
        var constraint = NetworkConstraint()
        for item in cidrs {
            do throws(GlobError) {
                constraint.networks.append(try IPNetwork(parsing: item.text))
            } catch {
                throw self.error(at: item.node, "invalid cidr \"\(item.text)\": \(error.message)")
            }
        }
        for item in ports {
            guard let range = PortRange(parsing: item.text) else {
                throw error(at: item.node, "invalid port \"\(item.text)\"; expected a number from 0 to 65535 "
                                + "or a range such as 8000-9000")
            }
            constraint.ports.append(range)
        }
        return constraint
    }
}
