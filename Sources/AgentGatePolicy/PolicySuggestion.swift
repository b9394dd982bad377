import Foundation

/// One action a learning session took, as `agentgate policy suggest` reads it from the audit.
public struct LearnedAction: Sendable, Equatable {
    public var kind: ActionKind
    /// The resolved path, the program's path, or the network target as recorded
    /// (`name:port (ip)` when the connect was attributed to a resolved name).
    public var target: String
    /// An exec's arguments, argv[0] first.
    public var argv: [String]?
    public var pid: Int32
    /// The acting process's executable.
    public var executable: String
    /// An exec's program by the other path it was run as (`/bin/sh` for `/usr/bin/dash`): the
    /// supervisor decides both names, and the stricter decision wins.
    public var aliases: [String]

    public init(kind: ActionKind, target: String, argv: [String]? = nil, pid: Int32 = 0, executable: String = "",
                aliases: [String] = []) {
        self.aliases = aliases
        self.kind = kind
        self.target = target
        self.argv = argv
        self.pid = pid
        self.executable = executable
    }
}

/// The smallest set of allow rules that would have let a recorded session run under a base
/// policy, with paths written with `$PWD`, `$HOME` and `$TMPDIR`, sibling files collapsed into
/// `DIR/**` where that is safe, hosts named rather than addresses, and nothing the built-in
/// policy denies by name (credentials, shell start-up files, metadata endpoints) ever allowed:
/// those are held back and listed.
///
/// Pure: the caller reads the audit and the files; `render` edits the base policy's text with
/// `PolicyTextEdit`, so the person's file keeps its comments and order.
public struct PolicySuggestion: Sendable {
    /// One learned allow rule.
    public struct Rule: Sendable, Equatable {
        public var kind: ActionKind
        /// The target glob as written in the policy file (variables in, literal `$` doubled).
        public var glob: String
        /// The rule item: a `# learned: …` comment line, then the rule (as `RuleProposal.yaml`).
        public var yaml: [String]
        /// How many recorded actions it covers.
        public var count: Int
        /// The base rule the new one must come before (the earliest rule that decided one of
        /// its actions); nil: the end of the rules list.
        public var beforeRuleIndex: Int?
    }

    /// An action no learned rule allows, and why.
    public struct HeldBack: Sendable, Equatable {
        public var kind: ActionKind
        public var target: String
        public var reason: String

        public init(kind: ActionKind, target: String, reason: String) {
            self.kind = kind
            self.target = target
            self.reason = reason
        }
    }

    public var rules: [Rule]
    public var heldBack: [HeldBack]
    /// The deny rule for credential files by name that goes before the first learned read
    /// rule covering a directory (`DIR/**` would otherwise cover `DIR/.env`); nil when none does.
    public var credentialNameRule: [String]?

    /// Directories with at least this many distinct needed paths beneath them are collapsed
    /// into `DIR/**` (the temporary directory: at one, its names are made up per run).
    public static let defaultThreshold = 3

    /// Credential files by name, wherever they are: never allowed by a learned rule, and denied
    /// in front of a learned read rule that covers a whole directory.
    public static let credentialNames = [".env", ".env.*", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*", "id_dsa*",
                                         "id_ecdsa*", "id_ed25519*", ".netrc", ".git-credentials", ".pgpass"]
    static let credentialNameRuleID = "learned-held-back-credentials"

    /// The deny rule for `credentialNames`: one rule with `{a,b}` alternatives in a version 2
    /// file, one rule per name otherwise (braces are literal before version 2).
    static func credentialNameRules(version2: Bool) -> [String] {
        let globs = version2 ? ["/**/{" + credentialNames.joined(separator: ",") + "}"] : credentialNames.map { "/**/" + $0 }
        return globs.enumerated().flatMap { index, glob in [
            "- id: \(credentialNameRuleID)\(index == 0 ? "" : "-\(index + 1)")",
            "  match: {action: fs_read, target_glob: \"\(glob)\"}",
            "  decision: deny",
            "  reason: credential files are never allowed by a learned rule",
        ] }
    }

