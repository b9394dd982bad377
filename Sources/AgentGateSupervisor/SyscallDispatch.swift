import AgentGatePolicy
import CSupport
import Glibc

/// From a received notification to its handler, beside the table that gives each syscall its
/// family (SyscallTable.swift): adding a syscall takes a table entry, a case here and a handler.
enum SyscallDispatch {
    /// Looks up the process once, checks the image it runs, and hands the call to its family's
    /// handler, which answers it and then records the decision.
    static func dispatch(_ n: Notification, core: SupervisorCore, scratch: ThreadScratch) {
        let process = core.processes.facts(for: n.tid)
        let family = core.table.family(of: n.number)
        // A process (or image) seen for the first time goes into the audit's process table as
        // it was when it made this call: its status and executable as just read for it (under
        // the same ID_VALID checks as the call), its argv and cgroup read beside them. An exec's
        // caller is read before the exec is answered, so the record is the image that called
        // exec, not a mix with the new one (which is recorded at its own first trapped call).
        // Calls that change credentials or capabilities are read afresh after the answer, and
        // so is the exec of the session's command (its caller is the supervisor's own fork).
        // Every other first call is read before the answer too: after it, a short-lived image
        // (`true`) can be gone before its argv and cgroup are read, and be recorded without them.
        let writer = process.firstSeen && n.tid == process.tgid ? core.recorder.writer : nil
        let known = process.status.flatMap { $0.readOK ? (status: $0, executable: process.executable) : nil }
        var recorded = false
        if let writer, let known, family.isExec ? process.ppid != core.supervisorPID : !family.mayChangeIdentity {
            // Read under this notification: if it is no longer pending, the pid may name another process.
            if let record = ProcessSnapshot.read(pid: n.tid, known: known), core.listener.isValid(n.id) {
                writer.recordProcessStart(record)
            }
            recorded = true
        }
        defer {
            if let writer, !recorded,
               let record = ProcessSnapshot.read(pid: n.tid, known: family.mayChangeIdentity ? nil : known) {
                writer.recordProcessStart(record)
            }
        }
        let call = TrappedCall(notification: n, process: process, syscall: core.table.name(of: n.number), core: core,
                               policyVersion: scratch.policy(in: core.policies))
        if let refusal = core.images.verify(tid: n.tid, tgid: process.tgid, firstSeen: process.firstSeen,
                                            isValid: { core.listener.isValid(n.id) }) {
            // The image the kernel loaded isn't the one approved: the path was swapped after
            // the decision. End the process before this call, its first trapped one, proceeds
            // (the verifier already signalled it through its pidfd; this covers first-seen ones).
            kill(process.tgid, SIGKILL)
            kill(n.tid, SIGKILL)
            core.listener.fail(n.id, errno: EPERM)
            // Recorded with the process read afresh: the cached facts describe the approved image.
            core.recorder.record(.denied(syscall: call.syscall, action: .exec,
                                         target: ProcessTable.readLink("/proc/\(n.tid)/exe") ?? "?",
                                         reason: refusal, errno: EPERM),
                                 notification: n, process: ProcessTable.read(tid: n.tid), respondedAt: agentgate_monotonic_ns(),
                                 policy: call.policyVersion)
            return
        }
        switch family {
        case .open, .openat, .openat2, .creat: OpenHandler.handle(call, family: family, scratch: scratch)
        case .execve, .execveat: ExecHandler.handle(call, family: family, scratch: scratch)
        case .connect: ConnectHandler.handle(call, scratch: scratch)
        case .bind: BindHandler.handle(call, scratch: scratch)
        case .sendto, .sendmsg, .sendmmsg: SendHandler.handle(call, family: family, scratch: scratch)
        case .mutation(let spec): MutationHandler.handle(call, spec: spec, scratch: scratch)
        case .unsupervised(let route, let errno): UnsupervisedRouteHandlers.unsupervised(call, route: route, errno: errno)
        case .namespaces(let flagsArg): UnsupervisedRouteHandlers.namespaces(call, flagsArg: flagsArg)
        case .prctl: CredentialHandlers.prctl(call)
        case .processTarget(let target): ProcessHandlers.processTarget(call, kind: target)
        case .processHandle(let handle): ProcessHandlers.processHandle(call, kind: handle)
        case .socketOption: SocketOptionHandler.handle(call)
        case .syslog: UnsupervisedRouteHandlers.syslog(call)
        case .coreLimit: ProcessHandlers.coreLimit(call, pidArg: nil, resourceArg: 0, limitArg: 1, oldArg: nil)
        case .clockAdjust(let bufferArg): UnsupervisedRouteHandlers.clockAdjust(call, bufferArg: bufferArg)
        case .setpgid: ProcessHandlers.setpgid(call)
        case .fileOwner: DescriptorHandlers.fileOwner(call)
        case .descriptorIoctl: DescriptorHandlers.ioctl(call)
        case .socket: SocketCreationHandler.socket(call)
        case .unsupported(let errno):
            call.denySyscall(Refusal(errno: errno, reason: "not emulated by this supervisor; refused rather than let through"),
                             target: call.syscall)
        case .credentials: CredentialHandlers.credentials(call)
        case .none:
            // Trapped but unknown to us: fail closed.
            core.listener.fail(n.id, errno: ENOSYS)
        }
    }
}
