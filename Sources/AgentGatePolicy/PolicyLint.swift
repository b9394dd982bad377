/// Findings about a policy that loads but probably doesn't mean what its author thinks:
/// shadowed rules, rules that can never match, `ask` where nobody can answer. (Unknown variables
/// and failing inline examples come from a lenient load, see `Policy.load(path:variables:lenient:diagnostics:)`.)
public enum PolicyLint {
    /// Whether a session can ask anyone: it can (its terminal, or `agentgate approve` over its
    /// control socket), so an `ask` is not reported.
    public static let approverAvailable = true

    public static func check(_ policy: Policy) -> [PolicyDiagnostic] {
        var findings: [PolicyDiagnostic] = []
        func report(_ rule: PolicyRule, _ message: String) {
            findings.append(PolicyDiagnostic(file: rule.file, line: rule.line, column: rule.column,
                                             message: "rule \(rule.displayID): \(message)"))
        }
        for rule in policy.rules {
            // Built-in includes are composed by design (a switch or profile before agentgate:default
            // shadows some of its rules for unresolved connects; attributed connects still meet its
            // address rules), and nobody can edit them: only report shadowing that involves a file.
            if let shadow = policy.rules[..<rule.index].first(where: { covers($0, rule) }),
               BuiltInInclude.withSource(shadow.file) == nil || BuiltInInclude.withSource(rule.file) == nil {
                var message = "unreachable: rule \(shadow.displayID) (\(shadow.location)) comes first and matches "
                    + "everything this rule matches"
                if shadow.decision != rule.decision {
                    message += ", so its \(rule.decision.name) never applies (rule \(shadow.displayID) decides \(shadow.decision.name))"
                }
                report(rule, message)
            }
            if let reason = neverMatches(rule) { report(rule, "can never match: \(reason)") }
            if rule.decision.allows, let scope = rule.expandedScope, !rule.targetAlternatives.isEmpty,
               rule.targetAlternatives.allSatisfy({ glob in
                   glob.hasPrefix("/") && !PathLexical.isWithin(literalPrefix(glob), root: scope)
                       && !PathLexical.isWithin(scope, root: literalPrefix(glob))
               }) {
                report(rule, "every path it matches is outside its scope \(scope), so it always denies")
            }
            if rule.decision == .ask && !approverAvailable {
                report(rule, "asks, but no approver can exist yet: ask is enforced as deny")
            }
        }
        for kind in ActionKind.allCases where policy.defaultDecision(for: kind) == .ask && !approverAvailable {
            findings.append(PolicyDiagnostic(
                file: policy.source, line: 0, column: 0,
                message: "the default for \(kind.name) is ask, but no approver can exist yet: it is enforced as deny"
                    + " (set default: deny to say so)"))
        }
        findings += limitFindings(policy)
        return findings
    }

    /// Whether `earlier` matches every action `later` matches (so `later` is never reached),
    /// action kind by action kind. Conservative: only unconditional earlier rules, and glob
    /// containment that is certain: the same pattern, `P/**` over what lies under P, and
    /// patterns that match every target of a kind (`**`; `*` for programs, whose basename it
    /// matches), and `*` over patterns without `/` (special files, hosts).
    static func covers(_ earlier: PolicyRule, _ later: PolicyRule) -> Bool {
        guard !earlier.hasExtraConstraints else { return false }
        return later.actions.allSatisfy { kind in
            guard earlier.actions.contains(kind) else { return false }
            // No target_glob: every target of the kind.
            if earlier.targetAlternatives.isEmpty { return true }
            // The pattern of a rule for every action never matches a tool name (mcp).
            func patternApplies(_ rule: PolicyRule, _ pattern: String) -> Bool {
                applies(pattern, to: kind) && (kind != .mcp || rule.actions.count < ActionKind.allCases.count)
            }
            let outers = earlier.targetAlternatives.filter { patternApplies(earlier, $0) }
            if later.targetAlternatives.isEmpty {
                if outers.contains(where: { matchesEveryTarget($0, kind) }) { return true }
                // cidr and ports only ever match host targets, which `*` all matches.
                return kind == .netEgress && (!later.networks.isEmpty || !later.ports.isEmpty) && outers.contains("*")
            }
            return later.targetAlternatives.filter { patternApplies(later, $0) }.allSatisfy { inner in
                outers.contains { outer in covers(outer, inner, kind: kind) }
            }
        }
    }

