import AgentGatePolicy
import Foundation
import Glibc

/// A rule saved from an Always or Never answer: what was saved, where, and the policy read back
/// from that file (the caller puts it in force at once).
public struct PolicyAmendment: Sendable {
    public var proposal: RuleProposal
    /// The file written.
    public var path: String
    /// The policy file as it is now, loaded the way the session loads it.
    public var loaded: PolicyReloadSource.Loaded
    /// What people should know about how it was saved (the ask rule was no longer in the file,
    /// so the rule went at the end of the list), or nil.
    public var remark: String?
}

/// Why a rule was not saved. The answer still applies to the call that asked.
public struct PolicyAmendFailure: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Saves the rule an Always or Never answer makes into a policy file: the file that holds the
/// ask rule that matched, or the user's own policy file when that one can't or mustn't be
/// edited (an included file, the built-in policy, a file the user can't write).
///
/// Saving is atomic and safe against concurrent saves: under an exclusive `flock` of a lock
/// file beside the target, the file is read fresh, the rule inserted by `PolicyTextEdit`, the
/// result written to a temporary file, checked (it loads, and it decides the asked action as
/// the answer said), and renamed over the original only if that hasn't changed meanwhile.
public struct PolicyFileAmender: Sendable {
    /// The top-level policy file in force; nil for the built-in policy.
    public let policyPath: String?
    /// The user's own policy file (`$XDG_CONFIG_HOME/agentgate/policy.yaml`).
    public let userPolicyPath: String
    /// Reads and compiles a policy file exactly as the session did (variables and all).
    public let load: @Sendable (String) -> Result<PolicyReloadSource.Loaded, PolicyReloadFailure>

    /// How often a save starts over when the file changed while it was being written.
    static let attempts = 5
    /// How long a save waits for another one's lock.
    static let lockWaitSeconds = 10

    public init(policyPath: String?, userPolicyPath: String,
                load: @escaping @Sendable (String) -> Result<PolicyReloadSource.Loaded, PolicyReloadFailure>) {
        self.policyPath = policyPath
        self.userPolicyPath = userPolicyPath
        self.load = load
    }

    /// Where a rule goes.
    struct Destination {
        var path: String
        /// The ask rule to put the new rule before; nil for the end of the file's rules list.
        var before: PolicyRule?
        /// When the file is created: what it includes (the file in force, or the built-in policy).
        var creatingWithInclude: String?
    }

    /// The rule an answer would save and the file it would go into, for the prompt to show.
    public func preview(_ action: AskedAction, answer: AskAnswer, policy: Policy, askRuleIndex: Int?) -> RuleProposal {
        guard let decision = answer.savedDecision else {
            return RuleProposal(yaml: [], summary: "", refusal: "this answer saves no rule", file: "")
        }
        let breadth = Self.breadth(answer)
        switch destination(policy: policy, askRuleIndex: askRuleIndex) {
        case .failure(let failure):
            var proposal = RuleProposer.propose(for: action, decision: decision, breadth: breadth, policy: policy,
                                                askRuleIndex: askRuleIndex, file: userPolicyPath)
            proposal.refusal = proposal.refusal ?? failure.message
            return proposal
        case .success(let destination):
            return RuleProposer.propose(for: action, decision: decision, breadth: breadth, policy: policy,
                                        askRuleIndex: askRuleIndex, file: destination.path)
        }
    }

    /// Saves the rule, or says why not (the file is left as it was).
    public func save(_ action: AskedAction, answer: AskAnswer, policy: Policy,
                     askRuleIndex: Int?) -> Result<PolicyAmendment, PolicyAmendFailure> {
        guard let decision = answer.savedDecision else { return .failure(PolicyAmendFailure("this answer saves no rule")) }
        let destination: Destination
        switch self.destination(policy: policy, askRuleIndex: askRuleIndex) {
        case .failure(let failure): return .failure(failure)
        case .success(let found): destination = found
        }
        if destination.creatingWithInclude != nil, let failure = Self.makeDirectory(Self.directory(of: destination.path)) {
            return .failure(failure)
        }
        let file = Self.canonical(destination.path)
        let lockPath = Self.directory(of: file) + "/." + Self.name(of: file) + ".lock"
        let lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lock >= 0 else { return .failure(Self.systemFailure("cannot open the lock file \(lockPath)")) }
        defer { close(lock) }
        // Whoever else holds the lock (another save) is done within moments; never wait forever.
        let deadline = ContinuousClock.now + .seconds(Self.lockWaitSeconds)
        while flock(lock, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { return .failure(Self.systemFailure("cannot lock \(lockPath)")) }
            guard ContinuousClock.now < deadline else {
                return .failure(PolicyAmendFailure("\(lockPath) stayed locked for \(Self.lockWaitSeconds) s; the rule was not saved"))
            }
            usleep(10_000)
        }
        for _ in 0..<Self.attempts {
            switch attempt(action, decision: decision, breadth: Self.breadth(answer), policy: policy, destination) {
            case .success(let amendment): return .success(amendment)
            case .failure(let failure): return .failure(failure)
            case .changed: continue
            }
        }
        return .failure(PolicyAmendFailure("\(destination.path) kept changing while the rule was being saved; try again"))
    }