    /// The suggestion for `actions` against `base`. `builtIn` is the built-in policy loaded with
    /// the session's variables: what it denies by name is held back. `variables` are the
    /// session's ($PWD, $HOME, $TMPDIR); `label` names the session in the rules' reasons.
    public static func suggest(actions: [LearnedAction], base: Policy, builtIn: Policy, variables: PolicyVariables,
                               label: String, threshold: Int = defaultThreshold) -> PolicySuggestion {
        let credentialNames = try? Policy.parse(yaml: "version: 2\nrules:\n" + credentialNameRules(version2: true).map { "  " + $0 }.joined(separator: "\n"),
                                                source: "<credential names>", variables: variables)
        var needed: [ActionKind: [(action: LearnedAction, pattern: String, decidedBy: Int?)]] = [:]
        var heldBack: [HeldBack] = []
        var seenHeld = Set<String>()
        for action in actions {
            let (named, address) = splitNetworkTarget(action)
            if let reason = heldBackReason(action, named: named, address: address, builtIn: builtIn, base: base, credentialNames: credentialNames) {
                if seenHeld.insert("\(action.kind.name) \(action.target)").inserted {
                    heldBack.append(HeldBack(kind: action.kind, target: action.target, reason: reason))
                }
                continue
            }
            let verdict = decide(base, action, named: named, address: address)
            guard !verdict.decision.allows else { continue }
            let pattern: String
            if action.kind == .netEgress {
                pattern = named
            } else if action.target.hasPrefix("/") {
                pattern = pathPattern(PathLexical.clean(action.target))
            } else {
                pattern = handlePattern(action.target)
            }
            needed[action.kind, default: []].append((action, pattern, verdict.ruleIndex))
            // The program's other names each need their rule too.
            for alias in action.aliases where alias.hasPrefix("/") && alias != action.target {
                needed[action.kind, default: []].append((action, pathPattern(PathLexical.clean(alias)), verdict.ruleIndex))
            }
        }

        let roots = [variables.workingDirectory, variables.temporaryDirectory, variables.home]
            .map { RuleProposer.literalGlob(PathLexical.clean($0)) }
        let temporaryRoots = Set([variables.temporaryDirectory, "/tmp"].map { RuleProposer.literalGlob(PathLexical.clean($0)) })
        var rules: [Rule] = []
        var taken = Set(base.rules.compactMap(\.id)).union([credentialNameRuleID])
        var needsCredentialNameRule = false
        for kind in ActionKind.allCases {
            guard let items = needed[kind], !items.isEmpty else { continue }
            // Pattern → the glob covering it.
            var coveringGlob: [String: String] = [:]
            if kind == .fsRead || kind == .fsWrite {
                let unique = Array(Set(items.map(\.pattern).filter { $0.hasPrefix("/") }))
                let unsafeGlobs = denyGlobs(kind, base: base, builtIn: builtIn)
                let collapsed = collapse(unique, threshold: threshold, temporaryRoots: temporaryRoots,
                                         roots: roots, home: roots[2]) { glob in
                    !GlobOverlap.overlap(anyOf: unsafeGlobs, anyOf: [glob], syntax: .path)
                }
                coveringGlob = collapsed
            }
            var order: [String] = []
            var groups: [String: [(action: LearnedAction, pattern: String, decidedBy: Int?)]] = [:]
            for item in items {
                let glob = coveringGlob[item.pattern] ?? item.pattern
                if groups[glob] == nil { order.append(glob) }
                groups[glob, default: []].append(item)
            }
            for glob in order {
                let group = groups[glob]!
                let first = group[0].action
                let match: [(key: String, value: String)]
                let written: String
                if kind == .netEgress {
                    let candidate = Candidate.all(for: AskedAction(kind: .netEgress, target: glob), breadth: .exact)[0]
                    if let problem = candidate.problem {
                        heldBack.append(HeldBack(kind: kind, target: first.target, reason: problem))
                        continue
                    }
                    match = candidate.match
                    written = candidate.summary
                } else {
                    written = generalised(glob, variables: variables)
                    match = [("action", kind.name), ("target_glob", YAMLScalar.quoted(written))]
                }
                let collapsedDirectory = glob.hasSuffix("/**") && !first.target.hasSuffix("/**")
                if kind == .fsRead && collapsedDirectory { needsCredentialNameRule = true }
                let id = RuleProposer.uniqueID(base: "learned-" + Candidate.slug(kind.name + "-" + written), taken: taken)
                taken.insert(id)
                let anchors = group.map { $0.decidedBy.flatMap { base.rules.indices.contains($0) && base.rules[$0].file == base.source ? $0 : nil } }
                // The earliest deciding rule; a default (nil) or an included file's rule counts as the end.
                let anchor = anchors.contains { $0 == nil } ? nil : anchors.compactMap { $0 }.min()
                var yaml = ["# " + comment(kind: kind, count: group.count, glob: collapsedDirectory ? written : nil, first: first)]
                yaml.append("- id: \(YAMLScalar.quoted(id))")
                yaml.append("  match: {" + match.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}")
                yaml.append("  decision: allow")
                yaml.append("  reason: \(YAMLScalar.quoted("learned from session \(label)"))")
                rules.append(Rule(kind: kind, glob: written, yaml: yaml, count: group.count, beforeRuleIndex: anchor))
            }
        }
        var credentialRule: [String]? = nil
        if needsCredentialNameRule {
            credentialRule = ["# held back: credential files by name, even in the directories the learned read rules cover"]
                + credentialNameRules(version2: isVersion2(base))
        }
        return PolicySuggestion(rules: rules, heldBack: heldBack, credentialNameRule: credentialRule)
    }

