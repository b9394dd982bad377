import AgentGatePolicy
import CSupport
import Glibc

/// Calls that act on another process: signals, tracing, memory, limits, scheduling, priority,
/// and everything that takes a process handle. None may reach the supervisor or a process
/// outside the session's tree (the supervisor is a child subreaper, so every process the agent
/// ever starts stays in that tree). Calls named by pid are decided on their register values and
/// continue in the kernel; calls named by a handle are decided on the process the handle
/// refers to, through the supervisor's own copy of it.
enum ProcessHandlers {
    /// Whom a call is aimed at.
    enum Aim {
        case caller
        case process(pid_t)
        case group(pid_t)
        /// Every process the caller may signal (kill(-1)), or every process of a user.
        case everyone
    }

    // MARK: - Calls named by pid

    static func processTarget(_ call: TrappedCall, kind: ProcessTargetCall) {
        let n = call.notification, core = call.core, process = call.process
        func pid(_ index: Int) -> pid_t { pid_t(truncatingIfNeeded: n.arg(index)) }
        func selfOr(_ value: pid_t) -> Aim { value == 0 ? .caller : .process(value) }
        /// (which, who) as setpriority and ioprio_set take them, `which` numbered as given; who 0
        /// is the caller's own process or group.
        func whom(process: UInt64, group: UInt64, user: UInt64) -> [Aim] {
            let which = n.arg(0), who = pid(1)
            switch which {
            case process: return [selfOr(who)]
            case group: return [.group(who == 0 ? core.processGroup(of: n.tid) : who)]
            case user: return [.everyone]
            default: return [.caller] // EINVAL from the kernel
            }
        }
        var aims: [Aim]
        switch kind {
        case .kill, .rtSigqueueinfo:
            let target = pid(0)
            if target > 0 { aims = [.process(target)] }
            else if target == 0 { aims = [.group(core.processGroup(of: n.tid))] }
            else if target == -1 { aims = [.everyone] }
            else if target == Int32.min { aims = [.everyone] } // -INT_MIN is not a group the kernel knows; ESRCH bare
            else { aims = [.group(-target)] }
        case .tkill: aims = [.process(pid(0))]
        case .tgkill, .rtTgsigqueueinfo: aims = [.process(pid(0)), .process(pid(1))]
        case .ptrace:
            // PTRACE_TRACEME makes the parent the tracer (for the agent's first process, us).
            // The parent as it is now, not as first seen: a process whose parent exited has
            // been reparented to the supervisor, a subreaper (found by review).
            if n.arg(0) == 0 {
                let parent = ProcStatus(tid: n.tid)
                guard parent.readOK, parent.ppid > 0 else {
                    call.denySyscall(Refusal(EPERM, "the caller's parent can't be read"), target: "ptrace(PTRACE_TRACEME)")
                    return
                }
                aims = [.process(parent.ppid)]
            } else {
                aims = [.process(pid(1))]
            }
        case .processVM, .getRobustList, .migratePages, .movePages, .prlimit,
             .schedSetaffinity, .schedSetscheduler, .schedSetparam, .schedSetattr:
            aims = [selfOr(pid(0))]
        case .kcmp: aims = [.process(pid(0)), .process(pid(1))]
        case .perfEventOpen:
            // pid -1 watches every process on a CPU; PERF_FLAG_PID_CGROUP makes pid a cgroup fd.
            let flags = n.arg(4)
            aims = pid(1) == -1 || flags & 0x4 != 0 ? [.everyone] : [selfOr(pid(1))]
        case .setpriority:
            // (which, who): PRIO_PROCESS 0, PRIO_PGRP 1, PRIO_USER 2.
            aims = whom(process: 0, group: 1, user: 2)
        case .ioprioSet:
            // (which, who, ioprio): IOPRIO_WHO_PROCESS 1, _PGRP 2, _USER 3.
            aims = whom(process: 1, group: 2, user: 3)
        }
        for aim in aims {
            switch check(aim, caller: process, tid: n.tid, core: core) {
            case .reachable: continue
            case .noSuchProcess:
                // Answered here, as the kernel would: continued, the call would look the pid up
                // again, and by then it could name a process that didn't exist when decided.
                core.listener.fail(n.id, errno: ESRCH)
                return
            case .refused(let reason):
                call.denySyscall(Refusal(EPERM, reason), target: describe(aim))
                return
            }
        }
        if kind == .ptrace && (n.arg(0) == 16 /* PTRACE_ATTACH */ || n.arg(0) == 0x4206 /* PTRACE_SEIZE */) {
            // A thread the exec check holds is let go within its exec's time: the agent's
            // own attach waits for that rather than fail with EPERM.
            core.execTracer.waitUntilReleased(pid(1))
        } else if kind == .ptrace && n.arg(0) != 0 /* PTRACE_TRACEME */ && core.images.hasPendingChecks {
            // A request on the caller's tracee (to resume it, most often). A tracee that exec'd
            // while traced by the agent wasn't held by the exec check (ExecTracer): it may not
            // run until its new image has passed.
            let tgid = ProcStatus(tid: pid(1)).tgid
            if tgid > 0, let refusal = core.images.verifyCompletedExec(tgid) {
                ExecTracer.recordKill(call, pid: tgid, reason: refusal + " (checked at its tracer's ptrace call)")
            }
        }
        // The kernel reads the resource as an unsigned int: high bits don't make it another one.
        if kind == .prlimit && UInt32(truncatingIfNeeded: n.arg(1)) == UInt32(resourceCoreLimit) && n.arg(2) != 0 {
            coreLimit(call, pidArg: 0, resourceArg: 1, limitArg: 2, oldArg: 3)
            return
        }
        // Real-time scheduling: a spinning SCHED_FIFO process can take a CPU from the host.
        if !call.policy.allowedUnsupervised.contains(.realtime) {
            switch kind {
            case .schedSetscheduler:
                let policy = n.arg(1) & ~UInt64(0x4000_0000) // SCHED_RESET_ON_FORK
                if policy == 1 || policy == 2 || policy == 6 {
                    call.denySyscall(Refusal(EPERM, "real-time scheduling is denied by default"), target: "policy:\(policy)")
                    return
                }
            case .ioprioSet:
                if (n.arg(2) >> 13) & 0x7 == 1 { // IOPRIO_CLASS_RT
                    call.denySyscall(Refusal(EPERM, "the real-time I/O class is denied by default"), target: "ioprio:rt")
                    return
                }
            case .schedSetattr:
                // The policy is in memory the agent could change after a check: perform the
                // call on a copy.
                setattr(call)
                return
            default: break
            }
        }
        core.listener.continueSyscall(n.id)
    }

