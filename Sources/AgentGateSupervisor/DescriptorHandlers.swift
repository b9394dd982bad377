import AgentGatePolicy
import CSupport
import Glibc

/// Calls on an open fd decided on what they do to it: the trapped ioctls and file-owner
/// changes (the owner receives the file's signals).
enum DescriptorHandlers {
    /// ioctls the filter traps: terminal input injection is refused; owner changes follow
    /// fileOwner; chattr ioctls are writes to the file; host-wide file-system and console
    /// commands are `host`; interface, route and ARP configuration is `net_admin`. Commands of
    /// the trapped families that only read continue.
    static func ioctl(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        let command = n.arg(1) & 0xffff_ffff
        if terminalInjectionIoctls.contains(command) {
            call.denySyscall(Refusal(EPERM, "injecting terminal input would run commands outside supervision"),
                             target: "ioctl(TIOCSTI)")
            return
        }
        if command == ioctlSetOwner || command == ioctlSetProcessGroup { DescriptorHandlers.fileOwner(call); return }
        if descriptorIoctls.contains(command) {
            // chattr through an fd: a write to that file. FS_IOC_FSSETXATTR passes a 28-byte
            // struct fsxattr, the SETFLAGS calls an int.
            let bytes = command == 0x401c_5820 ? 28 : 4
            MutationHandler.handleDescriptor(call, fdArg: 0, memory: [.fixed(arg: 2, bytes: bytes)])
            return
        }
        if readOnlyFamilyIoctls.contains(command) { core.listener.continueSyscall(n.id); return }
        let type = (command >> 8) & 0xff
        if type == blockIoctlType {
            // Getters carry no write direction (or only a read one): _IOC_WRITE is bit 30.
            if readOnlyBlockIoctlNumbers.contains(command & 0xff) && command & 0x4000_0000 == 0 {
                core.listener.continueSyscall(n.id)
                return
            }
        } else if type == loopIoctlType, readOnlyLoopIoctls.contains(command) {
            core.listener.continueSyscall(n.id)
            return
        }
        let hex = "ioctl(0x\(String(command, radix: 16)))"
        if command & 0xffff_ff00 == socketIoctlFamily {
            UnsupervisedRouteHandlers.unsupervised(call, route: .netAdmin, errno: EPERM, target: hex)
        } else {
            UnsupervisedRouteHandlers.unsupervised(call, route: .host, errno: EPERM, target: hex)
        }
    }

    /// The owner of a file receives its I/O signals (SIGIO, or any signal chosen with F_SETSIG,
    /// SIGKILL included): only a process or group in the session may be made one. F_SETOWN's
    /// target is a register value; F_SETOWN_EX and the ioctls pass a pointer, so the supervisor
    /// copies the target and makes the call itself on the agent's file (pidfd_getfd).
    static func fileOwner(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        let name = call.syscall
        let process = call.process
        let command = n.arg(1)
        /// F_SETOWN/FIOSETOWN/SIOCSPGRP: a positive pid is a process, a negative one a group.
        func aim(pid: Int32, type: Int32?) -> ProcessHandlers.Aim? {
            if let type {
                // struct f_owner_ex: F_OWNER_TID 0, F_OWNER_PID 1, F_OWNER_PGRP 2.
                if pid == 0 { return nil }
                return type == 2 ? .group(pid) : .process(pid)
            }
            if pid == 0 { return nil } // clears the owner
            return pid > 0 ? .process(pid) : .group(pid == Int32.min ? Int32.min : -pid)
        }
        /// Returns false when the call was answered (refused, or no such process).
        func allowed(_ aim: ProcessHandlers.Aim?) -> Bool {
            guard let aim else { return true }
            switch ProcessHandlers.check(aim, caller: process, tid: n.tid, core: core) {
            case .reachable: return true
            case .noSuchProcess:
                core.listener.fail(n.id, errno: ESRCH)
            case .refused(let reason):
                call.denySyscall(Refusal(EPERM, reason + " (it would receive the file's signals)"), target: "owner \(aim)")
            }
            return false
        }
        if name == "fcntl" && command == fcntlSetLease {
            // F_UNLCK always; a lease otherwise only without CAP_LEASE, so only on the agent's own
            // files (the kernel's rule for everyone else). A root agent's lease on any file would
            // hold every other process's open of it for the lease-break time, again and again.
            let capLease: UInt64 = 1 << 28
            if n.arg(2) != 2 /* F_UNLCK */, call.agentStatus().capEff & capLease != 0,
               !call.policy.allowedUnsupervised.contains(.host) {
                UnsupervisedRouteHandlers.unsupervised(call, route: .host, errno: EACCES, target: "fcntl(F_SETLEASE)")
                return
            }
            core.listener.continueSyscall(n.id)
            return
        }
        if name == "fcntl" && command == fcntlSetOwner {
            if allowed(aim(pid: Int32(truncatingIfNeeded: n.arg(2)), type: nil)) { core.listener.continueSyscall(n.id) }
            return
        }
        var owner = [Int32](repeating: 0, count: 2)
        let size = name == "fcntl" ? 8 : 4
        let rc = owner.withUnsafeMutableBytes { agentgate_read_memory(n.tid, n.arg(2), $0.baseAddress, size) }
        let fd = OwnedFD.copy(of: n.intArg(0), from: n.tid)
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        guard fd.isValid else { core.listener.fail(n.id, errno: EBADF); return }
        // The kernel records the caller's credentials as the owner's: never ours for a weaker agent.
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            call.denySyscall(Refusal(EPERM, refusal), target: "fd owner")
            return
        }
        let target = name == "fcntl" ? aim(pid: owner[1], type: owner[0]) : aim(pid: owner[0], type: nil)
        guard allowed(target) else { return }
        let result = owner.withUnsafeMutableBytes { raw in
            agentgate_syscall6(Int(n.number), UInt64(UInt32(bitPattern: fd.raw)), command,
                               UInt64(UInt(bitPattern: raw.baseAddress)), 0, 0, 0)
        }
        if result < 0 { core.listener.fail(n.id, errno: Int32(-result)) } else { core.listener.succeed(n.id, value: Int64(result)) }
    }
}
