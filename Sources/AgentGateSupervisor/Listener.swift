import CSupport
import Glibc

/// One trapped syscall, copied out of `struct seccomp_notif`.
struct Notification: Sendable {
    let id: UInt64
    /// The calling thread's id in the supervisor's pid namespace.
    let tid: pid_t
    let number: Int32
    let args: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
    /// CLOCK_MONOTONIC when it was received, for the decision latency.
    let receivedAt: UInt64

    init(_ raw: seccomp_notif, receivedAt: UInt64) {
        id = raw.id
        tid = pid_t(bitPattern: raw.pid)
        number = raw.data.nr
        args = raw.data.args
        self.receivedAt = receivedAt
    }

    func arg(_ index: Int) -> UInt64 {
        switch index {
        case 0: return args.0
        case 1: return args.1
        case 2: return args.2
        case 3: return args.3
        case 4: return args.4
        default: return args.5
        }
    }

    /// An argument the kernel reads as `int` (fds, dirfds).
    func intArg(_ index: Int) -> Int32 { Int32(truncatingIfNeeded: arg(index)) }
}

/// How an fd opened by the supervisor reaches the agent.
public enum FDInjection: String, Sendable, CaseIterable {
    /// SECCOMP_IOCTL_NOTIF_ADDFD, then NOTIF_SEND with the new fd number as the return value.
    /// Fast under SYNC_WAKE_UP; if the agent is interrupted in between, the fd is remembered
    /// and reused for that thread's next open (see `OpenHandler`).
    case addfdThenSend = "two-step"
    /// SECCOMP_ADDFD_FLAG_SEND: atomic, but does not get the sync wake-up, and a stop of the
    /// supervisor during ADDFD's wait leaves the agent's call answered 0 with no fd.
    case addfdSend = "atomic"
}

/// The seccomp listener fd and its ioctls (SECCOMP_IOCTL_NOTIF_*).
struct Listener: Sendable {
    let fd: Int32

    /// SECCOMP_IOCTL_NOTIF_RECV. Returns 0 or -errno.
    func receive(into request: inout seccomp_notif) -> Int32 {
        agentgate_notif_recv(fd, &request)
    }

    /// SECCOMP_IOCTL_NOTIF_ID_VALID: the notification is still pending, so the pid and the bytes
    /// just read belong to the process that made this call.
    func isValid(_ id: UInt64) -> Bool { agentgate_notif_id_valid(fd, id) == 0 }

    /// NOTIF_SEND with an errno.
    @discardableResult
    func fail(_ id: UInt64, errno: Int32) -> Int32 { agentgate_notif_send(fd, id, 0, errno) }

    /// NOTIF_SEND with a return value.
    @discardableResult
    func succeed(_ id: UInt64, value: Int64) -> Int32 { agentgate_notif_send(fd, id, value, 0) }

    /// NOTIF_SEND with SECCOMP_USER_NOTIF_FLAG_CONTINUE: only for decisions that depend on no
    /// memory the agent can still change.
    @discardableResult
    func continueSyscall(_ id: UInt64) -> Int32 { agentgate_notif_continue(fd, id) }

    /// SECCOMP_IOCTL_NOTIF_ADDFD. Returns the fd number in the target or -errno.
    func inject(_ id: UInt64, fd source: Int32, cloexec: Bool, targetFD: Int32 = -1, send: Bool) -> Int32 {
        agentgate_notif_addfd(fd, id, source, cloexec, targetFD, send)
    }
}