    /// prlimit64 or setrlimit setting RLIMIT_CORE. A core dump is a file the kernel writes in the
    /// working directory (which may be one writes are denied to), with content of the agent's
    /// choosing, so the limit stays 0 unless the policy reopens the `kernel` route. Setting it
    /// to 0 is performed on a copy of the new limit; anything else is refused with EPERM, which
    /// is what an unprivileged process gets for raising a hard limit of 0.
    static func coreLimit(_ call: TrappedCall, pidArg: Int?, resourceArg: Int, limitArg: Int, oldArg: Int?) {
        let n = call.notification, core = call.core, process = call.process
        guard !call.policy.allowedUnsupervised.contains(.kernel) else { core.listener.continueSyscall(n.id); return }
        var limit = [UInt64](repeating: 0, count: 2)
        let rc = limit.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(limitArg), $0.baseAddress, 16) }
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        guard limit[0] == 0 && limit[1] == 0 else {
            call.denySyscall(Refusal(EPERM, "core dumps are off under supervision: the kernel would write one with no decision (kernel route)"),
                                target: "RLIMIT_CORE")
            return
        }
        // prlimit64(pid, RLIMIT_CORE, new, old): pid 0 is the caller; old is written back.
        let pid = pidArg.map { Int32(truncatingIfNeeded: n.arg($0)) } ?? 0
        if let pidArg, pid != 0, pid != process.tgid {
            switch check(.process(pid), caller: process, tid: n.tid, core: core) {
            case .reachable: break
            case .noSuchProcess: core.listener.fail(n.id, errno: ESRCH); return
            case .refused(let reason):
                call.denySyscall(Refusal(EPERM, reason), target: "pid:\(Int32(truncatingIfNeeded: n.arg(pidArg)))")
                return
            }
        }
        var old = [UInt64](repeating: 0, count: 2)
        let target = pid == 0 ? process.tgid : pid
        let wantsOld = oldArg.map { n.arg($0) != 0 } ?? false
        // With the agent's rights: the kernel lets a caller set another process's limits only
        // when its ids match that process's (or it has CAP_SYS_RESOURCE).
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.denySyscall(Refusal(EPERM, refusal), target: "RLIMIT_CORE")
            return
        }
        let result = limit.withUnsafeBytes { new in
            old.withUnsafeMutableBytes { previous in
                agentgate_syscall6(302 /* prlimit64 */, UInt64(UInt32(bitPattern: target)), resourceCoreLimit,
                                   UInt64(UInt(bitPattern: new.baseAddress)), wantsOld ? UInt64(UInt(bitPattern: previous.baseAddress)) : 0, 0, 0)
            }
        }
        if result == 0, let oldArg, wantsOld, agentgate_write_memory(n.tid, n.arg(oldArg), &old, 16) != 0 {
            core.listener.fail(n.id, errno: EFAULT)
            return
        }
        if result < 0 { core.listener.fail(n.id, errno: Int32(-result)) } else { core.listener.succeed(n.id, value: 0) }
    }

    /// sched_setattr(pid, attr, flags) on the supervisor's copy of `struct sched_attr`.
    private static func setattr(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        let address = n.arg(1)
        var size: UInt32 = 0
        var rc = agentgate_read_memory(n.tid, address, &size, 4)
        let copySize = size == 0 ? 48 : Int(size) // SCHED_ATTR_SIZE_VER0 when 0
        var attr = [UInt8](repeating: 0, count: max(copySize, 8))
        if rc == 0 && copySize <= 4096 {
            rc = agentgate_read_memory(n.tid, address, &attr, copySize)
        }
        guard core.listener.isValid(n.id) else { return }
        guard address != 0, rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        guard copySize >= 48, copySize <= 4096 else {
            // The kernel answers E2BIG and writes the size it knows back.
            var known: UInt32 = 56
            _ = agentgate_write_memory(n.tid, address, &known, 4)
            core.listener.fail(n.id, errno: copySize > 4096 ? E2BIG : EINVAL)
            return
        }
        let policy = attr.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt32.self) }
        if policy == 1 || policy == 2 || policy == 6 {
            call.denySyscall(Refusal(EPERM, "real-time scheduling is denied by default"), target: "policy:\(policy)")
            return
        }
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.denySyscall(Refusal(EPERM, refusal), target: "pid:\(Int32(truncatingIfNeeded: n.arg(0)))")
            return
        }
        // pid 0 is the calling thread: in the supervisor it must name the agent's thread.
        let target = Int32(truncatingIfNeeded: n.arg(0)) == 0 ? UInt64(UInt32(bitPattern: n.tid)) : n.arg(0)
        let result = attr.withUnsafeMutableBytes { raw in
            agentgate_syscall6(Int(n.number), target, UInt64(UInt(bitPattern: raw.baseAddress)), n.arg(2), 0, 0, 0)
        }
        if result == -Int(E2BIG) {
            var known = attr.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 0, as: UInt32.self) }
            _ = agentgate_write_memory(n.tid, address, &known, 4)
        }
        if result < 0 { core.listener.fail(n.id, errno: Int32(-result)) } else { core.listener.succeed(n.id, value: Int64(result)) }
    }

    /// Whether the caller may act on what a call aims at.
    enum Reach: Equatable {
        case reachable
        /// No such process or group: the kernel's answer is ESRCH.
        case noSuchProcess
        case refused(String)
    }

    /// Whether the caller may act on `aim`.
    static func check(_ aim: Aim, caller: ProcessFacts, tid: pid_t, core: SupervisorCore) -> Reach {
        switch aim {
        case .caller:
            return .reachable
        case .process(let pid):
            if pid == caller.tgid || pid == tid { return .reachable }
            if pid <= 0 { return .reachable } // the kernel answers EINVAL or ESRCH
            switch core.membership(of: pid) {
            case .session: return .reachable
            case .gone: return .noSuchProcess
            case .supervisor: return .refused("the supervisor can't be signalled, traced or inspected")
            case .outside: return .refused("the process is outside the session")
            }
        case .group(let pgid):
            if pgid <= 0 { return .reachable }
            switch core.groupMembership(of: pgid) {
            case .session: return .reachable
            case .gone: return .noSuchProcess
            case .supervisor: return .refused("the supervisor's process group is off limits")
            case .outside: return .refused("the process group has members outside the session")
            }
        case .everyone:
            return .refused("the call reaches every process of the user, not only the session's")
        }
    }

    /// Why the caller may not act on `aim`, or nil (no such process counts as refused here:
    /// the callers that use this hold a handle, so the kernel's own answer is exact).
    private static func refusal(for aim: Aim, caller: ProcessFacts, tid: pid_t, core: SupervisorCore) -> String? {
        switch check(aim, caller: caller, tid: tid, core: core) {
        case .reachable, .noSuchProcess: return nil
        case .refused(let reason): return reason
        }
    }

    private static func describe(_ aim: Aim) -> String {
        switch aim {
        case .caller: return "self"
        case .process(let pid): return "pid:\(pid)"
        case .group(let pgid): return "pgid:\(pgid)"
        case .everyone: return "all processes"
        }
    }

    static func setpgid(_ call: TrappedCall) {
        let n = call.notification
        // Trapped only for the supervisor's own group: joining it would expose us to kill(0).
        call.decideSyscall(allowed: false, errno: EPERM, target: "pgid:\(n.arg(1))",
                              reason: "the supervisor's process group is off limits")
    }


    // MARK: - Calls named by a handle

    static func processHandle(_ call: TrappedCall, kind: ProcessHandleCall) {
        switch kind {
        case .pidfdOpen: pidfdOpen(call)
        case .pidfdSendSignal: sendSignal(call)
        case .pidfdGetfd, .processMadvise, .processMrelease: handleCall(call)
        }
    }

    /// pidfd_open(pid, flags): performed by the supervisor, so the pidfd the agent gets is the
    /// one whose process was checked (a pid could be reused between a check and the kernel's
    /// own lookup).
    private static func pidfdOpen(_ call: TrappedCall) {
        let n = call.notification, core = call.core, process = call.process
        let pid = pid_t(truncatingIfNeeded: n.arg(0))
        let flags = UInt32(truncatingIfNeeded: n.arg(1))
        guard core.listener.isValid(n.id) else { return }
        let pidfd = agentgate_pidfd_open_flags(pid, flags)
        guard pidfd >= 0 else { core.listener.fail(n.id, errno: -pidfd); return }
        defer { agentgate_close(pidfd) }
        if pid != process.tgid && pid != n.tid {
            let membership = core.membership(of: pid)
            // The check ran while the pidfd held the process: if it is still alive, the pid
            // named that very process throughout. A process that has exited is harmless.
            let exited = agentgate_poll_one(pidfd, Int16(POLLIN), 0) > 0
            if !exited && (membership == .supervisor || membership == .outside) {
                let reason = membership == .supervisor ? "the supervisor can't be signalled, traced or inspected"
                                                       : "the process is outside the session"
                call.denySyscall(Refusal(EPERM, reason), target: "pid:\(pid)")
                return
            }
        }
        let installed = core.listener.inject(n.id, fd: pidfd, cloexec: true, send: true)
        if installed < 0 && installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
    }

    /// The process a handle of the agent refers to.
    private enum HandleTarget {
        case caller
        case process(pid_t)
        case exited
        case invalid(errno: Int32)
    }

    /// A handle of the agent: what it refers to, and the supervisor's own copy of it (closed
    /// with this value).
    private struct AgentHandle: ~Copyable {
        let target: HandleTarget
        let copy: OwnedFD
    }

    private static func agentHandle(_ fd: Int32, tid: pid_t) -> AgentHandle {
        if fd == Int32(AGENTGATE_PIDFD_SELF_THREAD) || fd == Int32(AGENTGATE_PIDFD_SELF_THREAD_GROUP) {
            return AgentHandle(target: .caller, copy: OwnedFD(-1))
        }
        let copy = OwnedFD.copy(of: fd, from: tid)
        guard copy.isValid else { return AgentHandle(target: .invalid(errno: copy.raw == -ESRCH ? ESRCH : EBADF), copy: copy) }
        var pid: pid_t = 0
        var isDirectory = false
        let rc = agentgate_process_handle_target(copy.raw, &pid, &isDirectory)
        guard rc == 0 else { return AgentHandle(target: .invalid(errno: -rc), copy: copy) }
        return AgentHandle(target: pid > 0 ? .process(pid) : .exited, copy: copy)
    }

    /// pidfd_send_signal(handle, sig, info, flags): decided on the handle's process and sent by
    /// the supervisor through its copy of the handle (the agent could dup2 another handle, such
    /// as a /proc/PID directory of an outside process, onto the number after a check).
    private static func sendSignal(_ call: TrappedCall) {
        let n = call.notification, core = call.core, process = call.process
        let signal = Int32(truncatingIfNeeded: n.arg(1))
        let infoAddress = n.arg(2)
        let flags = UInt32(truncatingIfNeeded: n.arg(3))
        let handle = agentHandle(n.intArg(0), tid: n.tid)
        var info = [UInt8](repeating: 0, count: 128)
        let infoRead = infoAddress == 0 ? 0 : agentgate_read_memory(n.tid, infoAddress, &info, 128)
        guard core.listener.isValid(n.id) else { return }
        switch handle.target {
        case .caller:
            core.listener.continueSyscall(n.id) // a value: the caller itself
            return
        case .invalid(let errno):
            core.listener.fail(n.id, errno: errno)
            return
        case .exited:
            break // the kernel answers ESRCH
        case .process(let pid):
            var aims: [Aim] = [pid == process.tgid || pid == n.tid ? .caller : .process(pid)]
            if flags & UInt32(AGENTGATE_PIDFD_SIGNAL_PROCESS_GROUP) != 0 { aims.append(.group(core.processGroup(of: pid))) }
            for aim in aims {
                if let refusal = refusal(for: aim, caller: process, tid: n.tid, core: core) {
                    call.denySyscall(Refusal(EPERM, refusal), target: describe(aim))
                    return
                }
            }
        }
        guard infoRead == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.denySyscall(Refusal(EPERM, refusal), target: "signal")
            return
        }
        if infoAddress == 0 && signal != 0 {
            // Sent by the supervisor, the kernel would name the supervisor as the sender. Name the
            // agent instead: SI_QUEUE is the code the kernel lets one process claim for another.
            info = [UInt8](repeating: 0, count: 128)
            info.withUnsafeMutableBytes { raw in
                raw.storeBytes(of: signal, toByteOffset: 0, as: Int32.self)     // si_signo
                raw.storeBytes(of: Int32(-1), toByteOffset: 8, as: Int32.self)  // si_code = SI_QUEUE
                raw.storeBytes(of: process.tgid, toByteOffset: 16, as: Int32.self) // si_pid
                raw.storeBytes(of: getuid(), toByteOffset: 20, as: UInt32.self)  // si_uid: the thread's, which acts as the agent
            }
        }
        let result = info.withUnsafeBytes { raw in
            agentgate_pidfd_send_signal(handle.copy.raw, signal, infoAddress == 0 && signal == 0 ? nil : raw.baseAddress, flags)
        }
        if result < 0 { core.listener.fail(n.id, errno: -result) } else { core.listener.succeed(n.id, value: 0) }
    }

    /// pidfd_getfd, process_madvise, process_mrelease: decided on the handle's process. These
    /// take pidfds only (never /proc directories), and no pidfd of the supervisor or of an outside
    /// process ever reaches the agent, so once decided the call continues in the kernel, which
    /// checks the agent's own ptrace rights.
    private static func handleCall(_ call: TrappedCall) {
        let n = call.notification, core = call.core, process = call.process
        let handle = agentHandle(n.intArg(0), tid: n.tid)
        guard core.listener.isValid(n.id) else { return }
        switch handle.target {
        case .caller, .exited:
            core.listener.continueSyscall(n.id)
        case .invalid(let errno):
            core.listener.fail(n.id, errno: errno)
        case .process(let pid):
            let aim: Aim = pid == process.tgid || pid == n.tid ? .caller : .process(pid)
            if let refusal = refusal(for: aim, caller: process, tid: n.tid, core: core) {
                call.denySyscall(Refusal(EPERM, refusal), target: describe(aim))
            } else {
                core.listener.continueSyscall(n.id)
            }
        }
    }
}
