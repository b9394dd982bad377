import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Logging
import Synchronization

/// State shared by every notification thread. Immutable after start, apart from the few
/// Mutex-guarded tables; the audit writer's lock is never taken before a response is sent.
final class SupervisorCore: Sendable {
    /// Whether the session's command has yet to make its first exec (`claimSessionCommandExec`).
    private let sessionCommandExecPending = Atomic<Bool>(true)

    /// True exactly once: for the first exec notification of the session, which is the command's
    /// own (nothing else runs before it). `agentgate-supervise` reports that one's failure itself.
    func claimSessionCommandExec() -> Bool {
        sessionCommandExecPending.exchange(false, ordering: .relaxed)
    }

    let listener: Listener
    /// The supervisor's own diagnostics (see `StandardErrorLogHandler`).
    let log: Logger
    let table: SyscallTable
    /// The policy in force: read through a thread's `ThreadScratch.policy(in:)`, and kept by
    /// each `TrappedCall` for the whole call.
    let policies: PolicyInForce
    let processes: ProcessTable
    /// Process context for `when:` rules.
    let contexts: ProcessContexts
    let recorder: DecisionRecorder
    let injection: FDInjection
    let supervisorPID: pid_t
    let supervisorPGID: pid_t
    let blocking: BlockingOperations
    let images = ImageVerifier()
    /// Holds each allowed exec at its new image's first instruction until the image is checked.
    let execTracer = ExecTracer()
    /// Calls paused by an `ask`, waiting for a person.
    let asks = AskBroker(standby: ReceiverStandby(capacity: SupervisorCore.askCapacity))
    /// The most calls that may wait for a person at once (each holds a receiver thread).
    static let askCapacity = 16
    /// Held around every path mutation the supervisor performs and around a unix bind's
    /// resolve-and-bind: the agent can only reshape paths through those mutations, so while it
    /// is held the path a bind names resolves the way it was decided.
    let namespaceLock = Mutex<Void>(())
    /// Set once any agent process may have changed its credentials (setuid, capset, a new user
    /// namespace…). From then on every call performed on the agent's behalf first checks that
    /// the agent has at least the supervisor's privileges.
    private let credentialsMayDiverge = Atomic<Bool>(false)
    private let supervisorCredentials: ProcStatus
    private let supervisorUserNamespace: String?
    /// An fd installed in a thread whose open was interrupted before NOTIF_SEND, keyed by thread,
    /// with the syscall it answered: the restarted syscall gets the same fd number back.
    private let leakedFDs = Mutex<[pid_t: LeakedFD]>([:])

    struct LeakedFD {
        let fd: Int32
        let number: Int32
        let args: [UInt64]
    }

    /// CAP_NET_ADMIN, CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL: withheld from netlink sockets (see
    /// SocketCreationHandler.socket).
    static let networkAdminCapabilities: [Int32] = [12, 29, 30]

    /// Runs `body` with `capabilities` lowered from the calling thread's effective set. If they
    /// can't be lowered, `body` doesn't run and the result is -EPERM.
    static func withoutCapabilities(_ capabilities: [Int32], _ body: () -> Int) -> Int {
        var saved = agentgate_capability_state()
        let lowered = capabilities.withUnsafeBufferPointer {
            agentgate_lower_capabilities($0.baseAddress, Int32($0.count), &saved)
        }
        guard lowered == 0 else { Glibc.errno = EPERM; return -1 }
        let errnoSaved: Int32
        let result = body()
        errnoSaved = Glibc.errno
        if agentgate_restore_capabilities(&saved) != 0 {
            // Never expected (the permitted set is unchanged); never carry on silently lowered.
            // Written directly, not logged: the process aborts next.
            writeStandardError("agentgate: cannot restore a receiver thread's capabilities; ending the session\n")
            abort()
        }
        Glibc.errno = errnoSaved
        return result
    }

    /// The agent processes the supervisor connected unix sockets for.
    let unixPeers = UnixPeers()
    /// The supervisor holds CAP_SYS_ADMIN, so it may name the agent as the sender of what it
    /// sends (SCM_CREDENTIALS with the agent's pid).
    let canClaimAgentPids: Bool
    /// The supervisor (and so an agent with its credentials) holds CAP_NET_ADMIN or the audit
    /// capabilities: netlink sockets are then created without them (see SocketCreationHandler.socket).
    let holdsNetworkAdminCapabilities: Bool
    /// The supervisor holds CAP_SYS_PTRACE, so it can read the memory of a process that made
    /// itself non-dumpable.
    let readsUndumpableMemory: Bool

    /// The supervisor's own files (audit database, its WAL/SHM/journal and fallback, the policy):
    /// the agent may neither read nor change them.
    let protectedFiles: [String]
    /// Directories nothing in the session may write to (AgentGate's configuration, where
    /// policies are found without being named), as given and as resolved.
    let protectedDirectories: [String]
    /// Directories whose node itself (mode, owner, times, attributes, removal) the agent may not
    /// change: the audit database's.
    let protectedDirectoryNodes: [String]
    /// `DIR/.NAME.` for each protected file `DIR/NAME`: the lock and temporary files a rule
    /// saved from an ask goes through (`PolicyFileAmender`) are off limits as the file is, so
    /// the agent can't swap the new policy before it is renamed into place.
    let protectedSiblingPrefixes: [String]