    /// Whether `policy` was read as a version 2 file (where `{a,b}` alternates): a probe rule
    /// is not available, so look at what its rules compiled to.
    static func isVersion2(_ policy: Policy) -> Bool {
        policy.rules.contains { $0.targetAlternatives.count > 1 }
    }

    /// The base policy's text with the learned rules inserted (each group before the rule it
    /// must precede, the held-back credential rule before the first read rule), and a header
    /// comment listing what was held back.
    public func render(into baseText: String, base: Policy, header: [String]) throws(PolicyTextEdit.Failure) -> String {
        // Items per anchor line; nil = end of list.
        var byAnchor: [Int?: [String]] = [:]
        var credentialPlaced = credentialNameRule == nil
        for rule in rules {
            let line = rule.beforeRuleIndex.map { base.rules[$0].line }
            if !credentialPlaced, rule.kind == .fsRead, let credentialNameRule {
                byAnchor[line, default: []] += credentialNameRule
                credentialPlaced = true
            }
            byAnchor[line, default: []] += rule.yaml
        }
        var text = baseText
        // The end first, then from the last line up: insertions never move a line still to come.
        if let items = byAnchor[nil] { text = try PolicyTextEdit.insert(items, into: text, beforeRuleAt: nil).text }
        for line in byAnchor.keys.compactMap({ $0 }).sorted(by: >) {
            text = try PolicyTextEdit.insert(byAnchor[line]!, into: text, beforeRuleAt: line).text
        }
        var lines = header
        if !heldBack.isEmpty {
            lines.append("# held back (never suggested as allowed):")
            for held in heldBack.prefix(50) {
                lines.append("#   \(held.kind.name) \(Self.printable(held.target)): \(Self.printable(held.reason))")
            }
            if heldBack.count > 50 { lines.append("#   … and \(heldBack.count - 50) more") }
        }
        return lines.map { $0 + "\n" }.joined() + text
    }

    /// The actions `policy` would still not let through (nothing, when the suggestion works).
    public static func stillRefused(_ actions: [LearnedAction], by policy: Policy, heldBack: [HeldBack]) -> [LearnedAction] {
        let held = Set(heldBack.map { "\($0.kind.name) \($0.target)" })
        return actions.filter { action in
            guard !held.contains("\(action.kind.name) \(action.target)") else { return false }
            let (named, address) = splitNetworkTarget(action)
            return !decide(policy, action, named: named, address: address).decision.allows
        }
    }

    // MARK: - Deciding

    static func decide(_ policy: Policy, _ action: LearnedAction, named: String, address: String?) -> Verdict {
        if action.kind == .netEgress {
            if let address { return policy.evaluateConnection(addressTarget: address, resolvedName: hostOnly(named)) }
            return policy.evaluateEgress(target: named)
        }
        let names = [action.target] + action.aliases.filter { $0 != action.target }
        let exec = action.kind == .exec ? ExecDetails(argv: action.argv ?? [action.target], programs: names) : nil
        var verdict = policy.evaluate(action.kind, target: action.target, exec: exec)
        for alias in names.dropFirst() where action.kind == .exec {
            let asNamed = policy.evaluate(.exec, target: alias, exec: exec)
            if asNamed.decision.strictness > verdict.decision.strictness { verdict = asNamed }
        }
        return verdict
    }