    /// Whether a target pattern can match targets of `kind` at all: a path pattern never
    /// matches a network target.
    static func applies(_ pattern: String, to kind: ActionKind) -> Bool {
        (kind != .netEgress && kind != .mcp) || !pattern.hasPrefix("/")
    }

    /// Whether `pattern` matches every target an action of `kind` can have.
    static func matchesEveryTarget(_ pattern: String, _ kind: ActionKind) -> Bool {
        switch kind {
        case .mcp:
            // Tool names are text: any run of stars matches every one.
            return !pattern.isEmpty && pattern.allSatisfy { $0 == "*" }
        case .fsRead, .fsWrite, .netEgress:
            // `**` crosses every `/`; `/**` would miss pipe:[…] and unix: targets.
            return pattern == "**"
        case .exec:
            // Programs are absolute paths, and a pattern without `/` matches their basename.
            return pattern == "/**" || (!pattern.isEmpty && pattern.allSatisfy { $0 == "*" })
        }
    }

    static func covers(_ outer: String, _ inner: String, kind: ActionKind) -> Bool {
        if outer == inner || matchesEveryTarget(outer, kind) { return true }
        // `*` matches every target without a `/`: a pipe:[…], a host:port. A pattern without
        // `/` or `**` matches only such targets (for net_egress, unix: ones aside).
        if outer == "*" && !inner.contains("/") && !inner.contains("**") {
            return kind != .netEgress || !inner.hasPrefix("unix:")
        }
        if kind == .netEgress { return false }
        if kind == .mcp {
            // `P*` covers every name that starts with P (a text glob: `*` spans everything).
            let prefix = outer.dropLast()
            return outer.hasSuffix("*") && !prefix.contains(where: { "*?[\\{".contains($0) }) && inner.hasPrefix(prefix)
        }
        // `P/**` covers P and everything below it.
        if outer.hasSuffix("/**") {
            let prefix = String(outer.dropLast(3))
            if !prefix.contains(where: { "*?[\\{".contains($0) }) {
                return inner == prefix || literalPrefix(inner).hasPrefix(prefix + "/") || inner.hasPrefix(prefix + "/")
                    && !inner.dropFirst(prefix.count).contains(where: { "*?[\\{".contains($0) })
            }
        }
        return false
    }

    /// Why a rule can't match any target its actions produce, or nil.
    static func neverMatches(_ rule: PolicyRule) -> String? {
        let reasons = rule.targetAlternatives.map { neverMatches(rule, $0) }
        guard !reasons.isEmpty, reasons.allSatisfy({ $0 != nil }) else { return nil }
        return reasons[0]
    }

    static func neverMatches(_ rule: PolicyRule, _ glob: String) -> String? {
        switch rule.action {
        case .netEgress?:
            if glob.hasPrefix("/") {
                return "net_egress targets are host:port or unix:PATH, never a bare path (write unix:\(glob) for a socket)"
            }
            if glob.hasPrefix("unix:"), !rule.networks.isEmpty || !rule.ports.isEmpty {
                return "cidr and ports never match a unix socket"
            }
        case .mcp?:
            if glob.hasPrefix("/") || glob.hasPrefix("unix:") {
                return "mcp targets are tool names such as mcp__server__tool, never paths or sockets"
            }
        case .fsRead?, .fsWrite?:
            if glob.hasPrefix("unix:") { return "unix: patterns are net_egress targets, not file paths" }
            let special = ["pipe:", "socket:", "anon_inode:"].contains { glob.hasPrefix($0) }
            if !special, let first = glob.first, !"/*?[\\".contains(first) {
                return "file targets are absolute paths; \"\(glob)\" does not start with / (write **/\(glob) for any directory)"
            }
        case .exec?:
            if glob.hasPrefix("unix:") { return "unix: patterns are net_egress targets, not programs" }
        case nil:
            break
        }
        return nil
    }

    static func literalPrefix(_ glob: String) -> String {
        var result = ""
        for character in glob {
            if "*?[\\{".contains(character) { break }
            result.append(character)
        }
        // Up to the last complete segment: "/a/b*" gives "/a".
        if result != glob, let slash = result.lastIndex(of: "/") { result = String(result[..<slash]) }
        return result.isEmpty && glob.hasPrefix("/") ? "/" : result
    }
}
