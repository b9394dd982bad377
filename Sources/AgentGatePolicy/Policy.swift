import Synchronization
/// One rule of a policy, as written in its policy file.
public struct PolicyRule: Sendable, Equatable {
    /// 0-based position in `Policy.rules` (after includes are merged).
    public let index: Int
    /// The `id:` given in the file, if any.
    public let id: String?
    /// The action the rule applies to when it names exactly one; nil for several or every action.
    public let action: ActionKind?
    /// Every action the rule applies to.
    public let actions: [ActionKind]
    /// `match.target_glob` as written (variables unexpanded); nil means every target.
    public let targetGlob: String?
    /// `match.argv` as written: one glob per argument, `**` for any run of arguments.
    public let argv: [String]?
    /// `match.command` as written: globs over whole command lines.
    public let commands: [String]
    /// `match.cidr` and `match.ports` as written.
    public let networks: [String]
    public let ports: [String]
    /// `match.arguments` of an mcp rule as written, `name: glob` each, in file order.
    public internal(set) var arguments: [String] = []
    /// `when:` as written, one `key: value` summary per condition; empty when unconditional.
    public let conditions: [String]
    public let decision: Decision
    /// `reason:`, shown to the user and stored with the event.
    public let reason: String?
    /// `errno:` for denials; 0 when not given.
    public let errno: Int32
    /// `scope` as written (variables unexpanded); only allow and log rules may have one.
    public let scope: String?
    /// The file the rule is in (the policy itself or an included file).
    public let file: String
    /// 1-based line and column of the rule in `file`.
    public let line: Int
    public let column: Int
    /// `targetGlob` after variable expansion: the pattern actually matched.
    public let expandedTargetGlob: String?
    /// The patterns `expandedTargetGlob` stands for after `{a,b}` alternation (version 2 files);
    /// just `expandedTargetGlob` otherwise, empty when the rule has no target glob.
    public let targetAlternatives: [String]
    /// `scope` after variable expansion and lexical cleaning: the directory actually enforced.
    public let expandedScope: String?

    /// How the rule is named to people: its `id`, else its 1-based number.
    public var displayID: String { id ?? "\(index + 1)" }

    /// `file:line:column` of the rule.
    public var location: String { "\(file):\(line):\(column)" }

    /// Whether the rule tests more than the action and target (argv, command, network, `when`).
    public var hasExtraConstraints: Bool {
        argv != nil || !commands.isEmpty || !networks.isEmpty || !ports.isEmpty || !conditions.isEmpty || !arguments.isEmpty
    }
}

/// A loaded policy: ordered rules (first match wins) and a default decision per action.
///
/// Load with `Policy.load(path:variables:)` or `Policy.parse(yaml:source:variables:)`; a policy
/// that has any error does not load at all. Evaluation is pure, thread-safe and, for clean
/// absolute targets and rules without `when:`, `argv:` or `command:`, allocation-free.
public struct Policy: Sendable {
    /// The rules in merged order; `Verdict.ruleIndex` indexes this array.
    public let rules: [PolicyRule]
    /// Where the policy came from (file path or the `source` given to `parse`).
    public let source: String
    /// Every file the policy was read from: `source` first, then included files.
    public let files: [String]
    /// `enforce` (the default) or `audit`.
    public private(set) var mode: PolicyMode
    /// Routes the supervisor can't see through that this policy explicitly reopens.
    public let allowedUnsupervised: Set<UnsupervisedRoute>
    /// `explain_denials` (default true): a process whose exec is denied is told why, in one
    /// line on its own stderr, before the failure reaches it.
    public let explainsDenials: Bool
    /// Default decisions, indexed by `ActionKind.rawValue`.
    let defaults: [Decision]
    /// Compiled rules grouped by action kind: the rules for kind `k` are
    /// `compiled[kindStart[k] ..< kindStart[k + 1]]`, in file order.
    let compiled: [RuleCode]
    /// Quick-reject filters, parallel to `compiled`: the loop scans these small records and
    /// only looks at a full `RuleCode` when its filter passes.
    let filters: [RuleFilter]
    let kindStart: [Int]
    let arena: MatchArena
    /// Side tables for the rarer parts of rules, indexed from `RuleCode`.
    let exec: ExecTables
    /// `cidr:` and `ports:` of every rule, flattened; `RuleCode` holds ranges into them.
    let networks: [NetworkCode]
    let ports: [PortRange]
    let conditions: [RuleCondition]
    /// `arguments:` of mcp rules, by rule index (`evaluateMCP`).
    var toolArguments: [Int: ToolArgumentMatch] = [:]
    /// Whether any exec rule looks at argv or command lines, including the `target_glob` of exec
    /// rules in v1 files (so the supervisor must build `ExecDetails` for execs).
    public let usesExecDetails: Bool
    /// Whether any rule has a `when:` condition.
    public let usesProcessContext: Bool
    /// `limits:`: how many actions a session may take per window (`RateLimit`).
    public let limits: [RateLimit]
    let limitMatcher: LimitMatcher?
    /// `runaway:`: what happens to a session that piles up denials.
    public let runaway: RunawayRule?
    /// `ask_timeout:` (default 120 s): how long an `ask` waits for a person before it is denied.
    public let askTimeout: LimitWindow
    public static let defaultAskTimeout = LimitWindow(seconds: 120)!
    /// `dns:`: how many unique subdomains of one parent a session may query (`DNSQueryMonitor`).
    public let dnsLimits: DNSLimits
    /// `audit: {reads:}` (default `aggregate`): how allowed reads are recorded.
    public internal(set) var readRecording: ReadRecording = .aggregate
    /// `audit: {journal: …}` and `webhooks:`: where decisions go besides the database.
    public internal(set) var outputs = PolicyOutputs()

