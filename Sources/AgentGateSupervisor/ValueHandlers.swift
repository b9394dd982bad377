import AgentGatePolicy
import CSupport
import Glibc

/// Syscalls decided on their register arguments alone. Their decision depends on no memory
/// the agent can change, so an allowed call may continue in the kernel.
enum ValueHandlers {
    /// io_uring_setup, open_by_handle_at, mount…, seccomp: denied unless the policy reopens
    /// the route.
    static func unsupervised(_ n: Notification, route: UnsupervisedRoute, errno: Int32, core: SupervisorCore) {
        let allowed = core.policy.allowedUnsupervised.contains(route)
        decide(n, allowed: allowed, errno: errno, target: route.rawValue,
               reason: allowed ? "allowed by allow_unsupervised" : "\(route.rawValue) is unsupervised; denied by default", core: core)
    }

    /// unshare, setns and clone asking for a namespace.
    static func namespaces(_ n: Notification, flagsArg: Int, core: SupervisorCore) {
        let name = core.table.name(of: n.number)
        let flags = n.arg(flagsArg)
        // setns(fd, 0) may join any kind of namespace; otherwise only namespace flags count.
        let asksNamespace = name == "setns" || namespaceFlags.contains { flags & $0 != 0 }
        let allowed = !asksNamespace || core.policy.allowedUnsupervised.contains(.namespaces)
        if allowed && flags & 0x1000_0000 != 0 { core.noteCredentialChange() } // a new user namespace
        decide(n, allowed: allowed, errno: EPERM, target: "namespaces:0x\(String(flags, radix: 16))",
               reason: allowed ? "allowed by allow_unsupervised" : "new namespaces are unsupervised; denied by default", core: core)
    }

    static func prctl(_ n: Notification, core: SupervisorCore) {
        if n.arg(0) == prctlSetSeccomp {
            unsupervised(n, route: .seccomp, errno: EPERM, core: core)
            return
        }
        core.noteCredentialChange() // capability bounding set, securebits or ambient caps
        core.listener.continueSyscall(n.id)
    }

    static func credentials(_ n: Notification, core: SupervisorCore) {
        // Marked before the kernel applies the change, so no emulated call can race past it.
        // Calls that set every id to what it already is (compilers do this constantly) change
        // nothing and are told apart by their register values alone.
        if !core.isCredentialNoOp(name: core.table.name(of: n.number), n) { core.noteCredentialChange() }
        core.listener.continueSyscall(n.id)
    }

