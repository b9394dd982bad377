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
        decide(n, allowed: allowed, errno: errno, target: target ?? route.rawValue,
               reason: allowed ? "allowed by allow_unsupervised: [\(route.rawValue)]"
                               : "\(route.rawValue) is unsupervised; denied by default", core: core)
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
            if open.contains(protocolNumber) { core.listener.continueSyscall(n.id); return }
            unsupervised(n, route: .netlink, errno: EPROTONOSUPPORT, core: core,
                         target: "socket(AF_NETLINK, protocol \(protocolNumber))")
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
