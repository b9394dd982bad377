import Foundation
import Yams

/// A message tied to a place in a policy file, read as `FILE:LINE:COLUMN: message` (or
/// `FILE: message` without a position).
public protocol PolicyFileMessage: CustomStringConvertible {
    var file: String { get }
    /// 1-based line; 0 when there is no position.
    var line: Int { get }
    var column: Int { get }
    var message: String { get }
}

extension PolicyFileMessage {
    public var description: String { line > 0 ? "\(file):\(line):\(column): \(message)" : "\(file): \(message)" }
}

/// A finding about a policy that loaded (from `agentgate policy lint`, or a lenient load). It
/// has a load error's position and message, reported instead of thrown.
public struct PolicyDiagnostic: PolicyFileMessage, Sendable, Equatable {
    private let finding: PolicyLoadError

    public var file: String { finding.file }
    public var line: Int { finding.line }
    public var column: Int { finding.column }
    public var message: String { finding.message }

    public init(file: String, line: Int, column: Int, message: String) {
        finding = PolicyLoadError(file: file, line: line, column: column, message: message)
    }

    /// A load error reported instead of thrown.
    init(_ error: PolicyLoadError) {
        finding = error
    }
}

/// Why a policy did not load, with the position of the offending node.
public struct PolicyLoadError: Error, PolicyFileMessage, Sendable, Equatable {
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
}

extension Policy {
    /// The built-in policy (`policies/default.yaml`, embedded at build time).
    public static var builtInDefaultYAML: String {
        String(decoding: PackageResources.default_yaml, as: UTF8.self)
    }

    /// The commented starter policy `agentgate init` writes (`policies/starter.yaml`).
    public static var starterYAML: String {
        String(decoding: PackageResources.starter_yaml, as: UTF8.self)
    }

    /// What an `include:` names the built-in policy by (a policy file saved from an ask builds
    /// on the built-in policy this way).
    public static let builtInIncludeName = "agentgate:default"

    /// The `source` name used for errors in the built-in policy.
    public static let builtInDefaultSource = "<built-in default.yaml>"

    /// Every policy an `include:` can name as `agentgate:NAME`, built into the binary (see
    /// `BuiltInInclude`).
    public static var builtInIncludes: [BuiltInInclude] { BuiltInInclude.all }

    /// Loads the built-in policy with the given variables.
    public static func builtInDefault(variables: PolicyVariables) throws(PolicyLoadError) -> Policy {
        try builtInDefault(variables: variables, dropIns: [], source: builtInDefaultSource)
    }

    /// The built-in policy reported as from `source` (`builtin:default.yaml`), then the drop-in
    /// files `dropIns` as with `parse(yaml:source:variables:dropIns:)`.
    public static func builtInDefault(variables: PolicyVariables, dropIns: [String], source: String) throws(PolicyLoadError) -> Policy {
        var diagnostics: [PolicyDiagnostic] = []
        return try parse(yaml: builtInDefaultYAML, source: source, variables: variables, lenient: false, diagnostics: &diagnostics,
                         dropIns: dropIns, builtIn: true)
    }

    /// Reads and parses a policy file and the files it includes. Nothing is loaded unless
    /// every file is valid.
    public static func load(path: String, variables: PolicyVariables) throws(PolicyLoadError) -> Policy {
        var diagnostics: [PolicyDiagnostic] = []
        return try load(path: path, variables: variables, lenient: false, diagnostics: &diagnostics)
    }

    /// Like `load`, for `agentgate policy lint`: unknown variables and failing inline examples
    /// become diagnostics instead of errors (the rule then matches nothing).
    public static func load(path: String, variables: PolicyVariables, lenient: Bool,
                            diagnostics: inout [PolicyDiagnostic]) throws(PolicyLoadError) -> Policy {
        let text = try readPolicyFile(path, includedFrom: nil)
        return try parse(yaml: text, source: path, variables: variables, lenient: lenient, diagnostics: &diagnostics)
    }

