import Foundation

/// The rule an Always or Never answer to an ask saves: precise enough to cover the same action
/// next time and no broader, and never letting through what an explicit deny rule covers.
///
/// An allow rule is placed before the ask rule that matched, so it could shadow any deny rule
/// that comes after. When a deny rule anywhere in the policy could match something the usual
/// rule would allow, the rule is narrowed (the program's own path instead of its name, then the
/// exact command) and `RuleProposal.note` says so; when even the narrowest rule may overlap a
/// deny, `RuleProposal.refusal` says why nothing is saved. A deny rule saved for Never needs no
/// narrowing.
public enum RuleProposer {
    /// The proposal for `action` with the saved `decision` (allow for Always, deny for Never).
    /// `askRuleIndex` is the ask rule that matched (nil: the policy's default); where the rule
    /// goes is the caller's (`PolicyTextEdit`), and every deny rule counts for narrowing
    /// wherever it is, as the file may be edited after the rule is placed. `file` is the policy
    /// file the rule would go into, `avoidingIDs` ids taken besides the policy's own (a file that
    /// changed since it was loaded), `date` the day named in the rule's reason.
    public static func propose(for action: AskedAction, decision: Decision, breadth: AskBreadth, policy: Policy,
                               askRuleIndex: Int?, file: String, avoidingIDs: Set<String> = [],
                               date: Date = Date()) -> RuleProposal {
        let candidates = Candidate.all(for: action, breadth: breadth)
        var chosen = candidates[0]
        var note: String?
        var refusal = chosen.problem
        if decision.allows, refusal == nil {
            let denies = policy.rules.filter { $0.decision == .deny && $0.actions.contains(action.kind) }
            func conflicts(_ candidate: Candidate, _ deny: PolicyRule) -> Bool {
                candidate.overlaps(deny, action: action, policy: policy)
                    && !candidate.isDecidedBefore(deny, action: action, policy: policy)
            }
            let firstOverlap = denies.first { conflicts(chosen, $0) }
            if let firstOverlap {
                if let narrower = candidates.dropFirst().first(where: { candidate in
                    !denies.contains { conflicts(candidate, $0) }
                }) {
                    chosen = narrower
                    note = "narrowed to \(narrower.narrowing): rule \(describe(firstOverlap)) covers other "
                        + candidates[0].coveredDescription
                } else {
                    let narrowest = candidates[candidates.count - 1]
                    let blocking = denies.first { conflicts(narrowest, $0) && matchesThisAction($0, action, policy) }
                        ?? denies.first { conflicts(narrowest, $0) } ?? firstOverlap
                    refusal = matchesThisAction(blocking, action, policy)
                        ? "rule \(describe(blocking)) covers this very action; no allow rule is saved, "
                            + "the answer applies to this call only"
                        : "rule \(describe(blocking)) may cover what even the exact rule would allow; no allow "
                            + "rule is saved, the answer applies to this call only"
                }
            }
        }
        let taken = Set(policy.rules.compactMap(\.id)).union(avoidingIDs)
        let id = uniqueID(base: (decision.allows ? "always-" : "never-") + chosen.slug, taken: taken)
        let day = day(date)
        var described = action.kind == .exec ? (action.argv ?? [action.target]).joined(separator: " ") : action.target
        // The match says exactly what is covered; the reason only reminds (an argv can be megabytes).
        if described.count > 200 { described = String(described.prefix(200)) + "…" }
        var yaml = ["- id: \(YAMLScalar.quoted(id))"]
        yaml.append("  match: {" + chosen.match.map { "\($0.key): \($0.value)" }.joined(separator: ", ") + "}")
        yaml.append("  decision: \(decision.name)")
        yaml.append("  reason: \(YAMLScalar.quoted("saved from an ask on \(day): \(described)"))")
        return RuleProposal(yaml: yaml, summary: "\(action.kind.name) \(chosen.summary)", note: note,
                            refusal: refusal, file: file)
    }