    init(rules: [PolicyRule], source: String, files: [String], mode: PolicyMode, defaults: [Decision],
         compiledByKind: [[RuleCode]], arena: MatchArena, allowedUnsupervised: Set<UnsupervisedRoute>,
         exec: ExecTables, networks: [NetworkCode], ports: [PortRange], conditions: [RuleCondition],
         explainsDenials: Bool = true, limits: [RateLimit] = [], limitMatcher: LimitMatcher? = nil,
         runaway: RunawayRule? = nil, askTimeout: LimitWindow = Policy.defaultAskTimeout,
         dnsLimits: DNSLimits = DNSLimits()) {
        self.askTimeout = askTimeout
        self.dnsLimits = dnsLimits
        self.limits = limits
        self.limitMatcher = limitMatcher
        self.runaway = runaway
        self.allowedUnsupervised = allowedUnsupervised
        self.explainsDenials = explainsDenials
        self.rules = rules
        self.source = source
        self.files = files
        self.mode = mode
        self.defaults = defaults
        var starts = [0]
        for group in compiledByKind { starts.append(starts[starts.count - 1] + group.count) }
        let compiled = compiledByKind.flatMap { $0 }
        self.compiled = compiled
        self.filters = compiled.map { RuleFilter($0, arena: arena) }
        self.kindStart = starts
        self.arena = arena
        self.exec = exec
        self.networks = networks
        self.ports = ports
        self.conditions = conditions
        self.usesExecDetails = compiled.contains { $0.execIndex >= 0 || $0.lineGlob >= 0 }
            || limitMatcher?.matches.usesExecDetails == true
        self.usesProcessContext = !conditions.isEmpty
    }

    /// The decision when no rule matches an action of `kind`.
    public func defaultDecision(for kind: ActionKind) -> Decision { defaults[Int(kind.rawValue)] }

    /// The same policy in `mode` (`agentgate-supervise --learn` runs any policy in audit mode).
    public func inMode(_ mode: PolicyMode) -> Policy {
        var copy = self
        copy.mode = mode
        return copy
    }

    /// Decides one action. `target` is an absolute path for `exec`/`fs_read`/`fs_write` (already
    /// resolved by the supervisor) or a network target such as `1.2.3.4:443`, `[::1]:80` or
    /// `unix:/run/x.sock` for `net_egress`. Without exec details, `argv:`/`command:` rules can't
    /// match; without a context, `when:` rules decide as if their condition were unknown.
    public func evaluate(_ kind: ActionKind, target: String, exec: ExecDetails? = nil,
                         context: ProcessContext? = nil) -> Verdict {
        var source = KnownProcessContext(context)
        return evaluate(kind, target: target, exec: exec, contextSource: &source)
    }