    /// kill & co., ptrace, process_vm_*, pidfd_open, prlimit64: never aimed at the supervisor.
    static func processTarget(_ n: Notification, pidArg: Int, isSignal: Bool, core: SupervisorCore) {
        let name = core.table.name(of: n.number)
        var target = pid_t(truncatingIfNeeded: n.arg(pidArg))
        let process = core.processes.info(for: n.tid)
        // PTRACE_TRACEME makes the parent the tracer: for the agent's first process, us.
        if name == "ptrace" && n.arg(0) == 0 { target = process.ppid }
        var aimed = core.isSupervisorTask(target)
        if isSignal && (name == "kill" || name == "rt_sigqueueinfo") {
            // -1 reaches every process we may signal; -PGID a whole group.
            if target == -1 || (target < -1 && target == -core.supervisorPGID) { aimed = true }
            if target == 0 && core.processGroup(of: n.tid) == core.supervisorPGID { aimed = true }
        }
        switch name {
        case "setpriority", "ioprio_set":
            // (which, who): a process, a process group, or every process of a user.
            let which = n.arg(0)
            let isGroup = name == "setpriority" ? which == 1 : which == 2
            let isUser = name == "setpriority" ? which == 2 : which == 3
            aimed = isUser || (isGroup && (target == core.supervisorPGID)) || (!isGroup && !isUser && core.isSupervisorTask(target))
        case "kcmp":
            aimed = aimed || core.isSupervisorTask(pid_t(truncatingIfNeeded: n.arg(1)))
        case "perf_event_open":
            aimed = aimed || target == -1 // every process on a cpu, the supervisor included
        default: break
        }
        var outside = false
        let reachesInto = ["ptrace", "process_vm_readv", "process_vm_writev", "pidfd_open"].contains(name)
        if !aimed && reachesInto && target > 0 && !core.isSupervised(target) {
            // ptrace, process_vm_* or pidfd_getfd into an unsupervised process would run the
            // agent's code, or read its secrets, outside supervision.
            outside = true
        }
        if aimed || outside {
            core.listener.fail(n.id, errno: EPERM)
            if outside {
                core.recorder.record(.denied(syscall: name, action: .exec, target: "pid:\(target)",
                                             reason: "the process is outside the supervised tree", errno: EPERM),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
                return
            }
            core.recorder.record(.denied(syscall: name, action: .exec, target: "pid:\(target)",
                                         reason: "the supervisor can't be signalled, traced or inspected", errno: EPERM),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
        } else {
            core.listener.continueSyscall(n.id)
        }
    }

    /// The owner of a file receives its I/O signals: never the supervisor. F_SETOWN's target is a
    /// register value; F_SETOWN_EX and the ioctls pass a pointer, so the supervisor copies the
    /// target and makes the call itself on the agent's file (pidfd_getfd).
    static func fileOwner(_ n: Notification, core: SupervisorCore) {
        let name = core.table.name(of: n.number)
        let process = core.processes.info(for: n.tid)
        let command = n.arg(1)
        func aimedAtSupervisor(pid: Int32, isGroup: Bool) -> Bool {
            if isGroup { return pid == core.supervisorPGID || (pid < 0 && pid == -core.supervisorPGID) }
            if pid < 0 { return pid == -core.supervisorPGID } // negative: a process group
            return core.isSupervisorTask(pid)
        }
        func deny(_ target: String) {
            core.listener.fail(n.id, errno: EPERM)
            core.recorder.record(.denied(syscall: name, action: .exec, target: target,
                                         reason: "the supervisor can't be made the owner of the agent's files", errno: EPERM),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
        }
        if name == "fcntl" && command == fcntlSetOwner {
            let pid = Int32(truncatingIfNeeded: n.arg(2))
            if aimedAtSupervisor(pid: pid, isGroup: false) { deny("pid:\(pid)") } else { core.listener.continueSyscall(n.id) }
            return
        }
        var owner = [Int32](repeating: 0, count: 2)
        let size = name == "fcntl" ? 8 : 4
        let rc = owner.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(2), $0.baseAddress, size) }
        let pidfd = agentgate_pidfd_open(n.tid)
        let fd = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, n.intArg(0)) : pidfd
        agentgate_close(pidfd)
        defer { agentgate_close(fd) }
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        guard fd >= 0 else { core.listener.fail(n.id, errno: EBADF); return }
        // The kernel records the caller's credentials as the owner's: never ours for a weaker agent.
        if let refusal = core.credentialRefusal(tid: n.tid) {
            core.listener.fail(n.id, errno: EPERM)
            core.recorder.record(.denied(syscall: name, action: .exec, target: "fd owner", reason: refusal, errno: EPERM),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        // struct f_owner_ex { int type; pid_t pid; }: type 2 is F_OWNER_PGRP.
        let target = name == "fcntl" ? owner[1] : owner[0]
        let isGroup = name == "fcntl" && owner[0] == 2
        if aimedAtSupervisor(pid: target, isGroup: isGroup) { deny("pid:\(target)"); return }
        let result = owner.withUnsafeMutableBytes { raw in
            agentgate_syscall6(Int(n.number), UInt64(UInt32(bitPattern: fd)), command,
                               UInt64(UInt(bitPattern: raw.baseAddress)), 0, 0, 0)
        }
        if result < 0 { core.listener.fail(n.id, errno: Int32(-result)) } else { core.listener.succeed(n.id, value: Int64(result)) }
    }

    static func setpgid(_ n: Notification, core: SupervisorCore) {
        // Trapped only for the supervisor's own group: joining it would expose us to kill(0).
        decide(n, allowed: false, errno: EPERM, target: "pgid:\(n.arg(1))",
               reason: "the supervisor's process group is off limits", core: core)
    }

    private static func decide(_ n: Notification, allowed: Bool, errno: Int32, target: String, reason: String, core: SupervisorCore) {
        if allowed { core.listener.continueSyscall(n.id) } else { core.listener.fail(n.id, errno: errno) }
        let name = core.table.name(of: n.number)
        let process = core.processes.info(for: n.tid)
        core.recorder.record(DecisionRecorder.Entry(syscall: name, action: .exec, target: target, decision: allowed ? "allow" : "deny",
                                                    reason: reason, errno: allowed ? nil : errno),
                             notification: n, process: process, respondedAt: agentgate_monotonic_ns())
    }
}