    /// Parses policy YAML. `source` names it in errors and anchors relative `include:` paths.
    /// Variables are expanded and every glob is compiled here, so evaluation never fails.
    ///
    /// Format (a superset of the Go `agentgate` policy.yaml; the full reference is in README):
    /// ```yaml
    /// version: 2                # optional: 1 or 2
    /// mode: enforce             # enforce | audit
    /// explain_denials: true     # a denied exec is explained on the process's stderr
    /// include: [base.yaml]      # rules of included files come after this file's own
    /// default: ask              # a decision, or one per action: {exec: allow, fs_read: allow, …}
    /// rules:                    # ordered, first match wins
    ///   - id: no-pipe-to-shell
    ///     match:
    ///       action: exec        # exec | fs_read | fs_write | net_egress (or a list); omitted = any
    ///       target_glob: "*x*"  # omitted = any target
    ///       argv: [rm, "-rf", "**"]          # exec: one glob per argument, ** = any run
    ///       command: "curl * | *sh"          # exec: globs over command lines and pipelines
    ///       cidr: [10.0.0.0/8]               # net_egress
    ///       ports: [443, 8000-9000]          # net_egress
    ///     when: {caps: [CAP_SYS_ADMIN], uid: 0, cgroup: "…", exe: "…", ancestor: "…", agent: "…"}
    ///     decision: deny        # allow | deny | ask | log
    ///     reason: "…"
    ///     errno: EPERM          # deny and ask rules
    ///     scope: "$PWD"         # allow and log rules: a path outside it turns the verdict into deny
    ///     examples: {match: ["…"], no_match: ["…"]}
    /// limits:                   # top-level file only; see RateLimit
    ///   - {id: net, action: exec, rule: RULE, match: {…}, count: 30, per: 1m, decision: deny, reason: "…"}
    /// runaway: {denials: 20, within: 10s, then: pause}
    /// ask_timeout: 2m              # top-level file only; how long an ask waits (default 120 s)
    /// dns: {unique_subdomains_per_parent: 50, window: 60s}   # top-level file only; DNSLimits
    /// ```
    /// Unknown keys, wrong types and duplicate keys are errors at every level.
    public static func parse(
        yaml: String, source: String, variables: PolicyVariables
    ) throws(PolicyLoadError) -> Policy {
        var diagnostics: [PolicyDiagnostic] = []
        return try parse(yaml: yaml, source: source, variables: variables, lenient: false, diagnostics: &diagnostics)
    }

    /// Parses policy YAML, then the drop-in files `dropIns` (absolute paths, in order: a
    /// policy.d directory's files), each read as if the top-level file ended with an include of it.
    public static func parse(
        yaml: String, source: String, variables: PolicyVariables, dropIns: [String]
    ) throws(PolicyLoadError) -> Policy {
        var diagnostics: [PolicyDiagnostic] = []
        return try parse(yaml: yaml, source: source, variables: variables, lenient: false, diagnostics: &diagnostics, dropIns: dropIns)
    }

    /// `builtIn`: `yaml` is a policy built into the binary (the text, not a file of that name).
    /// `checksBuiltInExamples`: the built-in policies' own `examples:` are checked by the tests
    /// (PolicyExampleTests), not at every load, where they cost a hook call 0.3 ms.
    static func parse(
        yaml: String, source: String, variables: PolicyVariables, lenient: Bool, diagnostics: inout [PolicyDiagnostic],
        dropIns: [String] = [], builtIn: Bool = false, checksBuiltInExamples: Bool = false
    ) throws(PolicyLoadError) -> Policy {
        var loader = PolicyParser(variables: variables, lenient: lenient)
        loader.dropIns = dropIns
        loader.checksBuiltInExamples = checksBuiltInExamples
        if builtIn { loader.builtInSources.insert(source) }
        try loader.loadFile(yaml: yaml, source: source, depth: 0, includedFrom: nil)
        let policy = try loader.build(root: source)
        try loader.checkExamples(policy)
        diagnostics += loader.diagnostics
        return policy
    }

    static func readPolicyFile(_ path: String, includedFrom: PolicyLoadError?) throws(PolicyLoadError) -> String {
        func failure(_ message: String, line: Int = 0, column: Int = 0) -> PolicyLoadError {
            if let includedFrom {
                return PolicyLoadError(file: includedFrom.file, line: includedFrom.line, column: includedFrom.column,
                                       message: "cannot include \(path): \(message)")
            }
            return PolicyLoadError(file: path, line: line, column: column, message: message)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "is not readable" : "does not exist"
            throw failure("the policy file \(reason)")
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let (line, column) = firstInvalidUTF8Position(data)
            throw PolicyLoadError(file: path, line: line, column: column, message: "the policy file is not valid UTF-8")
        }
        return text
    }