    /// Decides one action, asking `contextSource` for the process context only if a rule with
    /// `when:` is reached.
    public func evaluate<Source: ProcessContextSource>(
        _ kind: ActionKind, target: String, exec: ExecDetails?, contextSource: inout Source
    ) -> Verdict {
        if let verdict = target.utf8.withContiguousStorageIfAvailable({
            evaluate(kind, utf8: $0, exec: exec, contextSource: &contextSource)
        }) {
            return verdict
        }
        var contiguous = target
        return contiguous.withUTF8 { evaluate(kind, utf8: $0, exec: exec, contextSource: &contextSource) }
    }

    /// Decides one action whose target is given as UTF-8 bytes (e.g. read straight from the
    /// tracee), without building a String.
    ///
    /// An absolute path that is not in clean form (`//`, `.`, `..` segments, trailing `/`) is
    /// cleaned lexically first, so `/home/u/proj/../.ssh/id_rsa` meets the `~/.ssh` rule; only
    /// that unusual case allocates. Symlinks are not resolved here.
    public func evaluate<Source: ProcessContextSource>(
        _ kind: ActionKind, utf8 target: UnsafeBufferPointer<UInt8>, exec: ExecDetails?, contextSource: inout Source
    ) -> Verdict {
        if kind.targetIsPath, target.first == UInt8(ascii: "/"), !PathLexical.isCleanAbsolute(target) {
            var cleaned = PathLexical.clean(String(decoding: target, as: UTF8.self))
            return cleaned.withUTF8 { evaluateClean(kind, $0, exec, &contextSource) }
        }
        return evaluateClean(kind, target, exec, &contextSource)
    }

    /// Without exec details or context.
    public func evaluate(_ kind: ActionKind, utf8 target: UnsafeBufferPointer<UInt8>) -> Verdict {
        var none = KnownProcessContext(nil)
        return evaluate(kind, utf8: target, exec: nil, contextSource: &none)
    }

    private func evaluateClean<Source: ProcessContextSource>(
        _ kind: ActionKind, _ target: UnsafeBufferPointer<UInt8>, _ exec: ExecDetails?, _ contextSource: inout Source
    ) -> Verdict {
        // mcp actions never come from the kernel: rules with `arguments:` take the slower path.
        if kind == .mcp, !toolArguments.isEmpty {
            return evaluateMCP(tool: String(decoding: target, as: UTF8.self), arguments: nil, contextSource: &contextSource)
        }
        let kindIndex = Int(kind.rawValue)
        let first = kindStart[kindIndex]
        let end = kindStart[kindIndex + 1]
        let enforced = mode == .enforce
        // Network targets are split into host and port once, not once per rule.
        let hostParts = kind == .netEgress ? HostTarget(target) : nil
        var context: ProcessContext?? = .none
        var facts = NetworkTargetFacts()
        return filters.withUnsafeBufferPointer { filters in
            compiled.withUnsafeBufferPointer { rules in
                arena.withPointers { arena in
                    var i = first
                    while i < end {
                        if filters[i].admits(target),
                           rules[i].matches(kind, target, hostParts, arena)
                            || rules[i].lineGlob >= 0 && lineMatches(rules[i].lineGlob, exec, arena),
                           constraintsHold(rules[i], target, hostParts, &facts, exec, &context, &contextSource) {
                            var verdict = rules[i].verdict(kind, target, arena)
                            verdict.enforced = enforced
                            return verdict
                        }
                        i += 1
                    }
                    let decision = defaults[kindIndex]
                    return Verdict(decision: decision, ruleIndex: nil,
                                   reason: decision == .ask ? .noApprover : .defaultDecision, enforced: enforced)
                }
            }
        }
    }

    /// Whether a v1 exec rule's `target_glob` matches the exec's command line (as agentgate v1
    /// matched it), when its program path did not.
    @inline(__always)
    private func lineMatches(_ lineGlob: Int32, _ execDetails: ExecDetails?, _ arena: ArenaPointers) -> Bool {
        guard let execDetails else { return false }
        return exec.matches(lineGlob, execDetails, arena)
    }

    /// The parts of a rule beyond its target pattern: exec argv/command, network ranges, `when`.
    @inline(__always)
    func constraintsHold<Source: ProcessContextSource>(
        _ rule: RuleCode, _ target: UnsafeBufferPointer<UInt8>, _ hostParts: HostTarget?, _ facts: inout NetworkTargetFacts,
        _ execDetails: ExecDetails?, _ context: inout ProcessContext??, _ contextSource: inout Source
    ) -> Bool {
        if rule.execIndex >= 0 {
            guard let execDetails, arena.withPointers({ self.exec.matches(rule.execIndex, execDetails, $0) }) else {
                return false
            }
        }
        if rule.portCount > 0 || rule.networkCount > 0 {
            guard networkMatches(rule, target, hostParts ?? HostTarget(target), &facts) else { return false }
        }
        if rule.conditionIndex >= 0 {
            if case .none = context { context = .some(contextSource.processContext()) }
            guard case .some(let known) = context, let known else {
                // Unknown context: only a rule that restricts may apply.
                return !rule.decision.allows
            }
            return conditions[Int(rule.conditionIndex)].matches(known)
        }
        return true
    }

