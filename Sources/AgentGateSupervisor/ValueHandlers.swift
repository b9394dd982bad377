import AgentGatePolicy
import CSupport
import Glibc

/// Syscalls decided on their register arguments alone. Their decision depends on no memory
/// the agent can change, so an allowed call may continue in the kernel.
enum ValueHandlers {
    /// io_uring_setup, open_by_handle_at, mount…, seccomp: denied unless the policy reopens
    /// the route.
    static func unsupervised(_ n: Notification, route: UnsupervisedRoute, errno: Int32, core: SupervisorCore, target: String? = nil) {
        let allowed = core.policy.allowedUnsupervised.contains(route)
        decide(n, allowed: allowed, errno: errno, target: target ?? core.table.name(of: n.number),
               reason: allowed ? "\(route.rawValue): allowed by allow_unsupervised"
                               : "\(route.rawValue): unsupervised, denied by default", core: core)
    }

    /// unshare, setns and clone asking for a namespace.
    static func namespaces(_ n: Notification, flagsArg: Int, core: SupervisorCore) {
        let name = core.table.name(of: n.number)
        let flags = n.arg(flagsArg)
        if name == "setns" && core.policy.allowedUnsupervised.contains(.namespaces) {
            // setns(pidfd, …) joins that process's namespaces: never the supervisor's or those of
            // a process outside the session, even when namespaces are reopened.
            let pidfd = agentgate_pidfd_open(n.tid)
            let copy = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, n.intArg(0)) : pidfd
            agentgate_close(pidfd)
            defer { agentgate_close(copy) }
            var target: pid_t = 0
            var isDirectory: Int32 = 0
            if copy >= 0, agentgate_process_handle_target(copy, &target, &isDirectory) == 0, isDirectory == 0, target > 0 {
                let membership = core.membership(of: target)
                if membership == .supervisor || membership == .outside {
                    decide(n, allowed: false, errno: EPERM, target: "pid:\(target)",
                           reason: "the namespaces of a process outside the session", core: core)
                    return
                }
            }
        }
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
        if n.arg(0) == prctlSetMM {
            // Checkpoint/restore's rewrite of /proc/PID/exe, argv and the memory map: it would make
            // a swapped-in image look like the approved one.
            unsupervised(n, route: .kernel, errno: EPERM, core: core, target: "prctl(PR_SET_MM)")
            return
        }
        if n.arg(0) == prctlSetDumpable {
            // A supervisor running as the agent's own user can't read a non-dumpable process's
            // memory, so every later call of it would fail. The process stays dumpable and is
            // told it succeeded (ssh-agent and gpg-agent insist on it); with CAP_SYS_PTRACE the
            // supervisor reads it either way, and the call goes through.
            if n.arg(1) == 0 && !core.readsUndumpableMemory {
                core.listener.succeed(n.id, value: 0)
            } else {
                core.listener.continueSyscall(n.id)
            }
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

    /// socket(): decided on the socket the kernel will create. Packet sockets (AF_PACKET, and
    /// SOCK_PACKET, which the kernel turns into one whatever the family) and raw sockets write
    /// their own headers, so where they send is not what a connect or sendto names. Netlink is
    /// decided on its protocol: queries and notifications pass, subsystems that redirect or
    /// rewrite traffic (netfilter, xfrm) are the `netlink` route.
    static func socket(_ n: Notification, core: SupervisorCore) {
        let family = n.arg(0) & 0xffff_ffff
        let type = n.arg(1) & 0xf
        let protocolNumber = n.arg(2) & 0xffff_ffff
        if family == addressFamilyNetlink {
            // SOCK_RAW and SOCK_DGRAM mean the same for netlink; the kernel refuses other types.
            // NETLINK_ROUTE 0, SOCK_DIAG 4, AUDIT 9, FIB_LOOKUP 10, KOBJECT_UEVENT 15, GENERIC 16.
            let open: Set<UInt64> = [0, 4, 9, 10, 15, 16]
            guard open.contains(protocolNumber) || core.policy.allowedUnsupervised.contains(.netAdmin) else {
                unsupervised(n, route: .netAdmin, errno: EPROTONOSUPPORT, core: core,
                             target: "socket(AF_NETLINK, protocol \(protocolNumber))")
                return
            }
            if core.policy.allowedUnsupervised.contains(.netAdmin) || !core.holdsNetworkAdminCapabilities {
                core.listener.continueSyscall(n.id) // no capability to withhold
                return
            }
            // Queries need these families, but with CAP_NET_ADMIN a request on them can add
            // routes, links and tunnels, or reconfigure audit. Netlink checks the capabilities of
            // whoever created the socket too: create it here without them, and hand it over.
            let withheld = SupervisorCore.networkAdminCapabilities
            let fd = withheld.withUnsafeBufferPointer {
                agentgate_socket_without_capabilities(Int32(family), Int32(truncatingIfNeeded: n.arg(1)), Int32(protocolNumber),
                                                      $0.baseAddress, Int32($0.count))
            }
            guard fd >= 0 else { core.listener.fail(n.id, errno: -fd); return }
            defer { agentgate_close(fd) }
            let cloexec = n.arg(1) & UInt64(0o2000000) != 0 // SOCK_CLOEXEC
            let installed = core.listener.inject(n.id, fd: fd, cloexec: cloexec, send: true)
            if installed < 0 && installed != -ENOENT { core.listener.fail(n.id, errno: -installed) }
            return
        }
        let kind: String
        switch (family, type) {
        case (_, socketTypePacket): kind = "socket(SOCK_PACKET)"
        case (17, _): kind = "socket(AF_PACKET)"
        case (_, 3): kind = "socket(\(familyName(family)), SOCK_RAW)"
        default: kind = "socket(\(familyName(family)))"
        }
        unsupervised(n, route: .rawSockets, errno: EPERM, core: core, target: kind)
    }

    /// ioctls the filter traps: terminal input injection is refused; owner changes follow
    /// fileOwner; chattr ioctls are writes to the file; host-wide file-system and console
    /// commands are `host`; interface, route and ARP configuration is `net_admin`. Commands of
    /// the trapped families that only read continue.
    static func ioctl(_ n: Notification, core: SupervisorCore) {
        let command = n.arg(1) & 0xffff_ffff
        let process = core.processes.info(for: n.tid)
        if terminalInjectionIoctls.contains(command) {
            core.listener.fail(n.id, errno: EPERM)
            core.recorder.record(.deniedSyscall("ioctl", target: "ioctl(TIOCSTI)",
                                         reason: "injecting terminal input would run commands outside supervision", errno: EPERM),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        if command == ioctlSetOwner || command == ioctlSetProcessGroup { fileOwner(n, core: core); return }
        if descriptorIoctls.contains(command) {
            // chattr through an fd: a write to that file. FS_IOC_FSSETXATTR passes a 28-byte
            // struct fsxattr, the SETFLAGS calls an int.
            let bytes = command == 0x401c_5820 ? 28 : 4
            MutationHandler.handleDescriptor(n, fdArg: 0, memory: [.fixed(arg: 2, bytes: bytes)], syscall: "ioctl", core: core)
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
            unsupervised(n, route: .netAdmin, errno: EPERM, core: core, target: hex)
        } else {
            unsupervised(n, route: .host, errno: EPERM, core: core, target: hex)
        }
    }

    private static func familyName(_ family: UInt64) -> String {
        switch family {
        case 2: return "AF_INET"
        case 10: return "AF_INET6"
        case 16: return "AF_NETLINK"
        case 17: return "AF_PACKET"
        default: return "family \(family)"
        }
    }

    /// syslog(type, buf, len): reading the log (READ_ALL 3, SIZE_UNREAD 9, SIZE_BUFFER 10) and
    /// the no-op CLOSE/OPEN pass; consuming reads, clearing and the console level change the
    /// log for everyone (`host`).
    static func syslog(_ n: Notification, core: SupervisorCore) {
        let action = Int32(truncatingIfNeeded: n.arg(0))
        if [0, 1, 3, 9, 10].contains(action) || action < 0 || action > 10 {
            core.listener.continueSyscall(n.id) // reads, no-ops, and EINVAL from the kernel
            return
        }
        unsupervised(n, route: .host, errno: EPERM, core: core, target: "syslog(action \(action))")
    }

    /// adjtimex(buf) and clock_adjtime(clock, buf): `modes` lives in memory the agent could
    /// change after a check, so a query (modes 0, or ADJ_OFFSET_SS_READ) is performed by the
    /// supervisor on its copy and the result written back; a change to the clock is `host`.
    static func clockAdjust(_ n: Notification, bufferArg: Int, core: SupervisorCore) {
        let address = n.arg(bufferArg)
        var buffer = [UInt8](repeating: 0, count: 208) // struct timex
        let rc = agentgate_read_memory(n.tid, address, &buffer, buffer.count)
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        let modes = buffer.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        guard modes == 0 || modes == 0xa001 /* ADJ_OFFSET_SS_READ */ else {
            unsupervised(n, route: .host, errno: EPERM, core: core, target: "clock")
            return
        }
        var args = (0..<6).map { n.arg($0) }
        let result = buffer.withUnsafeMutableBytes { raw -> Int in
            args[bufferArg] = UInt64(UInt(bitPattern: raw.baseAddress))
            return agentgate_syscall6(Int(n.number), args[0], args[1], args[2], args[3], args[4], args[5])
        }
        if result >= 0, agentgate_write_memory(n.tid, address, &buffer, buffer.count) != 0 {
            core.listener.fail(n.id, errno: EFAULT)
            return
        }
        if result < 0 { core.listener.fail(n.id, errno: Int32(-result)) } else { core.listener.succeed(n.id, value: Int64(result)) }
    }

    /// The owner of a file receives its I/O signals (SIGIO, or any signal chosen with F_SETSIG,
    /// SIGKILL included): only a process or group in the session may be made one. F_SETOWN's
    /// target is a register value; F_SETOWN_EX and the ioctls pass a pointer, so the supervisor
    /// copies the target and makes the call itself on the agent's file (pidfd_getfd).
    static func fileOwner(_ n: Notification, core: SupervisorCore) {
        let name = core.table.name(of: n.number)
        let process = core.processes.info(for: n.tid)
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
                core.listener.fail(n.id, errno: EPERM)
                core.recorder.record(.deniedSyscall(name, target: "owner \(aim)",
                                             reason: reason + " (it would receive the file's signals)", errno: EPERM),
                                     notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            }
            return false
        }
        if name == "fcntl" && command == fcntlSetLease {
            // F_UNLCK always; a lease otherwise only without CAP_LEASE, so only on the agent's own
            // files (the kernel's rule for everyone else). A root agent's lease on any file would
            // hold every other process's open of it for the lease-break time, again and again.
            let capLease: UInt64 = 1 << 28
            if n.arg(2) != 2 /* F_UNLCK */, ProcStatus(tid: n.tid).capEff & capLease != 0,
               !core.policy.allowedUnsupervised.contains(.host) {
                unsupervised(n, route: .host, errno: EACCES, core: core, target: "fcntl(F_SETLEASE)")
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
        let pidfd = agentgate_pidfd_open(n.tid)
        let fd = pidfd >= 0 ? agentgate_pidfd_getfd(pidfd, n.intArg(0)) : pidfd
        agentgate_close(pidfd)
        defer { agentgate_close(fd) }
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        guard fd >= 0 else { core.listener.fail(n.id, errno: EBADF); return }
        // The kernel records the caller's credentials as the owner's: never ours for a weaker agent.
        let acting = core.actAsAgent(tid: n.tid)
        defer { core.restoreIdentity(acting.saved) }
        if let refusal = acting.refusal {
            core.listener.fail(n.id, errno: EPERM)
            core.recorder.record(.deniedSyscall(name, target: "fd owner", reason: refusal, errno: EPERM),
                                 notification: n, process: process, respondedAt: agentgate_monotonic_ns())
            return
        }
        let target = name == "fcntl" ? aim(pid: owner[1], type: owner[0]) : aim(pid: owner[0], type: nil)
        guard allowed(target) else { return }
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
        var entry = DecisionRecorder.Entry(syscall: name, action: .exec, target: target, decision: allowed ? "allow" : "deny",
                                           reason: reason, errno: allowed ? nil : errno)
        entry.isSyscall = true
        core.recorder.record(entry,
                             notification: n, process: process, respondedAt: agentgate_monotonic_ns())
    }
}