    static func compose(yaml: String, source: String) throws(PolicyLoadError) -> Node {
        let root: Node?
        do {
            // No implicit tags: every value is read as the string it is written as, so resolving
            // plain scalars' tags (seven NSRegularExpressions per mapping key, for Yams's
            // duplicate-key check) would only cost time: about half of loading the built-in policy.
            root = try Yams.compose(yaml: yaml, .basic)
        } catch {
            throw yamlError(error, source: source, yaml: yaml)
        }
        guard let root else {
            throw PolicyLoadError(file: source, line: 1, column: 1,
                                  message: "the policy is empty; expected a mapping with keys default, rules")
        }
        return root
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

    static func firstInvalidUTF8Position(_ data: Data) -> (Int, Int) {
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

/// Reads a policy file and its includes, then compiles every rule. Fails on the first problem
/// in document order, so nothing is ever half-loaded.
struct PolicyParser {
    let variables: PolicyVariables
    /// Unknown variables become diagnostics (the pattern then matches nothing) instead of errors.
    let lenient: Bool
    var diagnostics: [PolicyDiagnostic] = []

    /// The file whose nodes are being read, for error positions.
    var source = ""
    /// Rule nodes in merged order: each file's own rules, then its includes' (depth-first).
    var ruleNodes: [(source: String, node: Node, braces: Bool)] = []
    /// `limits:` entries (top-level file only), like `ruleNodes`.
    var limitNodes: [(source: String, node: Node, braces: Bool)] = []
    var runaway: RunawayRule?
    /// `ask_timeout:` (top-level file only).
    var askTimeout: LimitWindow?
    /// `dns:` (top-level file only).
    var dnsLimits: DNSLimits?
    /// `audit: {reads:}` (top-level file only).
    var readRecording: ReadRecording?
    /// `audit:` and `webhooks:` (top-level file only).
    var outputs = PolicyOutputs()
    /// policy.d files, read after the top-level file's own includes.
    var dropIns: [String] = []
    /// Whether the rule being compiled comes from a `version: 2` file, where `{a,b}` alternates.
    var braces = false
    private var files: [String] = []
    /// Canonical paths of the files being read, outermost first, to report include cycles.
    private var includeStack: [String] = []
    private var rootDefaults = [Decision?](repeating: nil, count: ActionKind.allCases.count)
    private var includedDefaults = [(Decision, PolicyLoadError)?](repeating: nil, count: ActionKind.allCases.count)
    private var mode = PolicyMode.enforce
    private var unsupervised: Set<UnsupervisedRoute> = []
    private var explainsDenials = true
    private var examples: [PendingExample] = []
    /// Whether `checkExamples` checks the examples of built-in policies too (tests).
    var checksBuiltInExamples = false
    /// The sources whose text was a built-in policy's (never a file's, whatever its name).
    var builtInSources: Set<String> = []

    struct PendingExample {
        var ruleIndex: Int
        var kinds: [ActionKind]
        var node: Node
        var source: String
        var text: String
        var shouldMatch: Bool
    }

    static let maximumIncludeDepth = 16
    private static let topLevelKeys = "version, mode, include, default, rules, allow_unsupervised, explain_denials, description, limits, runaway, ask_timeout, dns, audit, webhooks"
    static let ruleKeys = "id, match, when, decision, reason, errno, scope, examples"
    static let matchKeys = "action, target_glob, argv, command, cidr, ports, tool, arguments"
    static let actionNames = ActionKind.allCases.map(\.name).joined(separator: ", ")
    static let decisionNames = Decision.allCases.map(\.name).joined(separator: ", ")

    init(variables: PolicyVariables, lenient: Bool) {
        self.variables = variables
        self.lenient = lenient
    }

    // MARK: Files and includes

    mutating func loadFile(yaml: String, source: String, depth: Int, includedFrom: PolicyLoadError?) throws(PolicyLoadError) {
        let canonical = Self.canonicalPath(source)
        if let cycleStart = includeStack.firstIndex(of: canonical), let includedFrom {
            let cycle = (includeStack[cycleStart...] + [canonical]).joined(separator: " -> ")
            throw PolicyLoadError(file: includedFrom.file, line: includedFrom.line, column: includedFrom.column,
                                  message: "include cycle: \(cycle)")
        }
        if depth > Self.maximumIncludeDepth, let includedFrom {
            throw PolicyLoadError(file: includedFrom.file, line: includedFrom.line, column: includedFrom.column,
                                  message: "includes nest more than \(Self.maximumIncludeDepth) levels deep")
        }
        let root = try Policy.compose(yaml: yaml, source: source)
        self.source = source
        // The built-in policy is in the binary, not a file anyone could change.
        if depth == 0 || BuiltInInclude.withSource(source) == nil { files.append(source) }
        includeStack.append(canonical)
        defer { includeStack.removeLast() }

        guard case .mapping(let mapping) = root else {
            throw error(at: root, "expected a mapping with keys \(Self.topLevelKeys); found \(describe(root))")
        }
        var includes: [(path: String, node: Node)] = []
        var ownRules: [Node] = []
        var ownLimits: [Node] = []
        var version = 1
        for (keyNode, value) in mapping {
            switch try key(keyNode) {
            case "version":
                let text = try string(value, key: "version", expected: "1 or 2")
                guard text == "1" || text == "2" else {
                    throw error(at: value, "unsupported policy version \"\(text)\"; expected 1 or 2")
                }
                version = Int(text) ?? 1
            case "description":
                _ = try string(value, key: "description", expected: "a string")
            case "mode":
                let text = try string(value, key: "mode", expected: "enforce or audit")
                guard let parsed = PolicyMode(name: text) else {
                    throw error(at: value, "unknown mode \"\(text)\"; expected enforce or audit")
                }
                guard depth == 0 else {
                    throw error(at: keyNode, "\"mode\" may only be set in the top-level policy, not in an included file")
                }
                mode = parsed
            case "explain_denials":
                let text = try string(value, key: "explain_denials", expected: "true or false")
                // YAML 1.2's booleans; yes/no/on/off are too easily meant as something else.
                guard ["true", "True", "TRUE", "false", "False", "FALSE"].contains(text) else {
                    throw error(at: value, "expected \"explain_denials\" to be true or false; found \"\(text)\"")
                }
                guard depth == 0 else {
                    throw error(at: keyNode, "\"explain_denials\" may only be set in the top-level policy, not in an included file")
                }
                explainsDenials = text.lowercased() == "true"
            case "include":
                for item in try stringList(value, key: "include", expected: "a file path or a list of them") {
                    let path = item.text
                    guard !path.isEmpty else { throw error(at: item.node, "empty include path") }
                    if path.hasPrefix(BuiltInInclude.prefix) {
                        guard let builtIn = BuiltInInclude.named(path) else {
                            throw error(at: item.node, "unknown built-in policy \"\(path)\"; expected one of "
                                            + BuiltInInclude.all.map(\.name).joined(separator: ", "))
                        }
                        includes.append((builtIn.source, item.node))
                    } else {
                        includes.append((Self.resolve(path, relativeTo: source), item.node))
                    }
                }
            case "default":
                try readDefaults(value, depth: depth)
            case "rules":
                if isNull(value) { continue }
                guard case .sequence(let sequence) = value else {
                    throw error(at: value, "expected \"rules\" to be a list of rules; found \(describe(value))")
                }
                ownRules += Array(sequence)
            case "limits":
                ownLimits += try readLimits(value, keyNode: keyNode, depth: depth)
            case "runaway":
                try readRunaway(value, keyNode: keyNode, depth: depth)
            case "dns":
                dnsLimits = try readDNSLimits(value, keyNode: keyNode, depth: depth)
            case "audit":
                try readAudit(value, keyNode: keyNode, depth: depth)
            case "webhooks":
                outputs.webhooks = try readWebhooks(value, keyNode: keyNode, depth: depth)
            case "ask_timeout":
                guard depth == 0 else {
                    throw error(at: keyNode, "\"ask_timeout\" may only be set in the top-level policy, not in an included file")
                }
                askTimeout = try limitWindow(value, key: "ask_timeout")
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
            case let other:
                throw error(at: keyNode, "unknown key \"\(other)\"; expected one of \(Self.topLevelKeys)")
            }
        }
        for node in ownRules { ruleNodes.append((source, node, version >= 2)) }
        for node in ownLimits { limitNodes.append((source, node, version >= 2)) }
        for include in includes {
            let at = error(at: include.node, "")
            guard !source.hasPrefix("<") || include.path.hasPrefix("/") else {
                throw error(at: include.node, "the built-in policy can only include absolute paths")
            }
            let text: String
            if let builtIn = BuiltInInclude.withSource(include.path) {
                text = builtIn.yaml
                builtInSources.insert(include.path)
            } else {
                text = try Policy.readPolicyFile(include.path, includedFrom: at)
            }
            let outer = self.source
            try loadFile(yaml: text, source: include.path, depth: depth + 1, includedFrom: at)
            self.source = outer
        }
        if depth == 0 {
            for dropIn in dropIns {
                let outer = self.source
                let text = try Policy.readPolicyFile(dropIn, includedFrom: nil)
                try loadFile(yaml: text, source: dropIn, depth: 1, includedFrom: nil)
                self.source = outer
            }
        }
    }

    /// `default: DECISION` or `default: {exec: …, fs_read: …, fs_write: …, net_egress: …}`. The
    /// top-level file's value wins; included files must agree where it sets nothing.
    private mutating func readDefaults(_ value: Node, depth: Int) throws(PolicyLoadError) {
        var decided: [(ActionKind, Decision, Node)] = []
        if case .mapping(let mapping) = value {
            for (keyNode, decisionNode) in mapping {
                let name = try key(keyNode)
                guard let kind = ActionKind(name: name) else {
                    throw error(at: keyNode, "unknown action \"\(name)\" in default; expected \(Self.actionNames)")
                }
                decided.append((kind, try decision(decisionNode, key: "default.\(name)"), decisionNode))
            }
            let missing = ActionKind.allCases.filter { kind in
                kind.defaultWhenUnnamed == nil && !decided.contains { $0.0 == kind }
            }
            guard missing.isEmpty else {
                throw error(at: value, "a per-action default must name every action; missing "
                                + missing.map(\.name).joined(separator: ", "))
            }
        } else {
            let single = try decision(value, key: "default")
            decided = ActionKind.allCases.map { ($0, single, value) }
        }
        for (kind, decision, node) in decided {
            let k = Int(kind.rawValue)
            if depth == 0 {
                rootDefaults[k] = decision
            } else if rootDefaults[k] == nil {
                if let (earlier, position) = includedDefaults[k], earlier != decision {
                    throw error(at: node, "included files disagree on the default for \(kind.name): "
                                    + "\(earlier.name) at \(position.file):\(position.line):\(position.column), "
                                    + "\(decision.name) here; set it in the top-level policy")
                }
                if includedDefaults[k] == nil { includedDefaults[k] = (decision, error(at: node, "")) }
            }
        }
    }

    static func canonicalPath(_ path: String) -> String {
        guard !path.hasPrefix("<") else { return path }
        return URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func resolve(_ path: String, relativeTo source: String) -> String {
        if path.hasPrefix("/") { return path }
        let base = source.hasPrefix("<") ? FileManager.default.currentDirectoryPath
            : URL(fileURLWithPath: source).deletingLastPathComponent().path
        return URL(fileURLWithPath: path, relativeTo: URL(fileURLWithPath: base, isDirectory: true)).standardizedFileURL.path
    }

    // MARK: Compiling

    mutating func build(root: String) throws(PolicyLoadError) -> Policy {
        var rules: [PolicyRule] = []
        var compiledByKind = [[RuleCode]](repeating: [], count: ActionKind.allCases.count)
        var arena = MatchArena()
        var execTables = ExecTables()
        var networks: [NetworkCode] = []
        var ports: [PortRange] = []
        var conditions: [RuleCondition] = []
        var toolArguments: [Int: ToolArgumentMatch] = [:]
        var ids: [String: PolicyRule] = [:]
        for (ruleSource, node, fileBraces) in ruleNodes {
            source = ruleSource
            braces = fileBraces
            let parsed = try rule(node, index: rules.count)
            let rule = parsed.rule
            if let id = rule.id {
                if let earlier = ids[id] {
                    throw error(at: node, "duplicate rule id \"\(id)\"; first used at \(earlier.location)")
                }
                ids[id] = rule
            }
            var scope: (start: Int32, count: Int32)?
            if rule.decision.allows, let expandedScope = rule.expandedScope {
                let bytes = Array(expandedScope.utf8)
                scope = (arena.appendBytes(bytes), Int32(bytes.count))
            }
            var execIndex: Int32 = -1
            if let exec = parsed.exec {
                execIndex = execTables.add(exec, arena: &arena)
            }
            let networkRange = (Int32(networks.count), Int32(parsed.network?.networks.count ?? 0))
            let portRange = (Int32(ports.count), Int32(parsed.network?.ports.count ?? 0))
            networks += (parsed.network?.networks ?? []).map(NetworkCode.init)
            ports += parsed.network?.ports ?? []
            var conditionIndex: Int32 = -1
            if let condition = parsed.condition {
                conditionIndex = Int32(conditions.count)
                conditions.append(condition)
            }
            for (kind, matcher) in parsed.matchers {
                var code = matcher.ruleCode(ruleIndex: rules.count, decision: rule.decision, arena: &arena)
                if let scope { (code.scopeStart, code.scopeCount) = scope }
                code.errno = rule.errno
                if kind == .exec {
                    code.execIndex = execIndex
                    if let lines = matcher.lineGlob { code.lineGlob = execTables.addLineGlob(lines, arena: &arena) }
                }
                if kind == .netEgress {
                    (code.networkStart, code.networkCount) = networkRange
                    (code.portStart, code.portCount) = portRange
                }
                code.conditionIndex = conditionIndex
                compiledByKind[Int(kind.rawValue)].append(code)
            }
            if let match = parsed.toolArguments { toolArguments[rules.count] = match }
            for example in parsed.examples { examples.append(example) }
            rules.append(rule)
        }
        let (limits, limitMatcher) = try buildLimits(rules: rules)
        // Go agentgate treats a missing default as ask: a person decides (denied after ask_timeout).
        let defaults = ActionKind.allCases.map { kind in
            rootDefaults[Int(kind.rawValue)] ?? includedDefaults[Int(kind.rawValue)]?.0 ?? kind.defaultWhenUnnamed ?? .ask
        }
        var policy = Policy(rules: rules, source: root, files: files, mode: mode, defaults: defaults,
                      compiledByKind: compiledByKind, arena: arena, allowedUnsupervised: unsupervised,
                      exec: execTables, networks: networks, ports: ports, conditions: conditions,
                      explainsDenials: explainsDenials, limits: limits, limitMatcher: limitMatcher, runaway: runaway,
                      askTimeout: askTimeout ?? Policy.defaultAskTimeout, dnsLimits: dnsLimits ?? DNSLimits())
        policy.toolArguments = toolArguments
        policy.readRecording = readRecording ?? .aggregate
        policy.outputs = outputs
        return policy
    }

    /// Inline `examples:` must (or must not) match their rule.
    mutating func checkExamples(_ policy: Policy) throws(PolicyLoadError) {
        for example in examples where checksBuiltInExamples || !builtInSources.contains(example.source) {
            source = example.source
            let rule = policy.rules[example.ruleIndex]
            let matched = example.kinds.contains { kind in
                Self.example(example.text, matches: rule.index, kind: kind, in: policy)
            }
            guard matched != example.shouldMatch else { continue }
            let expectation = example.shouldMatch ? "should match rule \(rule.displayID) but does not"
                : "should not match rule \(rule.displayID) but does"
            let failure = error(at: example.node, "example \"\(example.text)\" \(expectation)")
            if lenient {
                diagnostics.append(PolicyDiagnostic(failure))
            } else {
                throw failure
            }
        }
    }

    /// An example is a command line for exec (typed as at a shell prompt) and a target otherwise.
    static func example(_ text: String, matches index: Int, kind: ActionKind, in policy: Policy) -> Bool {
        if kind == .exec {
            let details = ExecDetails(commandLine: text)
            guard let program = details.argv.first else { return false }
            return policy.ruleMatches(index, .exec, target: ExecDetails.assumedProgram(program), exec: details)
        }
        return policy.ruleMatches(index, kind, target: text, exec: nil)
    }

    /// The patterns `{a,b}` alternation makes of one (version 2 files only).
    func alternatives(of expansion: Expansion, node: Node, key: String) throws(PolicyLoadError) -> [String] {
        guard braces else { return [expansion.text] }
        do throws(BraceExpansion.Failure) {
            return try BraceExpansion.expand(expansion.text)
        } catch {
            let offsets = expansion.sourceScalarOffsets
            let offset = offsets[min(max(error.utf8Offset, 0), offsets.count - 1)]
            throw self.error(at: node, scalarOffset: offset, "invalid \(key): \(error.message)")
        }
    }

    func textGlob(_ text: String, node: Node, key: String) throws(PolicyLoadError) -> Glob {
        do throws(GlobError) {
            return try Glob(text, caseInsensitive: false, syntax: .text)
        } catch {
            throw self.error(at: node, "invalid \(key) glob: \(error.message)")
        }
    }

    func pathGlob(_ text: String, node: Node, key: String) throws(PolicyLoadError) -> Glob {
        do throws(GlobError) {
            return try Glob(text)
        } catch {
            throw self.error(at: node, "invalid \(key) glob: \(error.message)")
        }
    }

    // MARK: Scalars

    func key(_ node: Node) throws(PolicyLoadError) -> String {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            throw error(at: node, "expected a key name; found \(describe(node))")
        }
        return scalar.string
    }

    func string(_ node: Node, key: String, expected: String) throws(PolicyLoadError) -> String {
        guard case .scalar(let scalar) = node, !isNull(node) else {
            throw error(at: node, "expected \"\(key)\" to be \(expected); found \(describe(node))")
        }
        return scalar.string
    }

    /// A scalar or a list of scalars.
    func stringList(_ node: Node, key: String, expected: String) throws(PolicyLoadError) -> [(text: String, node: Node)] {
        if case .sequence(let sequence) = node {
            var result: [(text: String, node: Node)] = []
            for item in sequence {
                result.append((try string(item, key: key, expected: expected), item))
            }
            return result
        }
        return [(try string(node, key: key, expected: expected), node)]
    }

    func decision(_ node: Node, key: String) throws(PolicyLoadError) -> Decision {
        let name = try string(node, key: key, expected: "a decision (\(Self.decisionNames))")
        guard let decision = Decision(name: name) else {
            throw error(at: node, "unknown decision \"\(name)\"; expected one of \(Self.decisionNames)")
        }
        return decision
    }

    /// Expands variables; in a lenient load an unknown variable is reported and the text made
    /// unmatchable (a NUL byte never occurs in a target) instead of failing the load.
    mutating func expand(_ text: String, node: Node, escapeGlob: Bool) throws(PolicyLoadError) -> Expansion {
        do {
            return try variables.expand(text, escapeGlob: escapeGlob)
        } catch {
            let failure = self.error(at: node, scalarOffset: error.scalarOffset, error.message)
            guard lenient, error.unknownVariable else { throw failure }
            diagnostics.append(PolicyDiagnostic(failure))
            let placeholder = "/\u{0}unknown-variable"
            return Expansion(text: placeholder, sourceScalarOffsets: [Int](repeating: 0, count: placeholder.utf8.count + 1))
        }
    }

    func isNull(_ node: Node) -> Bool {
        guard case .scalar = node else { return false }
        return node.null != nil
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): isNull(node) ? "null" : "the scalar \"\(scalar.string)\""
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    // MARK: Errors

    func error(at node: Node, _ message: String) -> PolicyLoadError {
        let mark = node.mark
        return PolicyLoadError(file: source, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message)
    }

    /// An error inside a scalar: its column plus `scalarOffset` (exact for plain and quoted
    /// single-line scalars without escapes; best effort otherwise).
    func error(at node: Node, scalarOffset: Int, _ message: String) -> PolicyLoadError {
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
enum CompiledMatcher {
    case any
    /// `lines`: v1 exec rules also match the exec's command lines with this text glob.
    case glob(Glob, RuleCode.Matcher, lines: Glob?)
    case host(HostPattern)

    var lineGlob: Glob? {
        if case .glob(_, _, let lines) = self { return lines }
        return nil
    }

    func ruleCode(ruleIndex: Int, decision: Decision, arena: inout MatchArena) -> RuleCode {
        switch self {
        case .any:
            return RuleCode(ruleIndex: ruleIndex, decision: decision, matcher: .any)
        case .glob(let glob, let matcher, _):
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