    private enum Attempt {
        case success(PolicyAmendment)
        case failure(PolicyAmendFailure)
        /// The file changed between reading and renaming: start over.
        case changed
    }

    /// One read, edit, check and rename, under the lock.
    private func attempt(_ action: AskedAction, decision: Decision, breadth: AskBreadth, policy: Policy,
                         _ destination: Destination) -> Attempt {
        let path = destination.path
        // A symlinked policy file is edited where it really is; the link stays a link.
        let file = Self.canonical(path)
        let original = Self.readFile(file)
        var text: String
        var current = policy
        var before: Int?
        var remark: String?
        var mode: mode_t = 0o600
        var originalBytes: [UInt8]?
        switch original {
        case .failure(let failure):
            return .failure(failure)
        case .success(nil):
            guard let include = destination.creatingWithInclude else {
                return .failure(PolicyAmendFailure("\(path) no longer exists; the rule was not saved"))
            }
            text = Self.newUserFile(including: include)
        case .success(let bytes?):
            originalBytes = bytes
            guard let decoded = String(validating: bytes, as: UTF8.self) else {
                return .failure(PolicyAmendFailure("\(path) is not UTF-8 text; the rule was not saved"))
            }
            text = decoded
            switch load(path) {
            case .failure(let failure):
                return .failure(PolicyAmendFailure("\(path) does not load, so no rule is saved into it: \(failure.description)"))
            case .success(let loaded):
                current = loaded.policy
            }
            var status = stat()
            if stat(file, &status) == 0 { mode = status.st_mode & 0o7777 }
            if let askRule = destination.before {
                if let found = Self.locate(askRule, in: current, file: path) {
                    before = found.line
                } else {
                    remark = "the ask rule \(askRule.displayID) is no longer in \(path), so the rule went at the end of its rules"
                }
            }
        }
        let proposal = RuleProposer.propose(for: action, decision: decision, breadth: breadth, policy: current,
                                            askRuleIndex: nil, file: path)
        if let refusal = proposal.refusal { return .failure(PolicyAmendFailure(refusal)) }
        let edited: PolicyTextEdit.Insertion
        do throws(PolicyTextEdit.Failure) {
            edited = try PolicyTextEdit.insert(proposal.yaml, into: text, beforeRuleAt: before)
        } catch {
            return .failure(PolicyAmendFailure("\(path): \(error.message)"))
        }
        let bytes = Array(edited.text.utf8)
        let temporary: String
        let descriptor: Int32
        switch Self.writeTemporary(bytes, beside: file, mode: mode) {
        case .failure(let failure): return .failure(failure)
        case .success(let written): (temporary, descriptor) = written
        }
        defer { close(descriptor) }
        var keep = false
        defer { if !keep { unlink(temporary) } }
        if let failure = check(temporary, action: action, decision: decision, proposal: proposal) { return .failure(failure) }
        // Someone else (an editor, not another save: those take the lock) may have written meanwhile.
        guard case .success(let now) = Self.readFile(file), now == originalBytes else { return .changed }
        // The temporary name must still be the file written and checked, holding what was written.
        guard Self.isSameFile(descriptor, temporary), Self.contents(of: descriptor) == bytes else {
            return .failure(PolicyAmendFailure("the temporary file \(temporary) was changed by someone else; the rule was not saved"))
        }
        guard rename(temporary, file) == 0 else { return .failure(Self.systemFailure("cannot replace \(path)")) }
        keep = true
        Self.syncDirectory(Self.directory(of: file))
        switch load(path) {
        case .failure(let failure):
            return .failure(PolicyAmendFailure("\(path) was saved but does not load again: \(failure.description)"))
        case .success(let loaded):
            return .success(.init(proposal: proposal, path: path, loaded: loaded, remark: remark))
        }
    }