    /// `ID (deny: reason)` or `N (deny)`.
    static func describe(_ rule: PolicyRule) -> String {
        rule.reason.map { "\(rule.displayID) (deny: \($0))" } ?? "\(rule.displayID) (deny)"
    }

    /// Whether a deny rule's match covers the asked action itself (its `when:` is not looked at).
    static func matchesThisAction(_ rule: PolicyRule, _ action: AskedAction, _ policy: Policy) -> Bool {
        let exec = action.kind == .exec ? ExecDetails(argv: action.argv ?? [action.target], programs: [action.target]) : nil
        return policy.ruleMatches(rule.index, action.kind, target: action.target, exec: exec)
    }

    static func uniqueID(base: String, taken: Set<String>) -> String {
        guard taken.contains(base) else { return base }
        var number = 2
        while taken.contains("\(base)-\(number)") { number += 1 }
        return "\(base)-\(number)"
    }

    /// `YYYY-MM-DD` in UTC.
    static func day(_ date: Date) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC") ?? calendar.timeZone
        let parts = calendar.dateComponents([.year, .month, .day], from: date)
        func two(_ value: Int?) -> String { String(format: "%02d", value ?? 0) }
        return "\(parts.year ?? 0)-\(two(parts.month))-\(two(parts.day))"
    }

    /// A glob matching exactly `text`: its glob metacharacters escaped (`$` is left for
    /// `policyText`, which doubles it for the file).
    static func literalGlob(_ text: String) -> String { PolicyVariables.globEscaped(text) }

    /// A glob as written in a policy file: `$` doubled so it is not read as a variable.
    static func policyText(_ glob: String) -> String { glob.replacingOccurrences(of: "$", with: "$$") }
}

/// One rule the proposer may save, with what it covers for the overlap test.
struct Candidate {
    /// `match:` keys and their YAML values, in order.
    var match: [(key: String, value: String)]
    /// What it covers, after the action kind: `npm install *`, `/home/me/out/**`.
    var summary: String
    /// For the note: how this candidate is narrower than the usual rule.
    var narrowing: String
    /// For the note: what else the usual rule covers (`npm install commands`).
    var coveredDescription: String
    var slug: String
    var coverage: Coverage
    /// Why the action can't be written as a rule (a path that isn't absolute), or nil.
    var problem: String?

    enum Coverage {
        /// An exec rule: its argv pattern (globs), the program paths and basenames it may run
        /// under, the command lines it may see (text globs), and whether the program may run
        /// other commands that rules also see (a shell, a wrapper) with arguments it doesn't fix.
        /// `exact` is set when the rule fixes every argument.
        case exec(argv: [ArgvPatternElement], paths: [String], basenames: [String], lines: [CoveredLine],
                  runsOtherCommands: Bool, exact: [String]?, pinned: Bool)
        /// A path rule's glob.
        case path(String)
        /// A network rule covering just the target.
        case network
    }

    /// A command line a rule covers: a text glob, after a program directory when `pathPrefixed`.
    struct CoveredLine {
        var glob: String
        var pathPrefixed = false

        func overlaps(_ pattern: String) -> Bool {
            GlobOverlap.overlap(pattern, line: glob, pathPrefixed: pathPrefixed)
        }
    }

