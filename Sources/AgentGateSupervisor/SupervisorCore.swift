import AgentGatePolicy
import AgentGateStore
import CSupport
import Glibc
import Synchronization

/// State shared by every notification thread. Immutable after start, apart from the few
/// Mutex-guarded tables; the audit writer's lock is never taken before a response is sent.
final class SupervisorCore: Sendable {
    let listener: Listener
    let table: SyscallTable
    let policy: Policy
    let processes: ProcessTable
    /// Process context for `when:` rules.
    let contexts: ProcessContexts
    let recorder: DecisionRecorder
    let injection: FDInjection
    let supervisorPID: pid_t
    let supervisorPGID: pid_t
    let blocking = BlockingOperations()
    let images = ImageVerifier()
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

    /// The supervisor's own files (audit database, its WAL/SHM/journal and fallback, the policy):
    /// the agent may neither read nor change them.
    let protectedFiles: [String]

    init(listener: Listener, table: SyscallTable, policy: Policy, recorder: DecisionRecorder,
         injection: FDInjection, supervisorPID: pid_t, protectedFiles: [String] = [], agentName: String = "") {
        self.contexts = ProcessContexts(agent: agentName, supervisorPID: supervisorPID)
        self.processes = ProcessTable(contexts: contexts)
        self.protectedFiles = protectedFiles
        self.listener = listener
        self.table = table
        self.policy = policy
        self.recorder = recorder
        self.injection = injection
        self.supervisorPID = supervisorPID
        self.supervisorPGID = getpgrp()
        self.supervisorCredentials = ProcStatus(tid: supervisorPID)
        self.supervisorUserNamespace = ProcessTable.readLink("/proc/self/ns/user")
    }

    func expectImage(_ image: ImageIdentity, previous: ImageIdentity, tgid: pid_t, arguments: [UInt8]? = nil) {
        images.expect(image, previous: previous, tgid: tgid, arguments: arguments)
    }

    /// The verdict for reaching `target`. A pathname unix socket is also a write to that path
    /// (the kernel asks for write permission on it): a socket inside a protected directory, or
    /// anywhere writes are denied (docker.sock, the system bus), can't be used to act through.
    func egressVerdict(_ target: String, _ n: Notification) -> Verdict {
        let egress = decide(.netEgress, target: target, n)
        guard egress.enforcedAllow, target.hasPrefix("unix:/") else { return egress }
        let path = String(target.dropFirst(5))
        if protectedReason(path, isWrite: true) != nil {
            return Verdict(decision: .deny, ruleIndex: nil, reason: .matchedRule)
        }
        let write = decide(.fsWrite, target: path, n)
        return write.decision.allows ? egress : write
    }

    /// The policy's verdict on one action of the process behind `n`. The process context (for
    /// rules with `when:`) is read only if such a rule is reached.
    func decide(_ kind: ActionKind, target: String, _ n: Notification, exec: ExecDetails? = nil) -> Verdict {
        decide(kind, target: target, tid: n.tid, id: n.id, exec: exec)
    }

    func decide(_ kind: ActionKind, target: String, tid: pid_t, id: UInt64, exec: ExecDetails? = nil) -> Verdict {
        var source = AgentContextSource(core: self, tid: tid, notificationID: id)
        return policy.evaluate(kind, target: target, exec: exec, contextSource: &source)
    }

    /// Why a resolved path is off limits whatever the policy says, or nil.
    func protectedReason(_ target: String, isWrite: Bool) -> String? {
        if protectedFiles.contains(target) { return "the supervisor's audit database and policy are off limits" }
        if isWrite && LexicalPath.isWithin(target, "/sys/fs/cgroup") && !policy.allowedUnsupervised.contains(.cgroups) {
            return "cgroup writes could end or freeze the supervisor; denied by default"
        }
        return nil
    }

