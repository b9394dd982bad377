import Foundation
import Yams

/// Why a policy did not load, with the position of the offending node.
public struct PolicyLoadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The policy file (or the `source` name given to `Policy.parse`).
    public let file: String
    /// 1-based line; 0 when the error has no position (e.g. the file cannot be read).
    public let line: Int
    /// 1-based column (in Unicode scalars, as libyaml counts); 0 when there is no position.
    public let column: Int
    /// What is wrong and what was expected.
    public let message: String

    public init(file: String, line: Int, column: Int, message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    /// `FILE:LINE:COLUMN: message`, or `FILE: message` when there is no position.
    public var description: String {
        line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)"
    }
}

extension Policy {
    /// The built-in policy (`policies/default.yaml`, embedded at build time).
    public static var builtInDefaultYAML: String {
        String(decoding: PackageResources.default_yaml, as: UTF8.self)
    }

    /// The `source` name used for errors in the built-in policy.
    public static let builtInDefaultSource = "<built-in default.yaml>"

    /// Loads the built-in policy with the given variables.
    public static func builtInDefault(variables: PolicyVariables) throws(PolicyLoadError) -> Policy {
        try parse(yaml: builtInDefaultYAML, source: builtInDefaultSource, variables: variables)
    }

    /// Reads and parses a policy file. Nothing is loaded unless the whole file is valid.
    public static func load(path: String, variables: PolicyVariables) throws(PolicyLoadError) -> Policy {
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "is not readable" : "does not exist"
            throw PolicyLoadError(file: path, line: 0, column: 0, message: "the policy file \(reason)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let (line, column) = firstInvalidUTF8Position(data)
            throw PolicyLoadError(file: path, line: line, column: column, message: "the policy file is not valid UTF-8")
        }
        return try parse(yaml: text, source: path, variables: variables)
    }

    /// Parses policy YAML. `source` names it in errors. Variables (`$PWD`, `$HOME`) are expanded
    /// and every glob is compiled here, so evaluation never fails.
    ///
    /// Format (compatible with the Go `agentgate` policy.yaml):
    /// ```yaml
    /// default: ask              # allow | deny | ask; omitted = ask (as the Go tool does)
    /// rules:                    # ordered, first match wins; omitted or null = no rules
    ///   - match:                # omitted = every action and target; null is an error
    ///       action: exec        # exec | fs_read | fs_write | net_egress; omitted = any
    ///       target_glob: "*x*"  # omitted = any target
    ///     decision: allow       # required
    ///     scope: "$PWD"         # allow rules only; a path outside it turns allow into deny
    /// ```
    /// Unknown keys, wrong types and duplicate keys are errors at every level.
    public static func parse(
        yaml: String, source: String, variables: PolicyVariables
    ) throws(PolicyLoadError) -> Policy {
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch {
            throw yamlError(error, source: source, yaml: yaml)
        }
        guard let root else {
            throw PolicyLoadError(file: source, line: 1, column: 1,
                                  message: "the policy is empty; expected a mapping with keys default, rules")
        }
        return try PolicyParser(source: source, variables: variables).policy(from: root)
    }