    /// Whether the deny rule `rule` could match something this candidate would allow.
    func overlaps(_ rule: PolicyRule, action: AskedAction, policy: Policy) -> Bool {
        switch coverage {
        case .network:
            return RuleProposer.matchesThisAction(rule, action, policy)
        case .path(let glob):
            guard rule.targetGlob != nil else { return true }
            return GlobOverlap.overlap(anyOf: rule.targetAlternatives, anyOf: [glob], syntax: .path)
        case .exec(let argv, let paths, let basenames, let lines, let runsOtherCommands, let exact, let pinned):
            if pinned, exact != nil { return RuleProposer.matchesThisAction(rule, action, policy) }
            if let target = rule.expandedTargetGlob {
                let alternatives = rule.targetAlternatives.isEmpty ? [target] : rule.targetAlternatives
                let reached = alternatives.contains { pattern in
                    GlobOverlap.overlap(anyOf: [pattern], anyOf: paths, syntax: .path)
                        || !pattern.contains("/") && GlobOverlap.overlap(anyOf: [pattern], anyOf: basenames, syntax: .path)
                        || lines.contains { $0.overlaps(pattern) }
                }
                guard reached else { return false }
            }
            guard rule.argv != nil || !rule.commands.isEmpty else { return true }
            if runsOtherCommands { return true }
            if let ruleArgv = rule.argv {
                let pattern = ruleArgv.map(ArgvPatternElement.init)
                var commands = [argv]
                if let exact {
                    let analysis = CommandAnalysis.analyze(argv: exact)
                    commands += analysis.commands.dropFirst().map { $0.map { .word([RuleProposer.literalGlob($0)]) } }
                }
                guard commands.contains(where: { GlobOverlap.argvOverlap(pattern, $0) }) else { return false }
            }
            if !rule.commands.isEmpty {
                var covered = lines
                if let exact {
                    covered += ExecDetails(argv: exact).lines.map { CoveredLine(glob: RuleProposer.literalGlob($0)) }
                }
                return rule.commands.contains { command in covered.contains { $0.overlaps(command) } }
            }
            return true
        }
    }

    /// Whether an unconditional allow (or log) rule before `deny` matches everything this
    /// candidate covers, so `deny` never decides any of it: a catch-all deny after the rules
    /// that allow the project (`other-writes`) is no reason to narrow or refuse.
    func isDecidedBefore(_ deny: PolicyRule, action: AskedAction, policy: Policy) -> Bool {
        policy.rules[..<deny.index].contains { rule in
            rule.decision.allows && rule.actions.contains(action.kind) && rule.conditions.isEmpty
                && covers(rule, action: action, policy: policy)
        }
    }

    /// Whether `rule`'s match certainly includes everything this candidate covers.
    private func covers(_ rule: PolicyRule, action: AskedAction, policy: Policy) -> Bool {
        let catchAll = rule.targetGlob == nil && !rule.hasExtraConstraints
        switch coverage {
        case .network:
            return RuleProposer.matchesThisAction(rule, action, policy)
        case .path(let glob):
            guard glob.hasSuffix("/**") else { return RuleProposer.matchesThisAction(rule, action, policy) }
            if catchAll { return true }
            guard !rule.hasExtraConstraints else { return false }
            let directory = String(glob.dropLast(3))
            return rule.targetAlternatives.contains { pattern in
                guard pattern.hasSuffix("/**") else { return false }
                let prefix = String(pattern.dropLast(3))
                guard !prefix.contains(where: { "*?[\\{}".contains($0) }) else { return false }
                return directory == prefix || directory.hasPrefix(prefix + "/")
            }
        case .exec(_, _, _, _, _, let exact, let pinned):
            if pinned, exact != nil { return RuleProposer.matchesThisAction(rule, action, policy) }
            return catchAll
        }
    }

    /// The candidates for an answer, the requested breadth first, then narrower ones.
    static func all(for action: AskedAction, breadth: AskBreadth) -> [Candidate] {
        switch action.kind {
        case .exec: return execCandidates(action, breadth: breadth)
        case .fsRead, .fsWrite: return pathCandidates(action, breadth: breadth)
        case .netEgress: return [networkCandidate(action)]
        case .mcp: return [toolCandidate(action)]
        }
    }

