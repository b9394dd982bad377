import AgentGatePolicy
import CSupport
import Glibc

/// Calls that would act outside supervision (a new namespace, io_uring, the host's log or
/// clock): decided on their register arguments alone, so an allowed call may continue in the
/// kernel; denied unless the policy reopens the route.
enum UnsupervisedRouteHandlers {
    /// io_uring_setup, open_by_handle_at, mount…, seccomp: denied unless the policy reopens
    /// the route.
    static func unsupervised(_ call: TrappedCall, route: UnsupervisedRoute, errno: Int32, target: String? = nil) {
        let allowed = call.policy.allowedUnsupervised.contains(route)
        call.decideSyscall(allowed: allowed, errno: errno, target: target ?? call.syscall,
                           reason: allowed ? "\(route.rawValue): allowed by allow_unsupervised"
                               : "\(route.rawValue): unsupervised, denied by default")
    }

    /// unshare, setns and clone asking for a namespace.
    static func namespaces(_ call: TrappedCall, flagsArg: Int) {
        let n = call.notification, core = call.core
        let name = call.syscall
        let flags = n.arg(flagsArg)
        if name == "setns" && call.policy.allowedUnsupervised.contains(.namespaces) {
            // setns(pidfd, …) joins that process's namespaces: never the supervisor's or those of
            // a process outside the session, even when namespaces are reopened.
            let copy = OwnedFD.copy(of: n.intArg(0), from: n.tid)
            var target: pid_t = 0
            var isDirectory = false
            if copy.raw >= 0, agentgate_process_handle_target(copy.raw, &target, &isDirectory) == 0, !isDirectory, target > 0 {
                let membership = core.membership(of: target)
                if membership == .supervisor || membership == .outside {
                    call.decideSyscall(allowed: false, errno: EPERM, target: "pid:\(target)",
                                       reason: "the namespaces of a process outside the session")
                    return
                }
            }
        }
        // setns(fd, 0) may join any kind of namespace; otherwise only namespace flags count.
        let asksNamespace = name == "setns" || namespaceFlags.contains { flags & $0 != 0 }
        let allowed = !asksNamespace || call.policy.allowedUnsupervised.contains(.namespaces)
        // A new user namespace, or one joined: setns(fd, 0) may join a user namespace too.
        if allowed && (flags & 0x1000_0000 != 0 || (name == "setns" && flags == 0)) { core.noteCredentialChange() }
        call.decideSyscall(allowed: allowed, errno: EPERM, target: "namespaces:0x\(String(flags, radix: 16))",
                           reason: allowed ? "allowed by allow_unsupervised" : "new namespaces are unsupervised; denied by default")
    }

    /// syslog(type, buf, len): reading the log (READ_ALL 3, SIZE_UNREAD 9, SIZE_BUFFER 10) and
    /// the no-op CLOSE/OPEN pass; consuming reads, clearing and the console level change the
    /// log for everyone (`host`).
    static func syslog(_ call: TrappedCall) {
        let n = call.notification, core = call.core
        let action = Int32(truncatingIfNeeded: n.arg(0))
        if [0, 1, 3, 9, 10].contains(action) || action < 0 || action > 10 {
            core.listener.continueSyscall(n.id) // reads, no-ops, and EINVAL from the kernel
            return
        }
        UnsupervisedRouteHandlers.unsupervised(call, route: .host, errno: EPERM, target: "syslog(action \(action))")
    }

    /// adjtimex(buf) and clock_adjtime(clock, buf): `modes` lives in memory the agent could
    /// change after a check, so a query (modes 0, or ADJ_OFFSET_SS_READ) is performed by the
    /// supervisor on its copy and the result written back; a change to the clock is `host`.
    static func clockAdjust(_ call: TrappedCall, bufferArg: Int) {
        let n = call.notification, core = call.core
        let address = n.arg(bufferArg)
        var buffer = [UInt8](repeating: 0, count: 208) // struct timex
        let rc = agentgate_read_memory(n.tid, address, &buffer, buffer.count)
        guard core.listener.isValid(n.id) else { return }
        guard rc == 0 else { core.listener.fail(n.id, errno: EFAULT); return }
        let modes = buffer.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        guard modes == 0 || modes == 0xa001 /* ADJ_OFFSET_SS_READ */ else {
            UnsupervisedRouteHandlers.unsupervised(call, route: .host, errno: EPERM, target: "clock")
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
}
