/// One rule of a policy, as written in the policy file.
public struct PolicyRule: Sendable, Equatable {
    /// The action the rule applies to; nil means every action.
    public let action: ActionKind?
    /// `match.target_glob` as written (variables unexpanded); nil means every target.
    public let targetGlob: String?
    public let decision: Decision
    /// `scope` as written (variables unexpanded); only allow rules may have one.
    public let scope: String?
    /// 1-based line of the rule in the policy file.
    public let line: Int
    /// 1-based column of the rule in the policy file.
    public let column: Int
    /// `targetGlob` after variable expansion: the pattern actually matched.
    public let expandedTargetGlob: String?
    /// `scope` after variable expansion and lexical cleaning: the directory actually enforced.
    public let expandedScope: String?

    public init(action: ActionKind?, targetGlob: String?, decision: Decision, scope: String?,
                line: Int, column: Int, expandedTargetGlob: String?, expandedScope: String?) {
        self.action = action
        self.targetGlob = targetGlob
        self.decision = decision
        self.scope = scope
        self.line = line
        self.column = column
        self.expandedTargetGlob = expandedTargetGlob
        self.expandedScope = expandedScope
    }
}

/// A loaded policy: ordered rules (first match wins) and a default decision.
///
/// Load with `Policy.load(path:variables:)` or `Policy.parse(yaml:source:variables:)`; a policy
/// that has any error does not load at all. Evaluation is pure, thread-safe and, for clean
/// absolute targets, allocation-free.
public struct Policy: Sendable {
    /// The decision when no rule matches.
    public let defaultDecision: Decision
    /// The rules in file order; `Verdict.ruleIndex` indexes this array.
    public let rules: [PolicyRule]
    /// Where the policy came from (file path or the `source` given to `parse`).
    public let source: String
    /// Routes the supervisor can't see through that this policy explicitly reopens.
    public let allowedUnsupervised: Set<UnsupervisedRoute>
    /// Compiled rules grouped by action kind: the rules for kind `k` are
    /// `compiled[kindStart[k] ..< kindStart[k + 1]]`, in file order.
    let compiled: [RuleCode]
    /// Quick-reject filters, parallel to `compiled`: the loop scans these small records and
    /// only looks at a full `RuleCode` when its filter passes.
    let filters: [RuleFilter]
    let kindStart: [Int]
    let arena: MatchArena

    init(defaultDecision: Decision, rules: [PolicyRule], source: String,
         compiledByKind: [[RuleCode]], arena: MatchArena, allowedUnsupervised: Set<UnsupervisedRoute> = []) {
        self.allowedUnsupervised = allowedUnsupervised
        self.defaultDecision = defaultDecision
        self.rules = rules
        self.source = source
        var starts = [0]
        for group in compiledByKind { starts.append(starts[starts.count - 1] + group.count) }
        let compiled = compiledByKind.flatMap { $0 }
        self.compiled = compiled
        self.filters = compiled.map { RuleFilter($0, arena: arena) }
        self.kindStart = starts
        self.arena = arena
    }

    /// Decides one action. `target` is an absolute path for `exec`/`fs_read`/`fs_write` (already
    /// resolved by the supervisor) or a network target such as `1.2.3.4:443`, `[::1]:80` or
    /// `unix:/run/x.sock` for `net_egress`.
    public func evaluate(_ kind: ActionKind, target: String) -> Verdict {
        if let verdict = target.utf8.withContiguousStorageIfAvailable({ evaluate(kind, utf8: $0) }) {
            return verdict
        }
        var contiguous = target
        return contiguous.withUTF8 { evaluate(kind, utf8: $0) }
    }

    /// Decides one action whose target is given as UTF-8 bytes (e.g. read straight from the
    /// tracee), without building a String.
    ///
    /// An absolute path that is not in clean form (`//`, `.`, `..` segments, trailing `/`) is
    /// cleaned lexically first, so `/home/u/proj/../.ssh/id_rsa` meets the `~/.ssh` rule; only
    /// that unusual case allocates. Symlinks are not resolved here.
    public func evaluate(_ kind: ActionKind, utf8 target: UnsafeBufferPointer<UInt8>) -> Verdict {
        if kind.targetIsPath, target.first == UInt8(ascii: "/"), !PathLexical.isCleanAbsolute(target) {
            var cleaned = PathLexical.clean(String(decoding: target, as: UTF8.self))
            return cleaned.withUTF8 { evaluateClean(kind, $0) }
        }
        return evaluateClean(kind, target)
    }

    private func evaluateClean(_ kind: ActionKind, _ target: UnsafeBufferPointer<UInt8>) -> Verdict {
        let kindIndex = Int(kind.rawValue)
        let first = kindStart[kindIndex]
        let end = kindStart[kindIndex + 1]
        // Network targets are split into host and port once, not once per rule.
        let hostParts = kind == .netEgress ? HostTarget(target) : nil
        return filters.withUnsafeBufferPointer { filters in
            compiled.withUnsafeBufferPointer { rules in
                arena.withPointers { arena in
                    var i = first
                    while i < end {
                        if filters[i].admits(target), rules[i].matches(kind, target, hostParts, arena) {
                            return rules[i].verdict(kind, target, arena)
                        }
                        i += 1
                    }
                    return Verdict(decision: defaultDecision, ruleIndex: nil,
                                   reason: defaultDecision == .ask ? .noApprover : .defaultDecision)
                }
            }
        }
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
        // Only plain path globs filter on the whole target; basename, host and case-folded
        // matches look at other parts of it.
        guard rule.matcher == .path || rule.matcher == .exec, !rule.glob.caseInsensitive else { return }
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
            return Verdict(decision: .deny, ruleIndex: ruleIndex, reason: .matchedRule)
        case .ask:
            return Verdict(decision: .ask, ruleIndex: ruleIndex, reason: .noApprover)
        case .allow:
            if scopeCount >= 0, let path = Self.scopedPath(kind, target) {
                let scope = UnsafeBufferPointer(start: arena.bytes + Int(scopeStart), count: Int(scopeCount))
                if !PathLexical.isWithin(scope: scope, path: path) {
                    return Verdict(decision: .deny, ruleIndex: ruleIndex, reason: .escapesScope)
                }
            }
            return Verdict(decision: .allow, ruleIndex: ruleIndex, reason: .matchedRule)
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
    /// Whether a rule that isn't `allow` could match a file path below `directory` while the
    /// directory itself is allowed: moving or renaming such a directory would carry protected
    /// files to an unprotected name. Only rules before the one that decides the directory can
    /// (first match wins), unless that rule might not cover every descendant. Rules whose literal
    /// prefix can't be told apart (leading wildcards, no target) count as protecting.
    public func protectsDescendants(of directory: String) -> Bool {
        let prefix = directory.hasSuffix("/") ? directory : directory + "/"
        for kind in [ActionKind.fsRead, .fsWrite] {
            var limit = rules.count
            if let index = evaluate(kind, target: directory).ruleIndex,
               rules[index].expandedTargetGlob.map({ $0.hasSuffix("/**") }) ?? true {
                // This rule (no target, or ending in /**) decides every descendant like the directory.
                limit = index
            }
            for rule in rules[0..<limit] where rule.decision != .allow && (rule.action == nil || rule.action == kind) {
                guard let glob = rule.expandedTargetGlob else { return true }
                let literal = String(glob.prefix { !"*?[\\{".contains($0) })
                if !literal.hasPrefix("/") || literal.hasPrefix(prefix) { return true }
            }
        }
        return false
    }
}