    /// `name:port (ip)` → (`name:port`, `ip:port`); anything else → (target, nil).
    static func splitNetworkTarget(_ action: LearnedAction) -> (named: String, address: String?) {
        let target = action.target
        guard action.kind == .netEgress, !target.hasPrefix("unix:"), target.hasSuffix(")"),
              let open = target.range(of: " (", options: .backwards) else { return (target, nil) }
        let named = String(target[..<open.lowerBound])
        let ip = String(target[open.upperBound...].dropLast())
        guard let colon = named.lastIndex(of: ":") else { return (named, nil) }
        let port = named[named.index(after: colon)...]
        return (named, ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)")
    }

    static func hostOnly(_ named: String) -> String {
        guard let colon = named.lastIndex(of: ":") else { return named }
        return String(named[..<colon])
    }

    /// Why an action must never be allowed by a learned rule: a rule of the built-in policy, or
    /// of the base policy (the user's own), denies it by name (credentials, start-up files,
    /// metadata endpoints, a company vault), or its name is a credential file's. A suggestion
    /// never undoes a deny someone wrote (found by a review on 2026-12-07: a learned read of a
    /// file the user's own rule denied was suggested as allowed, before that rule).
    static func heldBackReason(_ action: LearnedAction, named: String, address: String?, builtIn: Policy, base: Policy? = nil,
                               credentialNames: Policy?) -> String? {
        let exec = action.kind == .exec ? ExecDetails(argv: action.argv ?? [action.target], programs: [action.target]) : nil
        let targets = [named] + (address.map { [$0] } ?? [])
        for (policy, whose) in [(builtIn, "the built-in policy's"), base.map { ($0, "the base policy's") }].compactMap({ $0 }) {
            for rule in policy.rules where rule.decision == .deny && rule.actions.contains(action.kind) && isNamed(rule) {
                if targets.contains(where: { policy.ruleMatches(rule.index, action.kind, target: $0, exec: exec) }) {
                    return "\(whose) rule \(rule.displayID) denies it" + (rule.reason.map { " (\($0))" } ?? "")
                }
            }
        }
        if action.kind == .fsRead, let credentialNames, !credentialNames.evaluate(.fsRead, target: action.target).decision.allows,
           credentialNames.evaluate(.fsRead, target: action.target).ruleIndex != nil {
            return "a credential file by its name"
        }
        return nil
    }

    /// A deny rule that names what it denies (not a catch-all such as `other-writes`).
    static func isNamed(_ rule: PolicyRule) -> Bool {
        rule.targetGlob != nil || !rule.networks.isEmpty || !rule.commands.isEmpty || rule.argv != nil
    }

    /// The target globs a learned `DIR/**` must not overlap: every named deny or ask rule for
    /// `kind`, of the base and of the built-in policy.
    static func denyGlobs(_ kind: ActionKind, base: Policy, builtIn: Policy) -> [String] {
        (base.rules + builtIn.rules).filter { ($0.decision == .deny || $0.decision == .ask) && $0.actions.contains(kind) && $0.targetGlob != nil }
            .flatMap { $0.targetAlternatives.isEmpty ? [$0.expandedTargetGlob ?? ""] : $0.targetAlternatives }
            .filter { !$0.isEmpty }
    }

    // MARK: - Paths

    /// A clean absolute path as a glob: each segment escaped, and the parts that differ from
    /// run to run (a process id under /proc) as `*`.
    static func pathPattern(_ path: String) -> String {
        var segments = path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
        if segments.first == "proc" {
            for index in segments.indices.dropFirst() where segments[index].allSatisfy(\.isNumber) {
                let parent = segments[index - 1]
                if parent == "proc" || parent == "task" { segments[index] = "*" }
            }
        }
        return "/" + segments.map { $0 == "*" ? "*" : RuleProposer.literalGlob($0) }.joined(separator: "/")
    }

