import AgentGatePolicy
import CSupport
import Glibc
import Synchronization

/// The facts a rule's `when:` tests, per agent process: credentials and capabilities from
/// /proc/TID/status, the cgroup from /proc/TID/cgroup, and the command lines and ancestry the
/// supervisor observed. Read only when a `when:` rule is reached, cached per thread, dropped
/// when the thread execs, when its id is reused, and when any process changes credentials.
final class ProcessContexts: Sendable {
    private let cache = Mutex<[pid_t: ProcessContext]>([:])
    /// Command lines each process (by tgid) exec'd, oldest first, capped.
    private let commands = Mutex<[pid_t: [[String]]]>([:])
    let agent: String
    let supervisorPID: pid_t
    /// The agent's first process: the only one whose parent is the supervisor by birth. Any
    /// other child of the supervisor was orphaned and adopted (it is a child subreaper), and its
    /// real ancestry is gone.
    private let rootPID = Atomic<pid_t>(0)
    /// Set if the table of command lines ever had to drop entries of live processes: from then
    /// on ancestry can't be trusted, and `when:` rules fail closed.
    private let historyLost = Atomic<Bool>(false)
    static let maximumTrackedProcesses = 65536

    static let maximumCommandsPerProcess = 8
    static let maximumAncestors = 64

    init(agent: String, supervisorPID: pid_t) {
        self.agent = agent
        self.supervisorPID = supervisorPID
    }

    /// The context of `tid` (thread of `tgid`), from the cache or read now. The caller checks
    /// NOTIF_ID_VALID afterwards, as after any read of the agent's state.
    func context(tid: pid_t) -> ProcessContext? {
        if historyLost.load(ordering: .relaxed) { return nil }
        if let cached = cache.withLock({ $0[tid] }) { return cached }
        let status = ProcStatus(tid: tid)
        guard status.readOK, status.uids.count >= 2, status.gids.count >= 2 else { return nil }
        let tgid = status.tgid == 0 ? tid : status.tgid
        let executable = ProcessTable.readLink("/proc/\(tid)/exe") ?? ""
        var context = ProcessContext(
            uid: status.uids[1], gid: status.gids[1],
            effectiveCapabilities: status.capEff, permittedCapabilities: status.capPrm,
            cgroup: SessionContextCollector.cgroup(of: "\(tid)"), executable: executable,
            commands: commandLines(of: tgid), ancestors: [], agent: agent)
        var child = tgid
        var parent = status.ppid
        while parent > 1, parent != supervisorPID, context.ancestors.count < Self.maximumAncestors {
            let image = ProcessImage(executable: ProcessTable.readLink("/proc/\(parent)/exe") ?? "",
                                     commands: commandLines(of: parent))
            context.ancestors.append(image)
            child = parent
            parent = ProcStat.field(1, of: parent)
        }
        // A chain that doesn't end at the agent's first process lost an ancestor (a daemon
        // double-forked out from under it): unknown ancestry, so `when:` rules fail closed
        // rather than letting a process shed "started by npm install" by reparenting.
        guard parent == supervisorPID, child == rootPID.load(ordering: .relaxed) else { return nil }
        cache.withLock { table in
            if table.count > 4096 { table.removeAll(keepingCapacity: true) }
            table[tid] = context
        }
        return context
    }

    /// The agent's first process, once spawned.
    func setRoot(_ pid: pid_t) {
        rootPID.store(pid, ordering: .relaxed)
    }

    /// An allowed exec: the process's image (and so its context) changes.
    /// The most argv bytes kept per exec for `ancestor:` matching: an agent can make argv
    /// megabytes long, and thousands of processes each keep their history.
    static let keptArgvBytes = 64 << 10

    func recordExec(tid: pid_t, tgid: pid_t, argv: [String]) {
        var kept: [String] = []
        var total = 0
        for argument in argv {
            let size = argument.utf8.count
            if total + size > Self.keptArgvBytes {
                kept.append(String(decoding: argument.utf8.prefix(max(0, Self.keptArgvBytes - total)), as: UTF8.self))
                break
            }
            kept.append(argument)
            total += size
        }
        commands.withLock { table in
            var lines = table[tgid] ?? []
            lines.append(kept)
            if lines.count > Self.maximumCommandsPerProcess { lines.removeFirst(lines.count - Self.maximumCommandsPerProcess) }
            table[tgid] = lines
            if table.count > 8192 {
                // Drop processes that are gone; never a live one's history.
                for pid in table.keys where kill(pid, 0) != 0 && errno == ESRCH { table[pid] = nil }
                if table.count > Self.maximumTrackedProcesses {
                    historyLost.store(true, ordering: .relaxed)
                    table.removeAll(keepingCapacity: true)
                }
            }
        }
        cache.withLock { _ = $0.removeValue(forKey: tid) }
    }

    /// `tid` names a process the supervisor hasn't seen (first sight, or its id was reused).
    func forget(tid: pid_t, isNewProcess: Bool) {
        cache.withLock { _ = $0.removeValue(forKey: tid) }
        if isNewProcess { commands.withLock { _ = $0.removeValue(forKey: tid) } }
    }

    /// Cached contexts and processes with recorded command lines, held now.
    var counts: (contexts: Int, commandHistories: Int) {
        (cache.withLock { $0.count }, commands.withLock { $0.count })
    }

    /// Some process may have changed credentials or capabilities: read them all again.
    func invalidateAll() {
        cache.withLock { $0.removeAll(keepingCapacity: true) }
    }

    /// The command lines recorded for `tgid`: the execs the supervisor allowed it. A process
    /// that exec'd nothing (a fork) has none of its own; it runs its parent's image, and the
    /// parent is among its ancestors. /proc/PID/cmdline is never used: a process can rewrite it.
    private func commandLines(of tgid: pid_t) -> [[String]] {
        commands.withLock { $0[tgid] } ?? []
    }
}

/// Hands the policy the context of the thread behind one notification, reading it only if a
/// `when:` rule is reached. Bytes read from /proc are used only while the notification is
/// still pending (NOTIF_ID_VALID), like any read of the agent's state.
struct AgentContextSource: ProcessContextSource {
    let core: SupervisorCore
    let tid: pid_t
    let notificationID: UInt64

    mutating func processContext() -> ProcessContext? {
        guard let context = core.contexts.context(tid: tid), core.listener.isValid(notificationID) else { return nil }
        return context
    }
}