    /// Whether a directory holds one of the supervisor's files (moving it would expose them).
    func holdsProtectedFile(_ directory: String) -> Bool {
        protectedFiles.contains { LexicalPath.isWithin($0, directory) }
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

    /// Why the supervisor must not act for `tid`, or nil when the agent's credentials are the
    /// supervisor's (or stronger). Never act with more privilege than the agent has.
    func credentialRefusal(tid: pid_t) -> String? {
        guard credentialsMayDiverge.load(ordering: .sequentiallyConsistent) else { return nil }
        let agent = ProcStatus(tid: tid)
        let mine = supervisorCredentials
        guard agent.readOK else { return "agent credentials unreadable" }
        if agent.uids.count < 4 || mine.uids.count < 4 || agent.uids[3] != mine.uids[3] || agent.uids[1] != mine.uids[1] {
            return "agent uid differs from the supervisor's"
        }
        if agent.gids.count < 4 || mine.gids.count < 4 || agent.gids[3] != mine.gids[3] || agent.gids[1] != mine.gids[1] {
            return "agent gid differs from the supervisor's"
        }
        if Set(agent.groups) != Set(mine.groups) { return "agent groups differ from the supervisor's" }
        if mine.capEff & ~agent.capEff != 0 { return "agent has fewer capabilities than the supervisor" }
        if ProcessTable.readLink("/proc/\(tid)/ns/user") != supervisorUserNamespace { return "agent is in another user namespace" }
        return nil
    }

    enum PrepareOutcome {
        case prepared
        case failed(errno: Int32)
        /// The path leads into the supervisor (its /proc entry or one of its magic links).
        case supervisorPath(String)
    }

    /// Resolves `path` for the agent (see agentgate_open_prepare) with /proc/self meaning the
    /// agent, refusing anything that reaches the supervisor through /proc.
    func prepare(_ prepared: UnsafeMutablePointer<agentgate_open_prepared>, base: Int32, path: String,
                 flags: UInt64, resolve: UInt64, tid: pid_t, tgid: pid_t, emptyPath: Bool = false) -> PrepareOutcome {
        if emptyPath {
            // AT_EMPTY_PATH: the object is the agent's fd itself (already opened via its /proc link).
            let rc = agentgate_open_prepare_fd(base, prepared)
            if rc < 0 { agentgate_open_release(prepared); return .failed(errno: -rc) }
            let resolved = String(cBuffer: agentgate_open_resolved(prepared), count: prepared.pointee.resolved_len)
            if isSupervisorProcPath(resolved) { agentgate_open_release(prepared); return .supervisorPath(resolved) }
            return .prepared
        }
        var forceWalk: Int32 = 0
        while true {
            prepared.pointee.context.agent_tgid = tgid
            prepared.pointee.context.agent_tid = tid
            prepared.pointee.context.force_walk = forceWalk
            let rc = agentgate_open_prepare(base, path, flags, resolve, prepared)
            if let owner = forbiddenOwner(prepared.pointee.context) {
                agentgate_open_release(prepared)
                // The fast path resolved /proc/self as the supervisor before meeting the magic
                // link: walk it with the agent's pid before refusing.
                if forceWalk == 0 && resolve == 0 { forceWalk = 1; continue }
                return .supervisorPath("/proc/\(owner)")
            }
            if rc < 0 { agentgate_open_release(prepared); return .failed(errno: -rc) }
            let resolved = String(cBuffer: agentgate_open_resolved(prepared), count: prepared.pointee.resolved_len)
            guard isSupervisorProcPath(resolved) else { return .prepared }
            agentgate_open_release(prepared)
            // Resolved in the supervisor, /proc/self names the supervisor: walk the path
            // component by component with the agent's pid instead. Still there: refused.
            if forceWalk == 1 || resolve != 0 { return .supervisorPath(resolved) }
            forceWalk = 1
        }
    }

    /// The same for the directory entry a path names.
    func resolveEntry(_ entry: inout agentgate_path_entry, base: Int32, path: String, tid: pid_t, tgid: pid_t) -> PrepareOutcome {
        var forceWalk: Int32 = 0
        while true {
            entry.context.agent_tgid = tgid
            entry.context.agent_tid = tid
            entry.context.force_walk = forceWalk
            let rc = agentgate_path_entry_resolve(base, path, &entry)
            if let owner = forbiddenOwner(entry.context) {
                agentgate_close(entry.parent_fd)
                entry.parent_fd = -1
                if forceWalk == 0 { forceWalk = 1; continue }
                return .supervisorPath("/proc/\(owner)")
            }
            if rc < 0 { return .failed(errno: -rc) }
            let resolved = String(cBuffer: agentgate_path_entry_resolved(&entry), count: entry.resolved_len)
            guard isSupervisorProcPath(resolved) else { return .prepared }
            agentgate_close(entry.parent_fd)
            entry.parent_fd = -1
            if forceWalk == 1 { return .supervisorPath(resolved) }
            forceWalk = 1
        }
    }

    /// A magic link the lookup followed that belongs to the supervisor (or to nobody we can
    /// name), or nil.
    private func forbiddenOwner(_ context: agentgate_lookup_context) -> pid_t? {
        let count = Int(context.owner_count)
        guard count > 0 else { return nil }
        if count > 8 { return -1 }
        return withUnsafeBytes(of: context.owners) { raw -> pid_t? in
            let owners = raw.bindMemory(to: pid_t.self)
            for i in 0..<count where owners[i] <= 0 || isSupervisorTask(owners[i]) { return owners[i] }
            return nil
        }
    }

    /// Whether `pid` is the supervisor or one of its threads.
    func isSupervisorTask(_ pid: pid_t) -> Bool {
        guard pid > 0 else { return false }
        return pid == supervisorPID || access("/proc/\(supervisorPID)/task/\(pid)", F_OK) == 0
    }

    /// Whether `pid` descends from the supervisor (walking PPid up /proc).
    func isSupervised(_ pid: pid_t) -> Bool {
        var current = pid
        for _ in 0..<256 {
            let parent = Self.parent(of: current)
            if parent == supervisorPID { return true }
            if parent <= 1 { return false }
            current = parent
        }
        return false
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

    /// Whether an absolute, resolved path lies in the supervisor's own /proc entry (its pid or
    /// one of its threads): the agent may never read or write the supervisor's state.
    func isSupervisorProcPath(_ path: String) -> Bool {
        guard path.hasPrefix("/proc/") else { return false }
        let rest = path.dropFirst(6)
        let digits = rest.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, let id = pid_t(digits) else { return false }
        let after = rest.dropFirst(digits.count)
        guard after.isEmpty || after.hasPrefix("/") else { return false }
        return isSupervisorTask(id)
    }
}

/// Per-thread scratch memory, allocated once so the hot path allocates no buffers.
final class ThreadScratch {
    static let pathCapacity = 4097 // PATH_MAX plus room to detect an over-long path
    let path = UnsafeMutablePointer<CChar>.allocate(capacity: ThreadScratch.pathCapacity)
    let prepared = UnsafeMutablePointer<agentgate_open_prepared>.allocate(capacity: 1)
    let sockaddr = UnsafeMutableRawPointer.allocate(byteCount: 128, alignment: 8)
    /// The thread has its own fs_struct (unshare(CLONE_FS)): cwd and umask changes stay here.
    var hasOwnFileSystemContext = false

    deinit {
        path.deallocate()
        prepared.deallocate()
        sockaddr.deallocate()
    }
}

/// Operations that may block (a blocking connect, opening a FIFO) run on their own thread so
/// no other notification waits behind them. The main loop interrupts one whose agent call was
/// interrupted (its notification id is no longer valid).
final class BlockingOperations: Sendable {
    static let interruptSignal = SIGUSR2
    /// At most this many operations wait at once: each holds a thread and copies of the agent's
    /// data, and an agent must not be able to exhaust the supervisor's threads or memory.
    static let limit = 256
    private let pending = Mutex<[UInt64: UInt64]>([:])
    private let running = Atomic<Int>(0)

    var isEmpty: Bool { pending.withLock { $0.isEmpty } }

    /// Runs `body` on a thread of its own. Returns false, without running it, when the limit is
    /// reached or no thread can be created: the caller then fails the agent's call (EAGAIN).
    func run(_ id: UInt64, _ body: @escaping @Sendable () -> Void) -> Bool {
        guard running.add(1, ordering: .relaxed).newValue <= Self.limit else {
            running.subtract(1, ordering: .relaxed)
            return false
        }
        let thread = Thread { [self] in
            var unblock = sigset_t()
            var signal = Self.interruptSignal
            agentgate_sigset(&unblock, &signal, 1)
            agentgate_sigmask(SIG_UNBLOCK, &unblock, nil)
            pending.withLock { $0[id] = agentgate_thread_self() }
            body()
            pending.withLock { _ = $0.removeValue(forKey: id) }
            running.subtract(1, ordering: .relaxed)
        }
        if !thread.start() {
            running.subtract(1, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Interrupts every blocked operation whose notification is gone.
    func interruptCancelled(_ listener: Listener) {
        pending.withLock { table in
            for (id, thread) in table where !listener.isValid(id) {
                // Under the lock the thread can't have unregistered, so it is still alive.
                _ = agentgate_thread_kill(thread, Self.interruptSignal)
            }
        }
    }
}