    /// The filter was installed with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19): once a
    /// notification is received, only a fatal signal ends the agent's wait for the answer, so a
    /// signal the call itself raises (SIGPIPE) can be queued before the answer, as the kernel
    /// queues it before the call returns.
    let waitsKillably: Bool

    /// The session's DNS capture (its forwarder and the names the agent resolved), when the
    /// session has one.
    let dns: DNSCapture?
    /// The session wanted its DNS captured and could not: DNS is then refused, never let through
    /// uncaptured (`--no-dns-capture` is the way to let it through, decided by address).
    let refusesDNS: Bool

    /// The node of the session's hook socket (HookServer.listenPath): the one name in the
    /// control directory the agent may connect to, for its hooks.
    let hookSocket: ImageIdentity?

    init(listener: Listener, table: SyscallTable, policy: Policy, policySHA256: String? = nil,
         log: Logger = .supervisorStandardError(), recorder: DecisionRecorder,
         injection: FDInjection, supervisorPID: pid_t, protectedFiles: [String] = [], protectedDirectories: [String] = [],
         protectedDirectoryNodes: [String] = [], agentName: String = "", waitsKillably: Bool = true, dns: DNSCapture? = nil, refusesDNS: Bool = false,
         hookSocket: ImageIdentity? = nil, blocking: BlockingOperations = BlockingOperations()) {
        self.waitsKillably = waitsKillably
        self.hookSocket = hookSocket
        self.dns = dns
        self.refusesDNS = refusesDNS && dns == nil
        self.log = log
        self.contexts = ProcessContexts(agent: agentName, supervisorPID: supervisorPID)
        self.processes = ProcessTable(contexts: contexts)
        self.protectedFiles = protectedFiles
        self.protectedSiblingPrefixes = protectedFiles.compactMap { file in
            guard let slash = file.lastIndex(of: "/") else { return nil }
            return String(file[...slash]) + "." + file[file.index(after: slash)...] + "."
        }
        self.protectedDirectories = protectedDirectories
        self.protectedDirectoryNodes = protectedDirectoryNodes
        self.listener = listener
        self.table = table
        self.blocking = blocking
        blocking.attach(listener)
        self.policies = PolicyInForce(policy: policy, sha256: policySHA256)
        self.recorder = recorder
        self.injection = injection
        self.supervisorPID = supervisorPID
        self.supervisorPGID = getpgrp()
        self.supervisorCredentials = ProcStatus(tid: supervisorPID)
        self.canClaimAgentPids = supervisorCredentials.capEff & (1 << 21) != 0
        self.holdsNetworkAdminCapabilities = supervisorCredentials.capEff & (1 << 12 | 1 << 29 | 1 << 30) != 0
        self.readsUndumpableMemory = supervisorCredentials.capEff & (1 << 19) != 0
        self.supervisorUserNamespace = ProcessTable.readLink("/proc/self/ns/user")
    }

    /// The verdict for reaching `target`: the policy's (`Policy.evaluateEgress`, which
    /// `agentgate check` uses too), and a socket inside a protected directory can't be used to
    /// act through whatever the policy says.
    func egressVerdict(_ target: String, _ n: Notification, policy: Policy, resolvedName: String? = nil) -> Verdict {
        var source = AgentContextSource(core: self, tid: n.tid, notificationID: n.id)
        let verdict = dns != nil && !target.hasPrefix("unix:")
            ? policy.evaluateConnection(addressTarget: target, resolvedName: resolvedName, contextSource: &source)
            : policy.evaluateEgress(target: target, contextSource: &source)
        guard verdict.letsCallProceed || verdict.decision == .ask, target.hasPrefix("unix:/"),
              protectedReason(String(target.dropFirst(5)), isWrite: true, policy: policy) != nil else {
            return verdict
        }
        return Verdict(decision: .deny, ruleIndex: nil, reason: .matchedRule)
    }

    /// The policy's verdict on one action of the process behind `n`. The process context (for
    /// rules with `when:`) is read only if such a rule is reached.
    /// `aliases`: a file target under a place a symlink leads to is decided under the place's
    /// name in the policy too, the stricter decision winning (`SymlinkAliases`).
    func decide(_ kind: ActionKind, target: String, tid: pid_t, id: UInt64, exec: ExecDetails? = nil, policy: Policy,
                aliases: SymlinkAliases? = nil) -> Verdict {
        var source = AgentContextSource(core: self, tid: tid, notificationID: id)
        let verdict = policy.evaluate(kind, target: target, exec: exec, contextSource: &source)
        guard let aliases, !aliases.isEmpty, kind == .fsRead || kind == .fsWrite else { return verdict }
        return aliases.stricter(verdict, target: target) { policy.evaluate(kind, target: $0, exec: nil, contextSource: &source) }
    }

    /// Why a resolved path is off limits whatever the policy says, or nil.
    func protectedReason(_ target: String, isWrite: Bool, policy: Policy) -> String? {
        if protectedFiles.contains(target) { return "the supervisor's audit database, decision log and policy are off limits" }
        if protectedSiblingPrefixes.contains(where: { target.hasPrefix($0) && !target[target.index(target.startIndex, offsetBy: $0.count)...].contains("/") }) {
            return "the files a policy is saved through are off limits"
        }
        if isWrite && protectedDirectories.contains(where: { PathLexical.isWithin(target, root: $0) }) {
            return "AgentGate's configuration and control sockets are off limits"
        }
        if isWrite && protectedDirectoryNodes.contains(target) {
            return "the audit database's directory is off limits (its files stay the supervisor's)"
        }
        if isWrite && PathLexical.isWithin(target, root: "/sys/fs/cgroup") {
            return policy.allowedUnsupervised.contains(.cgroups) ? nil : "cgroup writes could end or freeze the supervisor; denied by default"
        }
        if isWrite && Self.isKernelSetting(target) && !policy.allowedUnsupervised.contains(.kernel) {
            return Self.kernelSettingReason
        }
        return nil
    }