    private static func execCandidates(_ action: AskedAction, breadth: AskBreadth) -> [Candidate] {
        var words = action.argv ?? []
        if words.isEmpty { words = [action.target] }
        let target = action.target.isEmpty ? words[0] : action.target
        // Rules see argv[0] as the program's own paths and their basenames, never as the caller
        // spelled it: a relative path (`./build.sh`) or a name that isn't the program's
        // (`-bash`, a busybox applet) would match nothing, so the rule names the program's path.
        let named = words[0]
        let program = named.contains("/") && !named.hasPrefix("/")
            || ExecDetails.basename(named) != ExecDetails.basename(target) ? target : named
        let subcommand = words.count > 1 && !words[1].hasPrefix("-") ? words[1] : nil
        let runsOthers = CommandWords.mayRunOtherCommands(CommandWords.name(program))
            || CommandWords.mayRunOtherCommands(CommandWords.name(target))
        let usualWords = subcommand.map { [program, $0] } ?? words
        let covered = usualWords.joined(separator: " ")

        func candidate(programWord: String, fixed: [String], rest: Bool, narrowing: String) -> Candidate {
            let pinned = programWord != program
            let argvGlobs = [programWord] + fixed.dropFirst()
            let argv = argvGlobs.map { ArgvPatternElement.word([RuleProposer.literalGlob($0)]) } + (rest ? [.rest] : [])
            let written = argvGlobs.map { YAMLScalar.quoted(RuleProposer.policyText(RuleProposer.literalGlob($0))) }
                + (rest ? ["\"**\""] : [])
            var programNames = [programWord, target]
            var basenames: [String] = []
            var paths: [String] = [RuleProposer.literalGlob(target)]
            for name in [programWord, target] {
                let base = ExecDetails.basename(name)
                basenames.append(RuleProposer.literalGlob(base))
                programNames.append(base)
                if !name.contains("/") { paths.append("/**/" + RuleProposer.literalGlob(name)) }
                else if !pinned { paths.append(RuleProposer.literalGlob(PathLexical.clean(name))) }
            }
            let tail = fixed.dropFirst().map { " " + $0 }.joined()
            var lines: [CoveredLine] = []
            for name in Set(programNames) {
                let line = RuleProposer.literalGlob(name + tail) + (rest ? "*" : "")
                lines.append(CoveredLine(glob: line))
                if !name.contains("/") { lines.append(CoveredLine(glob: line, pathPrefixed: true)) }
            }
            let summary = ([programWord] + fixed.dropFirst()).joined(separator: " ") + (rest ? " *" : "")
            return Candidate(
                match: [("action", "exec"), ("argv", "[" + written.joined(separator: ", ") + "]")],
                summary: summary, narrowing: narrowing, coveredDescription: "\(covered) commands",
                slug: slug(([ExecDetails.basename(program)] + fixed.dropFirst().prefix(rest ? 1 : 2)).joined(separator: "-")),
                coverage: .exec(argv: argv, paths: paths, basenames: basenames, lines: lines,
                                runsOtherCommands: rest && runsOthers, exact: rest ? nil : words, pinned: pinned))
        }

        var result: [Candidate] = []
        if breadth != .exact, let subcommand {
            result.append(candidate(programWord: program, fixed: [program, subcommand], rest: true, narrowing: "the usual rule"))
        }
        result.append(candidate(programWord: program, fixed: words, rest: false, narrowing: "the exact command"))
        if program != target {
            result.append(candidate(programWord: target, fixed: words, rest: false,
                                    narrowing: "the exact command run as \(target)"))
        }
        return result
    }

    private static func pathCandidates(_ action: AskedAction, breadth: AskBreadth) -> [Candidate] {
        let path = action.target.hasPrefix("/") ? PathLexical.clean(action.target) : action.target
        let problem = path.hasPrefix("/") ? nil : "the path \"\(path)\" is not absolute, so no rule can name it"
        func candidate(_ glob: String, summary: String, narrowing: String) -> Candidate {
            Candidate(match: [("action", action.kind.name), ("target_glob", YAMLScalar.quoted(RuleProposer.policyText(glob)))],
                      summary: summary, narrowing: narrowing, coveredDescription: "paths under \(summary)",
                      slug: slug(action.kind.name + "-" + path), coverage: .path(glob), problem: problem)
        }
        let file = candidate(RuleProposer.literalGlob(path), summary: path, narrowing: "the file itself")
        guard breadth == .directory, let slash = path.lastIndex(of: "/") else { return [file] }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        let glob = directory == "/" ? "/**" : RuleProposer.literalGlob(directory) + "/**"
        return [candidate(glob, summary: directory == "/" ? "/**" : directory + "/**", narrowing: "the file itself"), file]
    }