    /// Whether the edited file, still under its temporary name, loads and decides the asked
    /// action as the answer said.
    private func check(_ temporary: String, action: AskedAction, decision: Decision, proposal: RuleProposal) -> PolicyAmendFailure? {
        switch load(temporary) {
        case .failure(let failure):
            var message = "with the rule the policy would not load, so it was not saved: \(failure.description)"
            if failure.description.contains("may only be set in the top-level policy") {
                // The user's own file includes the policy in force, which sets what only a
                // top-level file may.
                message += " (the policy in force sets what only a top-level file may, so your own policy file can't include it: "
                    + "make that file writable so rules are saved into it, or move those settings into your own file)"
            }
            return PolicyAmendFailure(message)
        case .success(let loaded):
            let verdict = Self.decide(action, in: loaded.policy)
            let wanted = decision.allows ? verdict.decision.allows : verdict.decision == .deny
            guard wanted else {
                return PolicyAmendFailure("with the rule \(proposal.summary) the policy would still decide \(verdict.decision.name) "
                                          + "for this action, so it was not saved")
            }
            return nil
        }
    }

    /// The decision on the asked action, as the supervisor makes it.
    static func decide(_ action: AskedAction, in policy: Policy) -> Verdict {
        let exec = action.kind == .exec ? ExecDetails(argv: action.argv ?? [action.target], programs: [action.target]) : nil
        return policy.decide(action.kind, target: action.target, exec: exec)
    }

    /// The file a rule goes into: see the type's documentation.
    func destination(policy: Policy, askRuleIndex: Int?) -> Result<Destination, PolicyAmendFailure> {
        let askRule = askRuleIndex.flatMap { policy.rules.indices.contains($0) ? policy.rules[$0] : nil }
        let user = Self.canonical(userPolicyPath)
        if let top = policyPath {
            let inTop = askRule.map { Self.canonical($0.file) == Self.canonical(top) } ?? true
            if inTop, editable(top) { return .success(Destination(path: top, before: askRule)) }
            if Self.canonical(top) == user {
                guard editable(top) else {
                    return .failure(PolicyAmendFailure("your policy file \(top) is not writable, so no rule is saved"))
                }
                // The ask rule is in an included file: the user's own rules come before it.
                return .success(Destination(path: top, before: nil))
            }
        }
        let included = policyPath ?? Policy.builtInIncludeName
        guard FileManager.default.fileExists(atPath: userPolicyPath) else {
            return .success(Destination(path: userPolicyPath, before: nil, creatingWithInclude: included))
        }
        // The user's file exists but is not in force: use it only if it already builds on the policy in force.
        guard case .success(let loaded) = load(userPolicyPath) else {
            return .failure(PolicyAmendFailure("your policy file \(userPolicyPath) does not load, so no rule is saved into it"))
        }
        let includesInForce = policyPath.map { top in loaded.policy.files.contains { Self.canonical($0) == Self.canonical(top) } }
            ?? loaded.policy.rules.contains { $0.file == Policy.builtInDefaultSource }
        guard includesInForce, editable(userPolicyPath) else {
            return .failure(PolicyAmendFailure(
                "the rule can't go into \(policyPath ?? "the built-in policy") (\(policyPath == nil ? "built in" : askRule != nil ? "the ask rule is in an included file" : "not writable")), "
                + "and your own policy file \(userPolicyPath) does not include it; add include: [\"\(included)\"] to it "
                + "(or use it as your policy) to save rules from asks"))
        }
        return .success(Destination(path: userPolicyPath, before: nil))
    }

    /// The rule in a freshly loaded file that is the ask rule: by id, else by what it matches.
    static func locate(_ rule: PolicyRule, in policy: Policy, file: String) -> PolicyRule? {
        let inFile = policy.rules.filter { canonical($0.file) == canonical(file) && $0.decision == .ask }
        if let id = rule.id { return inFile.first { $0.id == id } }
        let same = inFile.filter {
            $0.id == nil && $0.actions == rule.actions && $0.targetGlob == rule.targetGlob && $0.argv == rule.argv
                && $0.commands == rule.commands && $0.networks == rule.networks && $0.ports == rule.ports
                && $0.conditions == rule.conditions && $0.reason == rule.reason
        }
        return same.min { abs($0.line - rule.line) < abs($1.line - rule.line) }
    }