    /// Kernel settings (/proc/sys, /sys, /proc/sysrq-trigger): with some of them a root agent
    /// has the kernel start a program of its choosing as root, outside the session and every
    /// decision (core_pattern's `|helper`, modprobe, uevent_helper, a binfmt_misc interpreter);
    /// found by review on 2026-12-07 (a core_pattern helper read a denied file).
    static func isKernelSetting(_ target: String) -> Bool {
        PathLexical.isWithin(target, root: "/proc/sys") || PathLexical.isWithin(target, root: "/sys")
            || target == "/proc/sysrq-trigger"
    }

    static let kernelSettingReason = "kernel settings (/proc/sys, /sys) can make the kernel run a program outside the session; "
        + "denied by default (the `kernel` route)"

    /// Whether a directory holds one of the supervisor's files (moving it would expose them).
    func holdsProtectedFile(_ directory: String) -> Bool {
        protectedFiles.contains { PathLexical.isWithin($0, root: directory) }
            || protectedDirectories.contains { PathLexical.isWithin($0, root: directory) }
    }

    /// Whether a set*id call leaves the caller's ids as they are, assuming they still equal the
    /// supervisor's (true until the first real change, which sets `credentialsMayDiverge`).
    /// Only register values are looked at: setgroups' list and capset's data live in memory, so
    /// those always count as changes (but setgroups(0, …) with no supplementary groups).
    func isCredentialNoOp(name: String, _ n: Notification) -> Bool {
        let mine = supervisorCredentials
        func unchanged(_ ids: [UInt32], _ args: [Int]) -> Bool {
            guard ids.count == 4, Set(ids).count == 1 else { return false }
            return args.allSatisfy { index in
                let value = UInt32(truncatingIfNeeded: n.arg(index))
                return value == UInt32.max || value == ids[0] // -1 keeps the id
            }
        }
        switch name {
        case "setuid", "setfsuid": return unchanged(mine.uids, [0])
        case "setreuid": return unchanged(mine.uids, [0, 1])
        case "setresuid": return unchanged(mine.uids, [0, 1, 2])
        case "setgid", "setfsgid": return unchanged(mine.gids, [0])
        case "setregid": return unchanged(mine.gids, [0, 1])
        case "setresgid": return unchanged(mine.gids, [0, 1, 2])
        case "setgroups": return n.arg(0) == 0 && mine.groups.isEmpty
        default: return false
        }
    }

    func noteCredentialChange() {
        credentialsMayDiverge.store(true, ordering: .sequentiallyConsistent)
        contexts.invalidateAll()
    }

    /// A thread acting as the agent (see `actAsAgent`); `restoreIdentity` ends it.
    struct SavedIdentity {}

    /// Makes the calling thread act with the credentials of the agent's thread `tid` (its uids,
    /// gids, groups and effective capabilities), when they differ from the supervisor's, for a
    /// call performed on the agent's behalf: it then gets exactly the agent's rights, and files
    /// and sockets record the agent's ids. Never act with more privilege than the agent has.
    /// Reading the agent's memory and taking its fds still use the supervisor's own rights.
    /// Returns what `restoreIdentity` needs, or why the supervisor can't act for the agent (its
    /// credentials are unreadable, it is in another user namespace, or the supervisor can't
    /// take on another identity).
    ///
    /// `status`: the agent's /proc/TID/status when the caller has read it for this notification;
    /// the status used is returned, for the caller's other needs (its umask).
    func actAsAgent(tid: pid_t, status: ProcStatus? = nil) -> (saved: SavedIdentity?, refusal: String?, status: ProcStatus?) {
        guard credentialsMayDiverge.load(ordering: .sequentiallyConsistent) else { return (nil, nil, status) }
        let agent = status ?? ProcStatus(tid: tid)
        let mine = supervisorCredentials
        guard agent.readOK, agent.uids.count == 4, agent.gids.count == 4, mine.uids.count == 4, mine.gids.count == 4 else {
            return (nil, "agent credentials unreadable", agent)
        }
        if ProcessTable.readLink("/proc/\(tid)/ns/user") != supervisorUserNamespace { return (nil, "agent is in another user namespace", agent) }
        if agent.uids == mine.uids && agent.gids == mine.gids && Set(agent.groups) == Set(mine.groups)
            && mine.capEff & ~agent.capEff == 0 {
            return (nil, nil, agent)
        }
        guard agent.groups.count <= 256 else { return (nil, "agent has more supplementary groups than the supervisor can take on", agent) }
        var wanted = agentgate_thread_credentials()
        wanted.ruid = agent.uids[0]; wanted.euid = agent.uids[1]; wanted.suid = agent.uids[2]; wanted.fsuid = agent.uids[3]
        wanted.rgid = agent.gids[0]; wanted.egid = agent.gids[1]; wanted.sgid = agent.gids[2]; wanted.fsgid = agent.gids[3]
        wanted.group_count = UInt32(agent.groups.count)
        withUnsafeMutableBytes(of: &wanted.groups) { raw in
            for (index, group) in agent.groups.enumerated() { raw.storeBytes(of: group, toByteOffset: index * 4, as: UInt32.self) }
        }
        wanted.effective = (UInt32(truncatingIfNeeded: agent.capEff), UInt32(truncatingIfNeeded: agent.capEff >> 32))
        let rc = agentgate_thread_assume_credentials(&wanted)
        guard rc == 0 else {
            return (nil, "the agent's credentials differ from the supervisor's, which can't take them on (errno \(-rc))", agent)
        }
        return (SavedIdentity(), nil, agent)
    }