    /// Whether a target is on one of the rule's ports (when it has any) and in one of its
    /// networks (when it has any). Names are in no network; unix sockets match neither.
    @inline(__always)
    private func networkMatches(_ rule: RuleCode, _ target: UnsafeBufferPointer<UInt8>, _ parts: HostTarget,
                                _ facts: inout NetworkTargetFacts) -> Bool {
        facts.load(target, parts)
        if rule.portCount > 0 {
            guard let port = facts.port else { return false }
            let found = ports.withUnsafeBufferPointer { ports in
                ports[Int(rule.portStart)..<Int(rule.portStart + rule.portCount)].contains { $0.lower <= port && port <= $0.upper }
            }
            guard found else { return false }
        }
        if rule.networkCount > 0 {
            guard let address = facts.address else { return false }
            return networks.withUnsafeBufferPointer { networks in
                networks[Int(rule.networkStart)..<Int(rule.networkStart + rule.networkCount)].contains { $0.contains(address) }
            }
        }
        return true
    }

    /// Whether rule `index` matches an action, by its match part alone (`when:` is not
    /// evaluated): for inline examples, `agentgate check` explanations and coverage.
    public func ruleMatches(_ index: Int, _ kind: ActionKind, target: String, exec: ExecDetails?) -> Bool {
        guard rules.indices.contains(index) else { return false }
        var cleaned = kind.targetIsPath && target.hasPrefix("/") ? PathLexical.clean(target) : target
        return cleaned.withUTF8 { bytes in
            let kindIndex = Int(kind.rawValue)
            let hostParts = kind == .netEgress ? HostTarget(bytes) : nil
            return arena.withPointers { arena in
                // A rule compiles to one code per `{a,b}` alternative: any of them may match.
                for i in kindStart[kindIndex]..<kindStart[kindIndex + 1] where compiled[i].ruleIndex == index {
                    let code = compiled[i]
                    guard code.matches(kind, bytes, hostParts, arena)
                            || code.lineGlob >= 0 && lineMatches(code.lineGlob, exec, arena) else { continue }
                    if code.execIndex >= 0 {
                        guard let exec, self.exec.matches(code.execIndex, exec, arena) else { continue }
                    }
                    var facts = NetworkTargetFacts()
                    if code.portCount > 0 || code.networkCount > 0,
                       !networkMatches(code, bytes, hostParts ?? HostTarget(bytes), &facts) {
                        continue
                    }
                    return true
                }
                return false
            }
        }
    }
}

extension Policy {
    /// The decision on one action, as the supervisor makes it: `evaluate`, and for net_egress
    /// `evaluateEgress` (a pathname unix socket is also a write to its path). `agentgate check`
    /// and `agentgate policy test` decide every kind through this, so what they print is what a
    /// session does. `exec` targets are decided once per program path (as named and as
    /// resolved) by the caller, the stricter verdict winning.
    public func decide<Source: ProcessContextSource>(
        _ kind: ActionKind, target: String, exec: ExecDetails?, contextSource: inout Source
    ) -> Verdict {
        kind == .netEgress ? evaluateEgress(target: target, contextSource: &contextSource)
            : evaluate(kind, target: target, exec: exec, contextSource: &contextSource)
    }

    /// `decide` with a known (or no) process context.
    public func decide(_ kind: ActionKind, target: String, exec: ExecDetails? = nil,
                       context: ProcessContext? = nil) -> Verdict {
        var source = KnownProcessContext(context)
        return decide(kind, target: target, exec: exec, contextSource: &source)
    }
}

/// A cheap necessary condition for a rule to match: a minimum length and up to eight literal
/// bytes at each end of the pattern, compared as masked 64-bit words.
struct RuleFilter: Sendable {
    var minLength = 0
    /// Offset of the 8-byte window that ends the literal prefix (0 when the prefix is shorter).
    var prefixOffset = 0
    var prefixWord: UInt64 = 0
    var prefixMask: UInt64 = 0
    /// Compared against the target's last 8 bytes.
    var suffixWord: UInt64 = 0
    var suffixMask: UInt64 = 0