    /// `pipe:[1234]` → `pipe:*`: a held descriptor's name changes every run.
    static func handlePattern(_ target: String) -> String {
        if let colon = target.firstIndex(of: ":"), target[target.index(after: colon)...].hasPrefix("[") {
            return RuleProposer.literalGlob(String(target[...colon])) + "*"
        }
        return RuleProposer.literalGlob(target)
    }

    /// Collapses sibling paths (globs as `pathPattern` makes them) into `DIR/**`: each path goes
    /// under the highest directory that holds at least `threshold` of them (one for a temporary
    /// directory, whose names are made up per run), is two levels deep or one of `roots` (the
    /// working directory, $TMPDIR, $HOME), is not `/`, `home` itself nor above any of `roots`
    /// (never widened to $HOME or above the project), has no `*` segment, and for which
    /// `isSafe` holds. Returns path → covering glob (the path itself when nothing collapses it).
    public static func collapse(_ paths: [String], threshold: Int, temporaryRoots: Set<String>,
                                roots: [String], home: String, isSafe: (String) -> Bool) -> [String: String] {
        var counts: [String: Int] = [:]
        for path in Set(paths) {
            for directory in ancestors(path) { counts[directory, default: 0] += 1 }
        }
        let refused = Set(roots.flatMap { ancestors($0) } + [home])
        var result: [String: String] = [:]
        var safety: [String: Bool] = [:]
        for path in paths {
            var chosen = path
            for directory in ancestors(path) {
                let depth = directory.split(separator: "/").count
                let isTemporary = temporaryRoots.contains(directory)
                guard depth >= 2 || isTemporary || roots.contains(directory), !refused.contains(directory),
                      !directory.split(separator: "/").contains("*"),
                      counts[directory, default: 0] >= (isTemporary ? 1 : threshold) else { continue }
                let glob = directory + "/**"
                let safe = safety[glob] ?? isSafe(glob)
                safety[glob] = safe
                if safe { chosen = glob; break }
            }
            result[path] = chosen
        }
        return result
    }

    /// `/a/b/c` → [`/a`, `/a/b`] (shortest first; not `/`, not the path itself).
    static func ancestors(_ path: String) -> [String] {
        var result: [String] = []
        var current = ""
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        for segment in segments.dropLast() {
            current += "/" + segment
            result.append(current)
        }
        return result
    }

    /// A path glob as written in the policy: under the working directory, the temporary
    /// directory or $HOME (the longest that holds it) with the variable, literal `$` doubled.
    public static func generalised(_ glob: String, variables: PolicyVariables) -> String {
        let roots = [("$PWD", variables.workingDirectory), ("$TMPDIR", variables.temporaryDirectory), ("$HOME", variables.home)]
            .map { ($0.0, RuleProposer.literalGlob(PathLexical.clean($0.1))) }
            .filter { $0.1 != "/" }
            .sorted { $0.1.count > $1.1.count }
        for (name, root) in roots where glob == root || glob.hasPrefix(root + "/") {
            return name + RuleProposer.policyText(String(glob.dropFirst(root.count)))
        }
        return RuleProposer.policyText(glob)
    }

    // MARK: - Comments

    static func comment(kind: ActionKind, count: Int, glob: String?, first: LearnedAction) -> String {
        let noun: String
        switch kind.name {
        case "exec": noun = count == 1 ? "exec" : "execs"
        case "fs_read": noun = count == 1 ? "read" : "reads"
        case "fs_write": noun = count == 1 ? "write" : "writes"
        case "net_egress": noun = count == 1 ? "connect" : "connects"
        default: noun = count == 1 ? "action" : "actions"
        }
        var what = kind == .exec ? (first.argv ?? [first.target]).joined(separator: " ") : first.target
        if what.count > 120 { what = String(what.prefix(120)) + "…" }
        let by = first.executable.isEmpty ? "" : ", " + ExecDetails.basename(first.executable)
        return "learned: \(count) \(noun)" + (glob.map { " under \(String($0.dropLast(3)))" } ?? "")
            + ", first \(printable(what)) (pid \(first.pid)\(printable(by)))"
    }

    /// One line of text: control characters as `\u{…}`.
    static func printable(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                || scalar.value == 0x2028 || scalar.value == 0x2029 {
                result += "\\u{\(String(scalar.value, radix: 16))}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }
}