    /// Whether a unix socket message sent by the calling thread may name the agent's pid as its
    /// sender: the thread holds CAP_SYS_ADMIN, which a thread acting as an agent without it
    /// (`actAsAgent`) has given up (the kernel would then refuse the message, EPERM).
    var callingThreadCanClaimAgentPids: Bool {
        var identity = agentgate_thread_credentials()
        guard agentgate_thread_assumed_credentials(&identity) == 1 else { return canClaimAgentPids }
        return identity.effective.0 & (1 << 21) != 0
    }

    /// Gives the calling thread back its own identity after `actAsAgent`.
    func restoreIdentity(_ saved: SavedIdentity?) {
        guard saved != nil else { return }
        agentgate_thread_restore_credentials()
    }

    enum PrepareOutcome {
        /// Resolved: the name the object is decided and recorded under (see `objectName`; for a
        /// directory entry, the resolved path of the entry).
        case prepared(name: String)
        case failed(errno: Int32)
        /// The path leads into a process the agent may not reach: the supervisor (anything under
        /// its /proc entry), or a process outside the session (its magic links, its memory and
        /// environment, or any write under its /proc entry).
        case refused(target: String, reason: String)
    }

    static let supervisorProcReason = "the supervisor's own /proc entry is off limits"

    /// Resolves `path` for the agent (see agentgate_open_prepare) with /proc/self meaning the
    /// agent, refusing what reaches into the supervisor or outside the session through /proc.
    func prepare(_ prepared: UnsafeMutablePointer<agentgate_open_prepared>, base: Int32, path: RawPath,
                 flags: UInt64, resolve: UInt64, tid: pid_t, tgid: pid_t, emptyPath: Bool = false,
                 writing: Bool = false) -> PrepareOutcome {
        path.withCString { prepare(prepared, base: base, cPath: $0, flags: flags, resolve: resolve, tid: tid, tgid: tgid,
                                   emptyPath: emptyPath, writing: writing) }
    }

    /// The same with the path as the agent's NUL-terminated bytes.
    func prepare(_ prepared: UnsafeMutablePointer<agentgate_open_prepared>, base: Int32, cPath path: UnsafePointer<CChar>,
                 flags: UInt64, resolve: UInt64, tid: pid_t, tgid: pid_t, emptyPath: Bool = false,
                 writing: Bool = false) -> PrepareOutcome {
        if emptyPath {
            // AT_EMPTY_PATH: the object is the agent's fd itself (already opened via its /proc link).
            let rc = agentgate_open_prepare_fd(base, prepared)
            if rc < 0 { agentgate_open_release(prepared); return .failed(errno: -rc) }
            let resolved = String(cBuffer: agentgate_open_resolved(prepared), count: prepared.pointee.resolved_len)
            if let reason = procRefusal(resolved, writing: writing, tid: tid, tgid: tgid) {
                agentgate_open_release(prepared)
                return .refused(target: resolved, reason: reason)
            }
            return .prepared(name: Self.objectName(prepared, text: resolved))
        }
        var forceWalk = false
        while true {
            prepared.pointee.context.agent_tgid = tgid
            prepared.pointee.context.agent_tid = tid
            prepared.pointee.context.force_walk = forceWalk
            let rc = agentgate_open_prepare(base, path, flags, resolve, prepared)
            if let (owner, reason) = forbiddenOwner(prepared.pointee.context, tgid: tgid) {
                agentgate_open_release(prepared)
                // The fast path resolved /proc/self as the supervisor before meeting the magic
                // link: walk it with the agent's pid before refusing.
                if !forceWalk && resolve == 0 { forceWalk = true; continue }
                return .refused(target: "/proc/\(owner)", reason: reason)
            }
            if rc < 0 { agentgate_open_release(prepared); return .failed(errno: -rc) }
            let resolved = String(cBuffer: agentgate_open_resolved(prepared), count: prepared.pointee.resolved_len)
            guard let reason = procRefusal(resolved, writing: writing, tid: tid, tgid: tgid) else {
                return .prepared(name: Self.objectName(prepared, text: resolved))
            }
            agentgate_open_release(prepared)
            // Resolved in the supervisor, /proc/self names the supervisor: walk the path
            // component by component with the agent's pid instead. Still there: refused.
            if forceWalk || resolve != 0 { return .refused(target: resolved, reason: reason) }
            forceWalk = true
        }
    }