    init(_ rule: RuleCode, arena: MatchArena) {
        // Only plain path globs filter on the whole target; basename, host, case-folded and v1
        // command-line matches look at other parts of it or at other text.
        guard rule.matcher == .path || rule.matcher == .exec, !rule.glob.caseInsensitive, rule.lineGlob < 0 else { return }
        let glob = rule.glob
        let prefix = Array(arena.bytes[Int(glob.prefixStart)..<Int(glob.prefixStart + glob.prefixCount)])
        let suffix = Array(arena.bytes[Int(glob.suffixStart)..<Int(glob.suffixStart + glob.suffixCount)])
        minLength = prefix.count + suffix.count
        // Build words the way they will be loaded from the target, so byte order does not matter.
        func word(_ bytes: [UInt8]) -> UInt64 {
            bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
        }
        if !prefix.isEmpty {
            let window = prefix.suffix(8)
            prefixOffset = prefix.count - window.count
            let padding = [UInt8](repeating: 0, count: 8 - window.count)
            prefixWord = word(Array(window) + padding)
            prefixMask = word([UInt8](repeating: 0xFF, count: window.count) + padding)
        }
        if !suffix.isEmpty {
            let window = suffix.suffix(8)
            let padding = [UInt8](repeating: 0, count: 8 - window.count)
            suffixWord = word(padding + Array(window))
            suffixMask = word(padding + [UInt8](repeating: 0xFF, count: window.count))
        }
    }

    @inline(__always)
    func admits(_ target: UnsafeBufferPointer<UInt8>) -> Bool {
        let count = target.count
        guard count >= minLength else { return false }
        // Targets shorter than a word skip the word checks; the full match decides.
        guard count >= 8, let base = target.baseAddress else { return true }
        let raw = UnsafeRawPointer(base)
        if prefixMask != 0,
           raw.loadUnaligned(fromByteOffset: prefixOffset, as: UInt64.self) & prefixMask != prefixWord {
            return false
        }
        if suffixMask != 0, raw.loadUnaligned(fromByteOffset: count - 8, as: UInt64.self) & suffixMask != suffixWord {
            return false
        }
        return true
    }
}

/// A rule compiled for one action kind: plain data pointing into the policy's `MatchArena`.
struct RuleCode: Sendable {
    enum Matcher: UInt8, Sendable {
        case any
        case path
        /// Exec targets are absolute program paths.
        case exec
        /// Also tries the program's basename: the pattern has no `/` (like `git` or `*install*`),
        /// and the command line is not known here.
        case execOrBasename
        case host
    }

    /// Index into `Policy.rules`.
    var ruleIndex: Int
    var decision: Decision
    var matcher: Matcher
    /// The rule's `errno:` (0 = the supervisor's usual one).
    var errno: Int32 = 0
    /// Indexes into the policy's side tables; -1 when the rule has no such part.
    var execIndex: Int32 = -1
    var conditionIndex: Int32 = -1
    /// v1 files: the exec rule's `target_glob` as a text glob over the exec's own command lines
    /// (an `ExecTables` code); the rule matches when the path or a line does.
    var lineGlob: Int32 = -1
    /// Ranges into `Policy.networks` and `Policy.ports`.
    var networkStart: Int32 = 0
    var networkCount: Int32 = 0
    var portStart: Int32 = 0
    var portCount: Int32 = 0
    var glob = GlobCode()
    var host = HostCode(form: .host, glob: GlobCode())
    /// Clean absolute scope in the byte arena; `scopeCount` -1 when the rule has none.
    var scopeStart: Int32 = 0
    var scopeCount: Int32 = -1

    init(ruleIndex: Int, decision: Decision, matcher: Matcher) {
        self.ruleIndex = ruleIndex
        self.decision = decision
        self.matcher = matcher
    }

    @inline(__always)
    func matches(_ kind: ActionKind, _ target: UnsafeBufferPointer<UInt8>, _ hostParts: HostTarget?,
                 _ arena: ArenaPointers) -> Bool {
        switch matcher {
        case .any:
            return true
        case .path, .exec:
            return glob.matches(target, arena)
        case .execOrBasename:
            if glob.matches(target, arena) { return true }
            var start = target.count
            while start > 0, target[start - 1] != UInt8(ascii: "/") { start -= 1 }
            guard start > 0 else { return false }  // no '/': the whole target was already tried
            return glob.matches(UnsafeBufferPointer(rebasing: target[start...]), arena)
        case .host:
            return host.matches(target, hostParts ?? HostTarget(target), arena)
        }
    }