    private static func yamlError(_ error: any Error, source: String, yaml: String) -> PolicyLoadError {
        guard let error = error as? YamlError else {
            return PolicyLoadError(file: source, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
        switch error {
        case .scanner(let context, let problem, let mark, _),
             .parser(let context, let problem, let mark, _),
             .composer(let context, let problem, let mark, _):
            var message = "invalid YAML: \(problem)"
            if let context {
                message += " (\(context.text) started at \(context.mark.line):\(context.mark.column))"
            }
            return PolicyLoadError(file: source, line: mark.line, column: mark.column, message: message)
        case .reader(let problem, let offset, _, _):
            var line = 1, column = 1
            if let offset {
                for character in yaml.prefix(offset) {
                    if character == "\n" { line += 1; column = 1 } else { column += character.unicodeScalars.count }
                }
            }
            return PolicyLoadError(file: source, line: line, column: column, message: "invalid YAML: \(problem)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            let noun = duplicates.count == 1 ? "key" : "keys"
            return PolicyLoadError(
                file: source, line: context.mark.line, column: context.mark.column,
                message: "duplicate \(noun) \(keys) in one mapping (first occurrence here); "
                    + "each key may appear only once")
        default:
            return PolicyLoadError(file: source, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
    }

    private static func firstInvalidUTF8Position(_ data: Data) -> (Int, Int) {
        var line = 1, column = 1
        var iterator = data.makeIterator()
        var decoder = UTF8()
        while true {
            switch decoder.decode(&iterator) {
            case .scalarValue(let scalar):
                if scalar == "\n" { line += 1; column = 1 } else { column += 1 }
            case .emptyInput, .error:
                return (line, column)
            }
        }
    }
}

/// Turns a composed YAML tree into a `Policy`, failing on the first problem in document order.
private struct PolicyParser {
    let source: String
    let variables: PolicyVariables

    private static let topLevelKeys = "default, rules, allow_unsupervised"
    private static let ruleKeys = "match, decision, scope"
    private static let matchKeys = "action, target_glob"
    private static let actionNames = ActionKind.allCases.map(\.name).joined(separator: ", ")
    private static let decisionNames = Decision.allCases.map(\.name).joined(separator: ", ")

    func policy(from root: Node) throws(PolicyLoadError) -> Policy {
        guard case .mapping(let mapping) = root else {
            throw error(at: root, "expected a mapping with keys \(Self.topLevelKeys); found \(describe(root))")
        }
        // Go agentgate treats a missing default as ask; ask is enforced as deny, so this is safe.
        var defaultDecision = Decision.ask
        var rules: [PolicyRule] = []
        var compiledByKind = [[RuleCode]](repeating: [], count: ActionKind.allCases.count)
        var arena = MatchArena()
        var unsupervised: Set<UnsupervisedRoute> = []
        for (keyNode, value) in mapping {
            switch try key(keyNode) {
            case "allow_unsupervised":
                if isNull(value) { continue }
                guard case .sequence(let sequence) = value else {
                    throw error(at: value, "expected \"allow_unsupervised\" to be a list; found \(describe(value))")
                }
                let names = UnsupervisedRoute.allCases.map(\.rawValue).joined(separator: ", ")
                for item in sequence {
                    guard case .scalar(let scalar) = item, let route = UnsupervisedRoute(rawValue: scalar.string) else {
                        throw error(at: item, "unknown unsupervised route \(describe(item)); expected one of \(names)")
                    }
                    unsupervised.insert(route)
                }
            case "default":
                defaultDecision = try decision(value, key: "default")
            case "rules":
                if isNull(value) { continue }
                guard case .sequence(let sequence) = value else {
                    throw error(at: value, "expected \"rules\" to be a list of rules; found \(describe(value))")
                }
                for ruleNode in sequence {
                    let (rule, matchers) = try self.rule(ruleNode)
                    var scope: (start: Int32, count: Int32)?
                    if rule.decision == .allow, let expandedScope = rule.expandedScope {
                        let bytes = Array(expandedScope.utf8)
                        scope = (arena.appendBytes(bytes), Int32(bytes.count))
                    }
                    for (kind, matcher) in matchers {
                        var code = matcher.ruleCode(ruleIndex: rules.count, decision: rule.decision, arena: &arena)
                        if let scope { (code.scopeStart, code.scopeCount) = scope }
                        compiledByKind[Int(kind.rawValue)].append(code)
                    }
                    rules.append(rule)
                }
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\"; expected one of \(Self.topLevelKeys)")
            }
        }
        return Policy(defaultDecision: defaultDecision, rules: rules, source: source,
                      compiledByKind: compiledByKind, arena: arena, allowedUnsupervised: unsupervised)
    }

    private func rule(_ node: Node) throws(PolicyLoadError) -> (PolicyRule, [(ActionKind, CompiledMatcher)]) {
        guard case .mapping(let mapping) = node else {
            throw error(at: node, "expected a rule (a mapping with keys \(Self.ruleKeys)); found \(describe(node))")
        }
        var action: ActionKind?
        var globNode: Node?
        var globText: String?
        var decision: Decision?
        var scopeNode: Node?
        var scopeText: String?
        for (keyNode, value) in mapping {
            switch try key(keyNode) {
            case "match":
                guard case .mapping(let match) = value else {
                    throw error(at: value, "expected \"match\" to be a mapping with keys \(Self.matchKeys); "
                                + "found \(describe(value)) (write {} to match everything)")
                }
                for (matchKeyNode, matchValue) in match {
                    switch try key(matchKeyNode) {
                    case "action":
                        let name = try string(matchValue, key: "action", expected: "an action (\(Self.actionNames))")
                        guard let kind = ActionKind(name: name) else {
                            throw error(at: matchValue,
                                        "unknown action \"\(name)\"; expected one of \(Self.actionNames)")
                        }
                        action = kind
                    case "target_glob":
                        let text = try string(matchValue, key: "target_glob", expected: "a glob string")
                        guard !text.isEmpty else {
                            throw error(at: matchValue, "\"target_glob\" is empty; omit it to match every target")
                        }
                        globNode = matchValue
                        globText = text
                    case let other:
                        throw error(at: matchKeyNode,
                                    "unknown key \"\(other)\" in match; expected one of \(Self.matchKeys)")
                    }
                }
            case "decision":
                decision = try self.decision(value, key: "decision")
            case "scope":
                scopeText = try string(value, key: "scope", expected: "an absolute directory path")
                scopeNode = value
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\" in rule; expected one of \(Self.ruleKeys)")
            }
        }
        guard let decision else {
            throw error(at: node, "rule is missing required key \"decision\" (one of \(Self.decisionNames))")
        }

        var expandedScope: String?
        if let scopeNode, let scopeText {
            guard decision == .allow else {
                throw error(at: scopeNode,
                            "\"scope\" only applies to allow rules; this rule's decision is \(decision.name)")
            }
            let expansion = try expand(scopeText, node: scopeNode, escapeGlob: false)
            guard expansion.text.hasPrefix("/") else {
                throw error(at: scopeNode, "scope must be an absolute path (or start with $PWD or $HOME); "
                                + "got \"\(expansion.text)\"")
            }
            expandedScope = PathLexical.clean(expansion.text)
        }

        var matchers: [(ActionKind, CompiledMatcher)] = []
        var expandedGlob: String?
        let kinds = action.map { [$0] } ?? ActionKind.allCases
        if let globNode, let globText {
            let expansion = try expand(globText, node: globNode, escapeGlob: true)
            expandedGlob = expansion.text
            for kind in kinds {
                do throws(GlobError) {
                    switch kind {
                    case .fsRead, .fsWrite:
                        matchers.append((kind, .glob(try Glob(expansion.text), .path)))
                    case .exec:
                        let glob = try Glob(expansion.text)
                        matchers.append((kind, .glob(glob, expansion.text.contains("/") ? .exec : .execOrBasename)))
                    case .netEgress:
                        // A path pattern in an any-action rule can never match a network target.
                        if action == nil, expansion.text.hasPrefix("/") { continue }
                        matchers.append((kind, .host(try HostPattern(expansion.text))))
                    }
                } catch {
                    let offsets = expansion.sourceScalarOffsets
                    let offset = offsets[min(max(error.utf8Offset, 0), offsets.count - 1)]
                    throw self.error(at: globNode, scalarOffset: offset, "invalid target_glob: \(error.message)")
                }
            }
        } else {
            matchers = kinds.map { ($0, CompiledMatcher.any) }
        }

        let mark = node.mark
        let rule = PolicyRule(
            action: action, targetGlob: globText, decision: decision, scope: scopeText,
            line: mark?.line ?? 0, column: mark?.column ?? 0,
            expandedTargetGlob: expandedGlob, expandedScope: expandedScope)
        return (rule, matchers)
    }

    // MARK: Scalars

    private func key(_ node: Node) throws(PolicyLoadError) -> String {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            throw error(at: node, "expected a key name; found \(describe(node))")
        }
        return scalar.string
    }

    private func string(_ node: Node, key: String, expected: String) throws(PolicyLoadError) -> String {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            throw error(at: node, "expected \"\(key)\" to be \(expected); found \(describe(node))")
        }
        return scalar.string
    }

    private func decision(_ node: Node, key: String) throws(PolicyLoadError) -> Decision {
        let name = try string(node, key: key, expected: "a decision (\(Self.decisionNames))")
        guard let decision = Decision(name: name) else {
            throw error(at: node, "unknown decision \"\(name)\"; expected one of \(Self.decisionNames)")
        }
        return decision
    }

    private func expand(_ text: String, node: Node, escapeGlob: Bool) throws(PolicyLoadError) -> Expansion {
        do {
            return try variables.expand(text, escapeGlob: escapeGlob)
        } catch {
            throw self.error(at: node, scalarOffset: error.scalarOffset, error.message)
        }
    }

    private func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.null != nil
    }