    /// The same for the directory entry a path names (always a write: the entry is changed).
    func resolveEntry(_ entry: inout agentgate_path_entry, base: Int32, path: RawPath, tid: pid_t, tgid: pid_t) -> PrepareOutcome {
        var forceWalk = false
        while true {
            entry.context.agent_tgid = tgid
            entry.context.agent_tid = tid
            entry.context.force_walk = forceWalk
            let rc = path.withCString { agentgate_path_entry_resolve(base, $0, &entry) }
            if let (owner, reason) = forbiddenOwner(entry.context, tgid: tgid) {
                agentgate_close(entry.parent_fd)
                entry.parent_fd = -1
                if !forceWalk { forceWalk = true; continue }
                return .refused(target: "/proc/\(owner)", reason: reason)
            }
            if rc < 0 { return .failed(errno: -rc) }
            let resolved = String(cBuffer: agentgate_path_entry_resolved(&entry), count: entry.resolved_len)
            guard let reason = procRefusal(resolved, writing: true, tid: tid, tgid: tgid) else { return .prepared(name: resolved) }
            agentgate_close(entry.parent_fd)
            entry.parent_fd = -1
            if forceWalk { return .refused(target: resolved, reason: reason) }
            forceWalk = true
        }
    }

    /// A magic link the lookup followed whose owner the agent may not reach through: the
    /// supervisor, a process outside the session, or an owner nobody can name.
    private func forbiddenOwner(_ context: agentgate_lookup_context, tgid: pid_t) -> (pid_t, String)? {
        let count = Int(context.owner_count)
        guard count > 0 else { return nil }
        if count > 8 { return (-1, "too many magic links in one path") }
        return withUnsafeBytes(of: context.owners) { raw -> (pid_t, String)? in
            let owners = raw.bindMemory(to: pid_t.self)
            for i in 0..<count {
                let owner = owners[i]
                if owner == tgid { continue }
                if owner <= 0 { return (owner, "a magic link whose owner can't be named") }
                switch membership(of: owner) {
                case .session: continue
                case .supervisor: return (owner, Self.supervisorProcReason)
                case .outside, .gone: return (owner, "a magic link of a process outside the session")
                }
            }
            return nil
        }
    }

    /// Files under /proc/PID that act on the process or show what only a tracer may see.
    private static let tracerOnlyProcFiles: Set<Substring> = ["mem", "environ", "auxv", "syscall", "stack", "pagemap", "personality"]

    /// Why a resolved path under /proc/PID is off limits, or nil: the supervisor's entry always;
    /// for a process outside the session, any write and the files only a tracer may read.
    func procRefusal(_ path: String, writing: Bool, tid: pid_t, tgid: pid_t) -> String? {
        guard path.hasPrefix("/proc/") else { return nil }
        let rest = path.utf8.dropFirst(6)
        let digits = rest.prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard !digits.isEmpty, let id = pid_t(Substring(digits)) else { return nil }
        let after = rest.dropFirst(digits.count)
        guard after.isEmpty || after.first == UInt8(ascii: "/") else { return nil }
        if id == tgid || id == tid { return nil }
        if isSupervisorTask(id) { return Self.supervisorProcReason }
        // /proc/PID/task/TID/file or /proc/PID/file: the file's name decides.
        var components = Substring(after).split(separator: "/")
        if components.first == "task" { components = Array(components.dropFirst(2)) }
        guard writing || components.first.map({ Self.tracerOnlyProcFiles.contains($0) }) == true else { return nil }
        switch membership(of: id) {
        case .session: return nil
        case .supervisor: return Self.supervisorProcReason
        case .outside, .gone: return "the /proc entry of a process outside the session"
        }
    }

    /// The name a prepared object is decided and recorded under. An object with no name in the
    /// file system (link count 0) keeps the text its /proc link shows, but a memfd's, which the
    /// agent chose freely ("x/../../usr/bin/true"), is marked as a memfd rather than a path, so
    /// no path rule ever matches it.
    static func objectName(_ prepared: UnsafePointer<agentgate_open_prepared>, text: String) -> String {
        if Self.isAnonymous(prepared), text.hasPrefix("/memfd:") { return String(text.dropFirst()) }
        return text
    }

    /// The name of an open fd of the supervisor's (a copy of one of the agent's), by the same
    /// rule as `objectName`.
    static func descriptorName(_ fd: Int32) -> String {
        let text = ProcessTable.readLink("/proc/self/fd/\(fd)") ?? "?"
        guard text.hasPrefix("/memfd:") else { return text }
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_nlink == 0 ? String(text.dropFirst()) : text
    }

    /// Character devices that do what a denied syscall does, by the route that covers them:
    /// /dev/userfaultfd makes userfaultfds without the syscall (`kernel`); /dev/net/tun creates
    /// and attaches to network interfaces (`net_admin`); /dev/loop-control, device-mapper's and
    /// btrfs's control devices add and reshape block devices, /dev/uinput and /dev/uhid make
    /// input devices that type into the user's desktop (`host`). Misc minors are read from the
    /// device nodes, with their usual numbers as a fallback.
    static let deviceRoutes: [UInt64: UnsupervisedRoute] = {
        var routes: [UInt64: UnsupervisedRoute] = [:]
        let known: [(path: String, minor: UInt64, route: UnsupervisedRoute)] = [
            ("/dev/userfaultfd", 126, .kernel), ("/dev/net/tun", 200, .netAdmin), ("/dev/loop-control", 237, .host),
            ("/dev/mapper/control", 236, .host), ("/dev/btrfs-control", 234, .host), ("/dev/uinput", 223, .host),
            ("/dev/uhid", 239, .host),
        ]
        for device in known {
            routes[(10 << 8) | device.minor] = device.route // glibc's makedev for major 10, minor < 256
            var info = stat()
            if stat(device.path, &info) == 0 && info.st_mode & S_IFMT == S_IFCHR { routes[UInt64(info.st_rdev)] = device.route }
        }
        return routes
    }()