    static func newUserFile(including include: String) -> String {
        """
        # Your AgentGate policy. Rules saved from asks (Always / Never) go here; it builds on the
        # policy that was in force when the first one was saved. Your rules come first, then the
        # included policy's (first match wins).
        version: 2
        include: [\(YAMLScalar.quoted(include))]
        rules:

        """
    }

    static func breadth(_ answer: AskAnswer) -> AskBreadth {
        switch answer {
        case .always(let breadth), .never(let breadth): breadth
        case .allowOnce, .deny: .usual
        }
    }

    // MARK: Files

    /// The file's bytes; nil when it doesn't exist.
    static func readFile(_ path: String) -> Result<[UInt8]?, PolicyAmendFailure> {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            return errno == ENOENT ? .success(nil) : .failure(systemFailure("cannot read \(path)"))
        }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return .failure(systemFailure("cannot read \(path)")) }
            if count == 0 { return .success(bytes) }
            bytes += buffer[0..<count]
        }
    }

    /// Whether `path` (not followed) is the file open as `descriptor`, with no other name.
    static func isSameFile(_ descriptor: Int32, _ path: String) -> Bool {
        var open = stat(), named = stat()
        guard fstat(descriptor, &open) == 0, lstat(path, &named) == 0 else { return false }
        return open.st_dev == named.st_dev && open.st_ino == named.st_ino && named.st_nlink == 1
    }

    /// The whole content of an open file, read from its start.
    static func contents(of descriptor: Int32) -> [UInt8]? {
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var offset: off_t = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, offset) }
            if count < 0, errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { return bytes }
            bytes += buffer[0..<count]
            offset += off_t(count)
        }
    }

    /// Writes `bytes` to a new file beside `path` with `mode`, synced; returns its path and the
    /// descriptor it is open on (read-write, for checking it before the rename).
    static func writeTemporary(_ bytes: [UInt8], beside path: String, mode: mode_t) -> Result<(String, Int32), PolicyAmendFailure> {
        let directory = directory(of: path)
        for attempt in 0..<16 {
            let temporary = "\(directory)/.\(name(of: path)).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).\(attempt).tmp"
            let descriptor = open(temporary, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
            if descriptor < 0, errno == EEXIST { continue }
            guard descriptor >= 0 else { return .failure(systemFailure("cannot create a file in \(directory)")) }
            func fail(_ what: String) -> Result<(String, Int32), PolicyAmendFailure> {
                let failure = systemFailure(what)
                unlink(temporary)
                close(descriptor)
                return .failure(failure)
            }
            _ = fchmod(descriptor, mode)
            var written = 0
            while written < bytes.count {
                let count = bytes[written...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
                if count < 0, errno == EINTR { continue }
                guard count > 0 else { return fail("cannot write \(temporary)") }
                written += count
            }
            guard fsync(descriptor) == 0 else { return fail("cannot sync \(temporary)") }
            return .success((temporary, descriptor))
        }
        return .failure(PolicyAmendFailure("cannot create a temporary file in \(directory)"))
    }

    static func syncDirectory(_ directory: String) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return }
        _ = fsync(descriptor)
        close(descriptor)
    }

    /// Creates the directory and its missing parents (0700).
    static func makeDirectory(_ directory: String) -> PolicyAmendFailure? {
        var status = stat()
        if stat(directory, &status) == 0 { return nil }
        if let failure = makeDirectory(Self.directory(of: directory)) { return failure }
        guard mkdir(directory, 0o700) == 0 || errno == EEXIST else { return systemFailure("cannot create \(directory)") }
        return nil
    }

    /// Whether the user may replace the file: write it, and create and rename in its directory.
    /// Whether a rule may be saved into `path`: the user can replace it. (The lock and
    /// temporary files beside it, `.NAME.…`, are off limits to the agent as the file is: see
    /// `SupervisorCore.protectedReason`.)
    func editable(_ path: String) -> Bool { Self.isWritable(path) }

    static func isWritable(_ path: String) -> Bool {
        access(path, W_OK) == 0 && access(directory(of: path), W_OK | X_OK) == 0
    }

    static func canonical(_ path: String) -> String {
        guard path.hasPrefix("/") else { return path }
        return URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    static func name(of path: String) -> String {
        path.lastIndex(of: "/").map { String(path[path.index(after: $0)...]) } ?? path
    }

    static func systemFailure(_ what: String) -> PolicyAmendFailure {
        PolicyAmendFailure("\(what): \(String(cString: strerror(errno)))")
    }
}