    private func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): isNull(node) ? "null" : "the scalar \"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    // MARK: Errors

    private func error(at node: Node, _ message: String) -> PolicyLoadError {
        let mark = node.mark
        return PolicyLoadError(file: source, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }

    /// An error inside a scalar: its column plus `scalarOffset` (exact for plain and quoted
    /// single-line scalars without escapes; best effort otherwise).
    private func error(at node: Node, scalarOffset: Int, _ message: String) -> PolicyLoadError {
        var column = node.mark?.column ?? 1
        if case .scalar(let scalar) = node {
            switch scalar.style {
            case .singleQuoted, .doubleQuoted: column += 1
            case .literal, .folded, .plain, .any: break
            }
        }
        return PolicyLoadError(file: source, line: node.mark?.line ?? 1, column: column + scalarOffset,
                               message: message)
    }
}

/// A rule's target matcher for one kind, before it is moved into the policy's arena.
private enum CompiledMatcher {
    case any
    case glob(Glob, RuleCode.Matcher)
    case host(HostPattern)

    func ruleCode(ruleIndex: Int, decision: Decision, arena: inout MatchArena) -> RuleCode {
        switch self {
        case .any:
            return RuleCode(ruleIndex: ruleIndex, decision: decision, matcher: .any)
        case .glob(let glob, let matcher):
            var code = RuleCode(ruleIndex: ruleIndex, decision: decision, matcher: matcher)
            code.glob = glob.code.relocated(by: arena.append(glob.arena))
            return code
        case .host(let pattern):
            var code = RuleCode(ruleIndex: ruleIndex, decision: decision, matcher: .host)
            code.host = pattern.code.relocated(by: arena.append(pattern.arena))
            return code
        }
    }
}