    /// Whether a prepared object has no name in the file system: a memfd, a deleted file, an
    /// O_TMPFILE file, or an object that isn't a file at all (pipe:, socket:, anon_inode:).
    static func isAnonymous(_ prepared: UnsafePointer<agentgate_open_prepared>) -> Bool {
        guard prepared.pointee.kind == AGENTGATE_OPEN_EXISTING else { return false }
        if prepared.pointee.link_count == 0 { return true }
        return prepared.pointee.resolved_len > 0 && agentgate_open_resolved(prepared).pointee != CChar(UInt8(ascii: "/"))
    }

    /// Whether `pid` is the supervisor or one of its threads.
    /// Whether `path` (absolute, lexical) is under /proc/PID of the supervisor or of one of its
    /// threads (also /proc/PID/task/TID).
    func isSupervisorProcEntry(_ path: String) -> Bool {
        guard path.hasPrefix("/proc/") else { return false }
        var components = path.utf8.dropFirst(6).split(separator: UInt8(ascii: "/"), maxSplits: 3, omittingEmptySubsequences: true)
        guard let first = components.first, let id = pid_t(Substring(first)) else { return false }
        if isSupervisorTask(id) { return true }
        components.removeFirst()
        guard components.count >= 2, components[0].elementsEqual("task".utf8), let thread = pid_t(Substring(components[1])) else { return false }
        return isSupervisorTask(thread)
    }

    func isSupervisorTask(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        return pid == supervisorPID || access("/proc/\(supervisorPID)/task/\(pid)", F_OK) == 0
    }

    /// Where a process stands relative to the session.
    enum Membership: Equatable {
        /// The supervisor itself or one of its threads.
        case supervisor
        /// A descendant of the supervisor: the agent's tree (orphans are re-parented to the
        /// supervisor, a child subreaper, so nothing leaves it).
        case session
        /// Anything else on the host.
        case outside
        /// No such process (any more).
        case gone
    }

    /// Where `pid` (a process or thread id) stands, walking PPid up /proc.
    func membership(of pid: pid_t) -> Membership {
        guard pid > 0 else { return .outside }
        if isSupervisorTask(pid) { return .supervisor }
        var current = pid
        for _ in 0..<4096 {
            let parent = Self.parent(of: current)
            if parent == supervisorPID { return .session }
            if parent < 0 { return current == pid ? .gone : .outside }
            if parent <= 1 { return .outside } // init, or a kernel thread's root
            current = parent
        }
        return .outside
    }

    /// Whether `pid` descends from the supervisor (walking PPid up /proc).
    func isSupervised(_ pid: pid_t) -> Bool { membership(of: pid) == .session }

    /// Whether every member of process group `pgid` is in the session. A group whose leader is
    /// in the session holds only session processes: a process can only join a group through
    /// its own setpgid or its parent's, and no process outside the tree has either as the agent.
    func groupIsWithinSession(_ pgid: pid_t) -> Bool { groupMembership(of: pgid) == .session }

    /// Where the members of process group `pgid` stand: `.session` when all are in the
    /// session, `.gone` when it has none, else `.outside` (or `.supervisor` for its group).
    func groupMembership(of pgid: pid_t) -> Membership {
        guard pgid > 0 else { return .outside }
        if pgid == supervisorPGID { return .supervisor }
        if ProcStat.field(2, of: pgid) == pgid && membership(of: pgid) == .session { return .session }
        // A group whose leader has gone (or was never ours): every member must be ours.
        guard let proc = opendir("/proc") else { return .outside }
        defer { closedir(proc) }
        var members = 0
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let pid = pid_t(name), ProcStat.field(2, of: pid) == pgid else { continue }
            members += 1
            if membership(of: pid) != .session { return .outside }
        }
        return members > 0 ? .session : .gone
    }

    private static func parent(of pid: pid_t) -> pid_t { ProcStat.field(1, of: pid) }

    /// The process group of `tid` (field 5 of /proc/TID/stat).
    func processGroup(of tid: pid_t) -> pid_t { ProcStat.field(2, of: tid) }

    func rememberLeakedFD(_ fd: Int32, for n: Notification) {
        let record = LeakedFD(fd: fd, number: n.number, args: (0..<6).map { n.arg($0) })
        leakedFDs.withLock { $0[n.tid] = record }
    }

    /// The fd number to reuse for `n`, when it restarts the very call that leaked one.
    func takeLeakedFD(for n: Notification) -> Int32 {
        leakedFDs.withLock { table -> Int32 in
            guard let record = table.removeValue(forKey: n.tid) else { return -1 }
            guard record.number == n.number, record.args == (0..<6).map({ n.arg($0) }) else { return -1 }
            return record.fd
        }
    }

    var hasLeakedFDs: Bool { leakedFDs.withLock { !$0.isEmpty } }
}