    @inline(__always)
    func verdict(_ kind: ActionKind, _ target: UnsafeBufferPointer<UInt8>, _ arena: ArenaPointers) -> Verdict {
        switch decision {
        case .deny:
            return Verdict(decision: .deny, ruleIndex: ruleIndex, reason: .matchedRule, errno: errno)
        case .ask:
            return Verdict(decision: .ask, ruleIndex: ruleIndex, reason: .noApprover, errno: errno)
        case .allow, .log:
            if scopeCount >= 0, let path = Self.scopedPath(kind, target) {
                let scope = UnsafeBufferPointer(start: arena.bytes + Int(scopeStart), count: Int(scopeCount))
                if !PathLexical.isWithin(scope: scope, path: path) {
                    return Verdict(decision: .deny, ruleIndex: ruleIndex, reason: .escapesScope, errno: errno)
                }
            }
            return Verdict(decision: decision, ruleIndex: ruleIndex, reason: .matchedRule)
        }
    }

    /// The filesystem path a target names, if any: the target itself for path kinds, the part
    /// after `unix:` for a pathname socket. Abstract sockets and IP endpoints have no path.
    @inline(__always)
    static func scopedPath(_ kind: ActionKind, _ target: UnsafeBufferPointer<UInt8>) -> UnsafeBufferPointer<UInt8>? {
        if kind.targetIsPath { return target }
        guard HostTarget.hasUnixPrefix(target), target.count > 5, target[5] == UInt8(ascii: "/") else { return nil }
        return UnsafeBufferPointer(rebasing: target[5...])
    }
}

extension Policy {
    /// A place a file rule's pattern names, which a symlink there could take out of the rule's
    /// reach: rules match the path the kernel resolves, so `$HOME/.ssh/**` misses
    /// `~/dotfiles/ssh/id_rsa` when ~/.ssh is a link there (a dotfile manager's). The supervisor
    /// resolves each probe once per policy and decides a target under the resolved place as
    /// under the named one too (the stricter decision wins).
    public struct SymlinkProbe: Sendable, Equatable {
        /// An absolute path as the pattern names it (its literal start).
        public let path: String
        /// The pattern's next component when it is a one-level wildcard (`.*` in `$HOME/.*`):
        /// the directory's entries it matches are probed too. Nil: `path` alone.
        public let entries: String?
        /// The pattern goes on with `**` (`$HOME/.ssh/**`): links anywhere below `path` are
        /// probed too (a stow-managed ~/.ssh/id_rsa linked to ~/dotfiles/ssh/id_rsa).
        public let descends: Bool

        public init(path: String, entries: String?, descends: Bool = false) {
            self.path = path
            self.entries = entries
            self.descends = descends
        }
    }

    /// The probes of every rule that denies or asks about fs_read or fs_write (`SymlinkProbe`).
    public var symlinkProbes: [SymlinkProbe] {
        var probes: [SymlinkProbe] = []
        var seen = Set<String>()
        func add(_ probe: SymlinkProbe) {
            if seen.insert(probe.path + "\u{0}" + (probe.entries ?? "") + (probe.descends ? "\u{0}**" : "")).inserted { probes.append(probe) }
        }
        for rule in rules where !rule.decision.allows && (rule.actions.contains(.fsRead) || rule.actions.contains(.fsWrite)) {
            for pattern in rule.targetAlternatives where pattern.hasPrefix("/") {
                var literal: [Substring] = []
                var wildcard: Substring?
                for component in pattern.split(separator: "/", omittingEmptySubsequences: true) {
                    if component.contains(where: { "*?[]{}\\".contains($0) }) {
                        wildcard = component
                        break
                    }
                    literal.append(component)
                }
                guard !literal.isEmpty else { continue }
                let path = "/" + literal.joined(separator: "/")
                add(SymlinkProbe(path: path, entries: nil))
                if let wildcard {
                    add(wildcard == "**" ? SymlinkProbe(path: path, entries: nil, descends: true)
                                         : SymlinkProbe(path: path, entries: String(wildcard)))
                }
            }
        }
        return probes
    }