    private static func networkCandidate(_ action: AskedAction) -> Candidate {
        // A connect attributed to the name it was resolved from ("registry.example:443
        // (104.16.0.35)") is proposed by that name: the address is the name's for now only.
        var target = action.target
        if !target.hasPrefix("unix:"), target.hasSuffix(")"), let open = target.range(of: " (") {
            target = String(target[..<open.lowerBound])
        }
        var match: [(key: String, value: String)] = [("action", "net_egress")]
        if target.hasPrefix("unix:") {
            let glob = "unix:" + RuleProposer.literalGlob(String(target.dropFirst(5)))
            match.append(("target_glob", YAMLScalar.quoted(RuleProposer.policyText(glob))))
        } else if let colon = target.lastIndex(of: ":"), let port = UInt16(target[target.index(after: colon)...]),
                  colon != target.startIndex {
            let host = String(target[..<colon])
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            // A bare host token (no wildcard) is matched exactly, never by substring.
            let exact = bare.allSatisfy { !"*?[]\\ ".contains($0) } && !bare.isEmpty
            match.append(("target_glob", YAMLScalar.quoted(exact ? host : RuleProposer.literalGlob(target))))
            match.append(("ports", "[\(port)]"))
        } else {
            match.append(("target_glob", YAMLScalar.quoted(RuleProposer.policyText(RuleProposer.literalGlob(target)))))
        }
        // The pattern must compile as the loader will compile it (an empty or malformed target can't).
        let written = match.first { $0.key == "target_glob" }?.value ?? ""
        let pattern = (try? Policy.parse(yaml: "rules: [{match: {action: net_egress, target_glob: \(written)}, decision: deny}]",
                                         source: "<proposal>", variables: PolicyVariables(workingDirectory: "/", home: "/")))
        return Candidate(match: match, summary: target, narrowing: "the target", coveredDescription: "connections to \(target)",
                         slug: slug("net-" + target), coverage: .network,
                         problem: pattern == nil ? "the network target \"\(target)\" can't be written as a rule" : nil)
    }

    /// An mcp rule naming just this tool (hook asks go back to the agent's own prompt, so this
    /// is for completeness: the supervisor never asks about a tool).
    private static func toolCandidate(_ action: AskedAction) -> Candidate {
        let glob = RuleProposer.literalGlob(action.target)
        return Candidate(match: [("action", "mcp"), ("tool", YAMLScalar.quoted(RuleProposer.policyText(glob)))],
                         summary: action.target, narrowing: "the tool", coveredDescription: "calls of \(action.target)",
                         slug: slug("mcp-" + action.target), coverage: .network,
                         problem: action.target.isEmpty ? "an unnamed tool can't be written as a rule" : nil)
    }

    /// An id-friendly form: lowercase letters, digits and single dashes, at most 48 characters.
    static func slug(_ text: String) -> String {
        var result = ""
        for scalar in text.lowercased().unicodeScalars {
            if ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) {
                result.unicodeScalars.append(scalar)
            } else if !result.isEmpty, !result.hasSuffix("-") {
                result += "-"
            }
        }
        while result.hasSuffix("-") { result.removeLast() }
        if result.count > 48 { result = String(result.prefix(48)) }
        while result.hasSuffix("-") { result.removeLast() }
        return result.isEmpty ? "rule" : result
    }
}

/// Writes YAML scalars: plain when that reads back as the same string, else double-quoted.
public enum YAMLScalar {
    private static let reserved: Set<String> = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", "",
    ]

    /// `text` as a YAML scalar that reads back as exactly `text`, usable in flow and block
    /// context.
    public static func quoted(_ text: String) -> String {
        let plainSafe = text.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_./-".unicodeScalars.contains($0)
        }
        if plainSafe, let first = text.unicodeScalars.first, ("a"..."z").contains(first) || ("A"..."Z").contains(first) || first == "/",
           !reserved.contains(text.lowercased()) {
            return text
        }
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value)
                    || scalar.value == 0x2028 || scalar.value == 0x2029 || scalar.value == 0xFEFF {
                    result += String(format: "\\u%04X", scalar.value)
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}