/// Per-thread scratch memory, allocated once so the hot path allocates no buffers.
final class ThreadScratch {
    static let pathCapacity = Int(AGENTGATE_PATH_CAPACITY)
    let path = UnsafeMutablePointer<CChar>.allocate(capacity: ThreadScratch.pathCapacity)
    let prepared = UnsafeMutablePointer<agentgate_open_prepared>.allocate(capacity: 1)
    let sockaddr = UnsafeMutableRawPointer.allocate(byteCount: Int(AGENTGATE_SOCKADDR_CAPACITY), alignment: 8)
    /// The thread has its own fs_struct (unshare(CLONE_FS)): cwd and umask changes stay here.
    var hasOwnFileSystemContext = false
    /// The policy version this thread last decided with, and its generation (`policy(in:)`).
    var policyVersion: PolicyVersion?
    var policyGeneration: UInt64 = 0

    deinit {
        path.deallocate()
        prepared.deallocate()
        sockaddr.deallocate()
    }
}

/// Operations that may block (a blocking connect, opening a FIFO, waiting out a lease) run on
/// worker threads so no other notification waits behind them.
///
/// Such an operation must end when the agent's call would have ended without the supervisor:
///
/// - The agent's thread is killed (SIGKILL, or a signal whose default action ends the process):
///   its notification is gone (ID_VALID fails) and the operation is abandoned.
/// - A signal arrives for the agent's thread. The filter is installed with
///   SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, so once a notification has been received the
///   agent's thread waits killably and the signal only stays pending: the notification stays
///   valid and nothing tells the supervisor. (Worse, a fatal signal that comes after it is not
///   even delivered: the thread already has TIF_SIGPENDING, so complete_signal never reaches
///   its group-kill path, and `timeout` could not end the agent.) So while operations run, the
///   session loop looks at each waiting thread's pending signals (/proc/TID/status, see
///   agentgate_thread_signal_routed) every 50 ms. When the kernel has routed a signal to it,
///   the operation is interrupted and answered as the kernel answers an interrupted wait:
///   -ERESTARTSYS (or EINTR for a socket with a send timeout, see `interruptErrno(socket:)`),
///   or its partial result (bytes already sent). The agent's return to user space then runs its
///   handler and restarts the call (SA_RESTART) or fails it with EINTR, or stops or ends the
///   process by the default action, all in the kernel, exactly as without the supervisor.
///
/// Without WAIT_KILLABLE_RECV (kernels before 5.19) any signal invalidates the notification,
/// and the first rule covers both.
///
/// The worker's own call is interrupted with `interruptSignal`, whose handler has no SA_RESTART,
/// so it returns EINTR; the worker's failure is held (agentgate_notif_defer_failures) and sent
/// as the kernel's errno for the agent (agentgate_notif_flush_deferred_interrupted). The
/// interrupt is repeated at every look while the reason lasts: one that lands just before the
/// worker enters its blocking call is not lost.
///
/// The workers are all started with the session and none is ever created later: the agent must
/// not be able to choose when a new supervisor thread id appears, or it could aim a pid-named
/// call (decided on the pid, then continued) at the id the next one will get.
final class BlockingOperations: @unchecked Sendable {
    static let interruptSignal = SIGUSR2
    /// At most this many operations wait or run at once: each holds copies of the agent's
    /// data, and an agent must not be able to exhaust the supervisor's memory or fds. There is
    /// a worker for each, so operations never wait behind one another (a FIFO's readers must
    /// all be waiting when its writer opens it, as they would be without the supervisor).
    static let limit = 256
    static let workerCount = limit

    private struct Job {
        let id: UInt64
        let tid: pid_t
        /// What the agent's call returns when a signal interrupts it.
        let interruptErrno: Int32
        let body: @Sendable () -> Void
    }
    private struct State {
        var jobs: [Job] = []
        var head = 0
        var stopping = false
    }
    /// A job being run.
    private struct Running {
        let thread: UInt64
        let tid: pid_t
        /// Interrupted because a signal is pending for the agent's thread.
        var signalled = false
    }
    private let state = Mutex(State())
    /// Counts queued jobs; workers wait on it. Never freed: it lives as long as the process.
    private let semaphore: UnsafeMutablePointer<sem_t> = {
        let pointer = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(pointer, 0, 0)
        return pointer
    }()
    /// Jobs being run, by notification id.
    private let pending = Mutex<[UInt64: Running]>([:])
    /// Queued plus running.
    private let outstanding = Atomic<Int>(0)
    private let workers = SessionThreads()
    /// The session's listener, attached once it exists: the workers may be started before the
    /// agent is (see `start`), and only `run` needs it, after the agent's first call.
    private let listenerFD = Atomic<Int32>(-1)

    init() {}

    func attach(_ listener: Listener) { listenerFD.store(listener.fd, ordering: .releasing) }

    /// Acquiring: once it is true, everything the finished jobs did is seen by the caller
    /// (nobody joins the workers).
    var isEmpty: Bool { outstanding.load(ordering: .acquiring) == 0 }