    /// Whether a rule that isn't `allow` could match a file path below `directory` while the
    /// directory itself is allowed: moving or renaming such a directory would carry protected
    /// files to an unprotected name. Only rules before the one that decides the directory can
    /// (first match wins), unless that rule might not cover every descendant. A pattern whose
    /// literal start lies inside the directory protects; one whose wildcards begin above it (a
    /// leading wildcard, `$HOME/{.config/git,…}/**` for `~/.config`) protects when some path
    /// below the directory could match it (`GlobOverlap`); a rule without a target protects.
    /// `kinds`: reads and writes for what a move carries away (a file whose reading is denied
    /// must not leave under a name whose reading isn't); writes alone for where a tree may
    /// appear (a rename's destination, a new symlink): what the agent puts there is its own.
    public func protectsDescendants(of directory: String, kinds: [ActionKind] = [.fsRead, .fsWrite]) -> Bool {
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        var below: String?
        for kind in kinds {
            var limit = rules.count
            if let index = evaluate(kind, target: directory).ruleIndex, Self.coversDescendants(rules[index], of: directory) {
                limit = index
            }
            for rule in rules[0..<limit] where !rule.decision.allows && rule.actions.contains(kind) {
                guard rule.expandedTargetGlob != nil, !rule.targetAlternatives.isEmpty else { return true }
                for pattern in rule.targetAlternatives {
                    switch Self.literalStart(of: pattern, against: prefix) {
                    case .inside: return true
                    case .apart: continue
                    case .above:
                        // The pattern's wildcards begin above the directory: whether one reaches
                        // below it is a question of overlap.
                        if below == nil { below = PolicyVariables.globEscaped(prefix) + "**" }
                        if GlobOverlap.overlap(pattern, below!, syntax: .path) { return true }
                    }
                }
            }
        }
        return false
    }

    private enum LiteralStart { case inside, above, apart }

    /// Where `pattern`'s literal start (the bytes before its first wildcard, brace or escape)
    /// lies against the directory `prefix` (ending in "/"): inside it, above it (a prefix of
    /// it, or not an absolute path at all), or apart from it. Bytes, no allocation: renames ask.
    private static func literalStart(of pattern: String, against prefix: String) -> LiteralStart {
        var p = pattern.utf8.makeIterator(), d = prefix.utf8.makeIterator()
        var first = true
        while let byte = p.next() {
            switch byte {
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["), UInt8(ascii: "\\"), UInt8(ascii: "{"):
                return .above
            default:
                if first && byte != UInt8(ascii: "/") { return .above }
                first = false
                guard let other = d.next() else { return .inside }
                if other != byte { return .apart }
            }
        }
        return d.next() == nil ? .inside : .above
    }

    /// Whether `rule`, which decides `directory`, decides every path below it too: it has no
    /// target, or its pattern ends in `/**`, or one of its alternatives is `X/**` with `X`
    /// matching the directory or one of its ancestors (`$HOME/{.config,.config/*/**}` for
    /// `~/.config/app`).
    static func coversDescendants(_ rule: PolicyRule, of directory: String) -> Bool {
        guard let glob = rule.expandedTargetGlob, !glob.hasSuffix("/**") else { return true }
        var ancestors: [String] = []
        var path = directory.hasSuffix("/") && directory.count > 1 ? String(directory.dropLast()) : directory
        while path.hasPrefix("/") {
            ancestors.append(path)
            guard let slash = path.lastIndex(of: "/"), path != "/" else { break }
            path = slash == path.startIndex ? "/" : String(path[..<slash])
        }
        for pattern in rule.targetAlternatives where pattern.hasSuffix("/**") {
            guard let stem = subtreeStem(pattern) else { continue }
            if ancestors.contains(where: { stem.matches($0) }) { return true }
        }
        return false
    }

    /// `X` of a pattern `X/**`, compiled once per pattern (renames ask on every call).
    private static func subtreeStem(_ pattern: String) -> Glob? {
        if let cached = stemCache.withLock({ $0[pattern] }) { return cached }
        let stem = try? Glob(String(pattern.dropLast(3)))
        stemCache.withLock { cache in
            if cache.count >= 4096 { cache.removeAll() } // policies are finite; reloads add more
            cache[pattern] = .some(stem)
        }
        return stem
    }
    private static let stemCache = Mutex<[String: Glob?]>([:])
}