    /// The errno the kernel gives a blocking connect or send on `socket` that a signal
    /// interrupts (sock_intr_errno): -ERESTARTSYS, unless the socket has a send timeout
    /// (SO_SNDTIMEO), in which case EINTR, which SA_RESTART does not restart.
    static func interruptErrno(socket: Int32) -> Int32 {
        var timeout = timeval()
        var length = UInt32(MemoryLayout<timeval>.size)
        guard agentgate_getsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, &length) == 0 else {
            return Int32(AGENTGATE_ERESTARTSYS)
        }
        return timeout.tv_sec == 0 && timeout.tv_usec == 0 ? Int32(AGENTGATE_ERESTARTSYS) : EINTR
    }

    /// Starts every worker, before the agent's first call is answered. Returns false when not
    /// even one could be created (calls that need one then fail with EAGAIN). Creating them is
    /// a large part of the supervisor's start-up, so the session starts this on a thread of its
    /// own while it spawns the agent, and waits for it before the first call is received.
    @discardableResult
    func start() -> Bool {
        workers.start(Self.workerCount) { [self] in work() }
    }

    /// Stops the workers once the queue is empty; they end on their own (detached) unless one
    /// is still stuck in an operation nothing could interrupt (the process is about to exit
    /// anyway).
    func stop() {
        state.withLock { $0.stopping = true }
        // One wake: a worker that finds nothing to do once stopping wakes the next before it
        // ends (see `work`), on its own CPU time. Waking a few hundred one by one, and joining
        // them, held up the end of every session by 10-16 ms.
        sem_post(semaphore)
        workers.release(detaching: isEmpty)
    }

    private func work() {
        var unblock = sigset_t()
        var signal = Self.interruptSignal
        agentgate_sigset(&unblock, &signal, 1)
        agentgate_sigmask(SIG_UNBLOCK, &unblock, nil)
        // Failures are held until the job ends, so an EINTR caused by interrupting the job for
        // the agent's signal goes out as the errno the kernel would give (and, when decisions
        // are echoed, after the echo).
        agentgate_notif_defer_failures(true)
        while true {
            while sem_wait(semaphore) != 0 {} // EINTR: an interrupt for a job that just ended
            let job: Job? = state.withLock { state in
                guard state.head < state.jobs.count else { return nil }
                let job = state.jobs[state.head]
                state.head += 1
                if state.head > 64 && state.head * 2 > state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                return job
            }
            guard let job else {
                if state.withLock({ $0.stopping }) {
                    sem_post(semaphore) // the next worker's turn to end
                    return
                }
                continue
            }
            pending.withLock { $0[job.id] = Running(thread: agentgate_thread_self(), tid: job.tid) }
            job.body()
            // Removed before the answer: no interrupt is sent for this job from here on (one
            // already sent is delivered before this thread returns to user space, so it can't
            // reach the next job).
            let signalled = pending.withLock { $0.removeValue(forKey: job.id)?.signalled ?? false }
            agentgate_notif_flush_deferred_interrupted(signalled ? job.interruptErrno : 0)
            outstanding.subtract(1, ordering: .releasing)
        }
    }

    /// Queues `body`, which performs `n`'s call, for a worker. `interruptErrno` is what the
    /// kernel returns for that call when a signal interrupts its wait (-ERESTARTSYS for a FIFO
    /// open or a lease; see `interruptErrno(socket:)` for sockets). Returns false, without
    /// running it, when the limit is reached or no worker exists: the caller then fails the
    /// agent's call (EAGAIN).
    func run(_ n: Notification, interruptErrno: Int32 = Int32(AGENTGATE_ERESTARTSYS),
             _ body: @escaping @Sendable () -> Void) -> Bool {
        guard !workers.isEmpty else { return false }
        let id = n.id
        // Work queued by a thread acting as the agent runs as the agent too.
        var identity = agentgate_thread_credentials()
        if agentgate_thread_assumed_credentials(&identity) == 1 {
            let agent = identity
            let inner = body
            let listener = Listener(fd: listenerFD.load(ordering: .acquiring))
            return enqueue(Job(id: id, tid: n.tid, interruptErrno: interruptErrno) {
                var wanted = agent
                guard agentgate_thread_assume_credentials(&wanted) == 0 else {
                    // Taken on moments ago on the receiver: never run the call as anyone else.
                    listener.fail(id, errno: EACCES)
                    return
                }
                inner()
                agentgate_thread_restore_credentials()
            })
        }
        return enqueue(Job(id: id, tid: n.tid, interruptErrno: interruptErrno, body: body))
    }

    private func enqueue(_ job: Job) -> Bool {
        guard outstanding.add(1, ordering: .relaxed).newValue <= Self.limit else {
            outstanding.subtract(1, ordering: .relaxed)
            return false
        }
        state.withLock { $0.jobs.append(job) }
        sem_post(semaphore)
        return true
    }

    /// Interrupts every running operation whose agent call has ended (its notification is
    /// gone) or has a signal to take (see the type's comment). Called every 50 ms while any
    /// operation is outstanding.
    func interruptWaiting(_ listener: Listener) {
        let running = pending.withLock { $0 }
        guard !running.isEmpty else { return }
        var cancelled: [UInt64] = []
        var signalled: [UInt64] = []
        for (id, job) in running {
            guard listener.isValid(id) else { cancelled.append(id); continue }
            // The tid is the agent's thread only while its notification is pending: read its
            // signals, then check again.
            let routed = agentgate_thread_signal_routed(job.tid)
            if routed == 1 && listener.isValid(id) { signalled.append(id) }
        }
        guard !cancelled.isEmpty || !signalled.isEmpty else { return }
        pending.withLock { table in
            // Under the lock the worker can't have moved on to another job.
            for id in cancelled {
                guard let job = table[id] else { continue }
                _ = agentgate_thread_kill(job.thread, Self.interruptSignal)
            }
            for id in signalled {
                guard table[id] != nil else { continue }
                table[id]!.signalled = true
                _ = agentgate_thread_kill(table[id]!.thread, Self.interruptSignal)
            }
        }
    }
}
